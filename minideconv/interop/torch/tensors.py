"""What every torch translation shares: importing torch, copying a tensor out, sizes.

``import_torch`` imports PyTorch when a function runs (with the install hint where it is
missing); ``to_numpy`` copies a tensor to NumPy and ``copy_weight`` an array into a
module's parameter; ``as_pair`` turns torch's size lists into the tuples minideconv takes.
``layers`` re-exports them.
"""

from __future__ import annotations

import numpy as np


def import_torch():
    """``torch`` (with ``torch.fx``), or an ImportError that says how to install it."""
    try:
        import torch
        import torch.fx  # noqa: F401
    except ImportError:  # pragma: no cover - exercised only without torch
        raise ImportError("minideconv.interop.torch needs PyTorch: "
                          "pip install 'minideconv[crosscheck]'") from None
    return torch


def to_numpy(tensor) -> np.ndarray:
    """A NumPy copy of ``tensor`` (detached, on the CPU): no later in-place op reaches it."""
    return tensor.detach().cpu().numpy().copy()


def copy_weight(parameter, value) -> None:
    """Copy the array ``value`` into the torch ``parameter`` (a weight, a bias, a running
    statistic), without recording it for autograd.  The array is copied first: torch
    warns about read-only arrays, and an ONNX file's weights are read-only."""
    torch = import_torch()
    with torch.no_grad():
        parameter.copy_(torch.from_numpy(np.array(value, order="C")))


def as_pair(value):
    """A size as minideconv takes it: a list or tuple as a tuple (``[3, 3]`` → ``(3, 3)``),
    an int as it is."""
    return tuple(value) if isinstance(value, (tuple, list)) else value
