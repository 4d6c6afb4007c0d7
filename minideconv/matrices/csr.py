"""What every builder and analysis of ``minideconv.matrices`` shares: the CSR index
dtype and the checks of their arguments.

* ``index_dtype``: int32 for ``indices`` and ``indptr`` while the matrix fits (nnz and
  both dimensions < 2³¹, scipy's own rule), int64 beyond;
* ``check_input_shape``: one image's shape (C, H, W), no batch axis;
* ``require_numpy``: the matrices are scipy.sparse, on the CPU, so arrays must be NumPy;
* ``as_csr``: a matrix argument (scipy.sparse or a dense 2-D ndarray) as a CSR array.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import scipy.sparse as sp

from .. import checks

INT32_MAX = np.iinfo(np.int32).max


def index_dtype(*sizes: int):
    """int32 when every size fits, int64 otherwise (scipy's rule for CSR indices)."""
    return np.int32 if max(sizes) <= INT32_MAX else np.int64


def check_input_shape(input_shape) -> Tuple[int, int, int]:
    """``input_shape`` must be (C, H, W): three positive ints (one image, no batch axis)."""
    if not (isinstance(input_shape, (tuple, list)) and len(input_shape) == 3
            and all(checks.is_int(v) for v in input_shape)):
        raise TypeError(f"input_shape must be (C, H, W), three ints for one image, "
                        f"got {input_shape!r}")
    if min(input_shape) < 1:
        raise ValueError(f"input_shape must be positive (C, H, W), got {tuple(input_shape)}")
    return tuple(int(v) for v in input_shape)


def require_numpy(a, name: str) -> None:
    """The matrices are scipy.sparse (CPU): a CuPy array must come over first."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (the explicit matrices are "
                        f"scipy.sparse, on the CPU; use cupy.asnumpy for GPU arrays), "
                        f"got {type(a).__name__}")


def as_csr(matrix, name: str):
    """A 2-D scipy.sparse CSR array (dense 2-D ndarrays are converted)."""
    if sp.issparse(matrix):
        if matrix.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {matrix.shape}")
        return sp.csr_array(matrix)
    if isinstance(matrix, np.ndarray) and matrix.ndim == 2:
        return sp.csr_array(matrix)
    raise TypeError(f"{name} must be a 2-D scipy.sparse matrix/array or numpy.ndarray, "
                    f"got {type(matrix).__name__}")
