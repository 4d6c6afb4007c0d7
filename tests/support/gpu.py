"""The GPU's code path: its whole-array code run on NumPy arrays (every machine), and
CuPy on a real device (where there is one)."""

from __future__ import annotations

import pytest

from minideconv import ops


def on_reference_backend(function, *args, **kwargs):
    """Call the public function ``function`` with NumPy arrays routed to the reference
    backend (``backends/reference.py``, the code a GPU runs, minus CuPy itself), and
    route them back to the CPU backend afterwards, whatever happens."""
    ops.CPU_BACKEND = "reference"
    try:
        return function(*args, **kwargs)
    finally:
        ops.CPU_BACKEND = "cpu"


def cupy_or_skip():
    """CuPy, where it is installed and sees a CUDA device; otherwise the test is skipped
    with the reason."""
    cupy = pytest.importorskip("cupy", reason="cupy is not installed (pip install -e '.[gpu]')")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError as error:  # pragma: no cover
        pytest.skip(f"no usable CUDA device: {error}")
    return cupy
