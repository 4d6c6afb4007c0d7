"""Adaptive max-pooling and its transpose, the unpooling at its switches: against torch's
F.adaptive_max_pool2d (values and switches, ties and NaN included) and autograd, the dot
test, the switch matrix P(s), the reference backend, and bad switches refused by name.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minideconv as md
from minideconv import matrices

from support.gpu import on_reference_backend


@st.composite
def adaptive_cases(draw):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 9)),
             draw(st.integers(1, 9)))
    out = (draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal(shape)
    if draw(st.booleans()):                 # ties: a few equal values
        x = np.round(x)
    if draw(st.booleans()):
        x.flat[rng.integers(x.size)] = np.nan
    return x, out


@pytest.mark.torch
@given(adaptive_cases())
def test_adaptive_max_pool_and_its_transpose_match_torch(case):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    x, out = case
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty, indices = torch.nn.functional.adaptive_max_pool2d(tx, out, return_indices=True)
    y, switches = md.adaptive_max_pool2d(x, out)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(switches, indices.numpy())
    r = np.random.default_rng(1).standard_normal(y.shape)
    grad, = torch.autograd.grad(ty, tx, torch.from_numpy(r))
    np.testing.assert_allclose(md.adaptive_max_unpool2d(r, switches, x.shape), grad.numpy(),
                               rtol=1e-12, atol=1e-12)


@given(adaptive_cases())
def test_dot_test_matrix_and_reference_backend(case):
    x, out = case
    y, switches = md.adaptive_max_pool2d(x, out)
    md.dottest(lambda v: np.take_along_axis(v.reshape(v.shape[:2] + (-1,)),
                                            switches.reshape(y.shape[:2] + (-1,)),
                                            axis=2).reshape(y.shape),
               lambda r: md.adaptive_max_unpool2d(r, switches, x.shape), x.shape, y.shape)
    p = matrices.max_pool2d_matrix(switches[0], x.shape[1:], x.dtype)
    np.testing.assert_array_equal(p @ np.nan_to_num(x[0]).ravel(),
                                  np.nan_to_num(y[0]).ravel())
    ref_y, ref_s = on_reference_backend(md.adaptive_max_pool2d, x, out)
    np.testing.assert_array_equal(ref_s, switches)
    np.testing.assert_array_equal(ref_y, y)


def test_a_switch_outside_its_window_is_refused():
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    y, switches = md.adaptive_max_pool2d(x, 2)
    bad = switches.copy()
    bad[0, 0, 0, 0] = 35                   # the bottom-right pixel, in window (1, 1) only
    with pytest.raises(ValueError, match=r"switches\[0, 0, 0, 0\] = 35 lies outside its "
                                         r"adaptive window"):
        md.adaptive_max_unpool2d(y, bad, (6, 6))
    with pytest.raises(TypeError, match="input_size"):
        md.adaptive_max_unpool2d(y, switches, (6,))
    with pytest.raises(ValueError, match="output_size"):
        md.adaptive_max_pool2d(x, 0)


CHILD = """
import sys
import numpy as np
import numba
assert numba.config.DISABLE_JIT
import minideconv as md
x = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
y, s = md.adaptive_max_pool2d(x, (3, 4))
np.savez(sys.argv[1], y=y, s=s, back=md.adaptive_max_unpool2d(y, s, x.shape))
"""


def test_the_loop_runs_as_plain_python(tmp_path):
    from support.subprocesses import run_without_jit
    proc = run_without_jit(CHILD, str(tmp_path / "out.npz"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    plain = np.load(tmp_path / "out.npz")
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
    y, s = md.adaptive_max_pool2d(x, (3, 4))
    np.testing.assert_array_equal(plain["y"], y)
    np.testing.assert_array_equal(plain["s"], s)
    np.testing.assert_array_equal(plain["back"], md.adaptive_max_unpool2d(y, s, x.shape))
