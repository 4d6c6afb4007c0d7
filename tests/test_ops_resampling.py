"""Nearest and bilinear upsampling and their transposes: against torch's F.interpolate
and autograd's vector-Jacobian product (hypothesis-drawn sizes, scale factors and
modes), the dot test, the sparse matrices, the reference backend, plain Python
(NUMBA_DISABLE_JIT=1), and the errors bad arguments get.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minideconv as md
from minideconv import matrices

from support.gpu import on_reference_backend
from support.strategies import assert_close
from support.subprocesses import run_without_jit

MODES = ("nearest", "nearest-exact", "bilinear", "bilinear-corners")


@st.composite
def upsample_cases(draw):
    """(x, mode, kwargs of the minideconv call, kwargs of F.interpolate)."""
    mode = draw(st.sampled_from(MODES))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 7)),
             draw(st.integers(1, 7)))
    how = draw(st.sampled_from(["size", "scale", "scale-recomputed"]))
    if how == "size":
        size = (draw(st.integers(1, 15)), draw(st.integers(1, 15)))
        call = dict(size=size if draw(st.booleans()) else size[0])
        if isinstance(call["size"], int):
            size = (size[0], size[0])
    else:
        factors = [draw(st.sampled_from([0.5, 0.75, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0, 7 / 3]))
                   for _ in range(2)]
        if any(int(n * f) < 1 for n, f in zip(shape[2:], factors)):
            factors = [2.0, 2.0]
        call = dict(scale_factor=tuple(factors) if draw(st.booleans()) else factors[0])
        if not isinstance(call["scale_factor"], tuple) and \
                int(min(shape[2:]) * factors[0]) < 1:
            call["scale_factor"] = 2.0
        if how == "scale-recomputed":
            call["recompute_scale_factor"] = True
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    x = np.random.default_rng(draw(st.integers(0, 2**31))).standard_normal(shape)
    return x.astype(dtype), mode, call


def ours(mode, call):
    """The forward and transpose functions of ``mode`` and their keyword arguments."""
    if mode.startswith("bilinear"):
        kw = dict(call, align_corners=mode == "bilinear-corners")
        return md.upsample_bilinear2d, md.upsample_bilinear2d_transpose, kw
    return md.upsample_nearest2d, md.upsample_nearest2d_transpose, \
        dict(call, exact=mode == "nearest-exact")


def torch_kwargs(mode, call):
    if mode.startswith("bilinear"):
        return dict(call, mode="bilinear", align_corners=mode == "bilinear-corners")
    return dict(call, mode=mode)


@pytest.mark.torch
@given(upsample_cases())
def test_upsampling_and_its_transpose_match_torch(case):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    x, mode, call = case
    forward, transpose, kw = ours(mode, call)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = torch.nn.functional.interpolate(tx, **torch_kwargs(mode, call))
    y = forward(x, **kw)
    assert y.dtype == x.dtype
    assert_close(y, ty.detach().numpy(), dtype=x.dtype, rtol=1e-10 if x.dtype == np.float64
                 else 1e-5, what="forward")
    r = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    grad, = torch.autograd.grad(ty, tx, torch.from_numpy(r))
    back = transpose(r, x.shape, **kw)
    assert back.shape == x.shape and back.dtype == x.dtype
    assert_close(back, grad.numpy(), dtype=x.dtype, rtol=1e-10 if x.dtype == np.float64
                 else 1e-5, what="transpose")


@given(upsample_cases())
def test_the_transpose_passes_the_dot_test_and_the_matrix_is_the_operator(case):
    x, mode, call = case
    x = x.astype(np.float64)
    forward, transpose, kw = ours(mode, call)
    y_shape = forward(x, **kw).shape
    md.dottest(lambda v: forward(v, **kw), lambda r: transpose(r, x.shape, **kw),
               x.shape, y_shape)
    build = matrices.upsample_bilinear2d_matrix if mode.startswith("bilinear") else \
        matrices.upsample_nearest2d_matrix
    a = build(x.shape[1:], **kw)
    np.testing.assert_allclose(a @ x[0].ravel(), forward(x, **kw)[0].ravel(), rtol=1e-13,
                               atol=1e-13)
    r = np.random.default_rng(2).standard_normal(y_shape)
    np.testing.assert_allclose(a.T @ r[0].ravel(), transpose(r, x.shape, **kw)[0].ravel(),
                               rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(on_reference_backend(forward, x, **kw), forward(x, **kw),
                               rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(on_reference_backend(transpose, r, x.shape, **kw),
                               transpose(r, x.shape, **kw), rtol=1e-12, atol=1e-12)


def test_a_broken_transpose_fails_the_dot_test():
    """The dot test is not vacuous: bilinear's transpose with the weights of the other
    corner setting (a plausible slip) is caught."""
    x_shape, kw = (1, 2, 5, 6), dict(scale_factor=1.5)
    with pytest.raises(md.DotTestError):
        md.dottest(lambda v: md.upsample_bilinear2d(v, **kw),
                   lambda r: md.upsample_bilinear2d_transpose(r, x_shape, align_corners=True,
                                                              **kw),
                   x_shape, (1, 2, 7, 9))


def test_scale_factor_and_size_read_different_pixels():
    """PyTorch's rule: a scale factor of 1.7 on 4 pixels gives 6, read at o / 1.7 (the last
    pixel never read); size 6 reads at o · 4/6."""
    x = np.arange(4.0).reshape(1, 1, 1, 4)
    np.testing.assert_array_equal(md.upsample_nearest2d(x, scale_factor=(1, 1.7)).ravel(),
                                  [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(md.upsample_nearest2d(x, size=(1, 6)).ravel(),
                                  [0, 0, 1, 2, 2, 3])
    np.testing.assert_array_equal(
        md.upsample_nearest2d(x, scale_factor=(1, 1.7), recompute_scale_factor=True),
        md.upsample_nearest2d(x, size=(1, 6)))
    recomputed = md.upsample_bilinear2d(x, scale_factor=(1, 1.7), recompute_scale_factor=True)
    np.testing.assert_allclose(recomputed, md.upsample_bilinear2d(x, size=(1, 6)))
    assert not np.allclose(md.upsample_bilinear2d(x, scale_factor=(1, 1.7)), recomputed)


def test_nearest_transpose_sums_each_output_into_its_source():
    r = np.ones((1, 1, 4, 6))
    back = md.upsample_nearest2d_transpose(r, (2, 3))   # size defaults to r's
    np.testing.assert_array_equal(back, np.full((1, 1, 2, 3), 4.0))


@pytest.mark.parametrize("call, error, match", [
    (dict(), ValueError, "exactly one of size and scale_factor"),
    (dict(size=4, scale_factor=2), ValueError, "exactly one"),
    (dict(size=0), ValueError, "size must be a positive int"),
    (dict(size=(2, 3, 4)), ValueError, "size must be one value or a pair"),
    (dict(scale_factor=-1.0), ValueError, "scale_factor must be > 0"),
    (dict(scale_factor="2"), TypeError, "scale_factor must be a positive number"),
    (dict(scale_factor=0.1), ValueError, "empty"),
    (dict(size=4, recompute_scale_factor=True), ValueError, "goes with scale_factor"),
])
def test_bad_arguments_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        md.upsample_nearest2d(np.zeros((1, 1, 3, 3)), **call)


def test_bad_modes_inputs_and_sizes_are_refused_by_name():
    x = np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match="align_corners is for mode='bilinear' only"):
        md.geometry.interpolation_geometry(x.shape, 4, None, "nearest", True)
    with pytest.raises(ValueError, match="mode must be one of"):
        md.geometry.interpolation_geometry(x.shape, 4, None, "bicubic")
    with pytest.raises(ValueError, match="x must be 4-D"):
        md.upsample_bilinear2d(np.zeros((3, 3)), size=4)
    with pytest.raises(ValueError, match="upsamples to"):
        md.upsample_bilinear2d_transpose(np.zeros((1, 1, 6, 6)), (3, 3), scale_factor=3)
    with pytest.raises(ValueError, match="input_size must be"):
        md.upsample_nearest2d_transpose(np.zeros((1, 1, 6, 6)), 3)


CHILD = textwrap.dedent(r"""
    import sys
    import numpy as np
    import numba
    assert numba.config.DISABLE_JIT
    from numba.core.dispatcher import Dispatcher
    from minideconv.backends import resize_loops
    from test_ops_resampling import every_upsampling
    assert not [n for n, o in vars(resize_loops).items() if isinstance(o, Dispatcher)]
    np.savez(sys.argv[1], **every_upsampling())
""")


def every_upsampling():
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5))
    out = {}
    for mode in MODES:
        forward, transpose, kw = ours(mode, dict(scale_factor=(1.5, 2.5)))
        out[mode] = forward(x, **kw)
        out[mode + "_t"] = transpose(out[mode], x.shape, **kw)
    return out


def test_the_loops_run_as_plain_python(tmp_path):
    proc = run_without_jit(CHILD, str(tmp_path / "out.npz"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    plain = dict(np.load(tmp_path / "out.npz"))
    for name, expected in every_upsampling().items():
        assert_close(plain[name], expected, what=name)
