"""Reflect and replicate padding (beside circular and zeros) and their transposes:
``padding.pad`` / ``pad_adjoint`` against torch's F.pad and autograd, the convolution,
its transpose and its weight gradient with ``padding_mode`` "reflect" / "replicate"
against torch.nn.Conv2d (hypothesis-drawn configurations), the dot test, the sparse
matrices and the reference backend; PyTorch's limits as clear errors.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minideconv as md
from minideconv import matrices
from minideconv.padding import MODES, pad, pad_adjoint

from support.gpu import on_reference_backend
from support.strategies import assert_close, conv_cases


@st.composite
def pad_cases(draw):
    mode = draw(st.sampled_from(MODES))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    limit = {"reflect": (h - 1, w - 1), "circular": (h, w)}.get(mode, (4, 4))
    top, bottom = (draw(st.integers(0, limit[0])) for _ in range(2))
    left, right = (draw(st.integers(0, limit[1])) for _ in range(2))
    x = np.random.default_rng(draw(st.integers(0, 2**31))).standard_normal(
        (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w))
    return x, (top, bottom, left, right), mode


@pytest.mark.torch
@given(pad_cases())
def test_pad_and_its_adjoint_match_torch(case):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    x, pads, mode = case
    top, bottom, left, right = pads
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = torch.nn.functional.pad(tx, (left, right, top, bottom), mode=mode)
    y = pad(x, pads, mode)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    r = np.random.default_rng(0).standard_normal(y.shape)
    grad, = torch.autograd.grad(ty, tx, torch.from_numpy(r))
    assert_close(pad_adjoint(r, pads, mode), grad.numpy(), rtol=1e-12)


@given(pad_cases())
def test_pad_passes_the_dot_test_and_equals_its_matrix(case):
    x, pads, mode = case
    y_shape = pad(x, pads, mode).shape
    md.dottest(lambda v: pad(v, pads, mode), lambda r: pad_adjoint(r, pads, mode),
               x.shape, y_shape)
    p = matrices.pad_matrix(x.shape[1:], pads, mode)
    np.testing.assert_array_equal(p @ x[0].ravel(), pad(x, pads, mode)[0].ravel())


def reflect_or_replicate(case, mode):
    """A circular case (pads ≤ size) as ``mode``; reflect needs pads < size."""
    if mode == "reflect" and any(max(p) >= n for p, n in zip(case.pads, case.hw)):
        mode = "replicate"
    return dataclasses.replace(case, padding_mode=mode)


@pytest.mark.torch
@given(conv_cases(padding_modes=("circular",), dtypes=(np.float64,)),
       st.sampled_from(["reflect", "replicate"]))
def test_conv2d_its_transpose_and_weight_grad_match_torch(case, mode):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    F = torch.nn.functional
    case = reflect_or_replicate(case, mode)
    x, w, b, g = case.arrays()
    (top, bottom), (left, right) = case.pads
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(w).requires_grad_()
    ty = F.conv2d(F.pad(tx, (left, right, top, bottom), mode=case.padding_mode), tw, None,
                  case.stride_arg, 0, case.dilation_arg, case.groups)
    y = md.conv2d(x, w, **case.kwargs())
    assert_close(y, ty.detach().numpy(), rtol=1e-10, what="conv2d")
    gx, gw = torch.autograd.grad(ty, (tx, tw), torch.from_numpy(g))
    back = md.conv_transpose2d(g, w, output_size=x.shape[2:], **case.kwargs())
    assert_close(back, gx.numpy(), rtol=1e-10, what="conv_transpose2d")
    assert_close(md.conv2d_weight_grad(x, g, w.shape, **case.kwargs()), gw.numpy(),
                 rtol=1e-10, what="conv2d_weight_grad")


@given(conv_cases(padding_modes=("circular",), dtypes=(np.float64,), max_size=8),
       st.sampled_from(["reflect", "replicate"]))
def test_conv_with_padding_modes_dot_test_matrices_and_reference(case, mode):
    case = reflect_or_replicate(case, mode)
    x, w, _, g = case.arrays()
    kw = case.kwargs()
    md.dottest(lambda v: md.conv2d(v, w, **kw),
               lambda r: md.conv_transpose2d(r, w, output_size=x.shape[2:], **kw),
               x.shape, g.shape)
    W = matrices.conv2d_matrix(w, x.shape[1:], **kw)
    np.testing.assert_allclose(W @ x[0].ravel(), md.conv2d(x, w, **kw)[0].ravel(),
                               rtol=1e-12, atol=1e-12)
    Wt = matrices.conv_transpose2d_matrix(w, x.shape[1:], **kw)
    assert abs(Wt - W.T).max() <= 1e-15
    np.testing.assert_allclose(on_reference_backend(md.conv2d, x, w, **kw),
                               md.conv2d(x, w, **kw), rtol=1e-12, atol=1e-12)


def test_a_broken_adjoint_fails_the_dot_test():
    """Reflect's adjoint with replicate's fold (a plausible slip) is caught."""
    pads = (2, 1, 1, 2)
    with pytest.raises(md.DotTestError):
        md.dottest(lambda v: pad(v, pads, "reflect"),
                   lambda r: pad_adjoint(r, pads, "replicate"), (1, 2, 4, 5), (1, 2, 7, 8))


@pytest.mark.parametrize("call, match", [
    (lambda: md.conv2d(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), padding=3,
                       padding_mode="reflect"), "smaller than the input size"),
    (lambda: pad(np.zeros((1, 1, 3, 3)), (3, 0, 0, 0), "reflect"), "smaller than"),
    (lambda: pad(np.zeros((1, 1, 3, 3)), (4, 0, 0, 0), "circular"), "must not exceed"),
    (lambda: pad(np.zeros((1, 1, 3, 3)), (1, 1, 1, 1), "edge"), "mode must be one of"),
    (lambda: md.conv2d(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), padding=1,
                       padding_mode="symmetric"), "padding_mode must be one of"),
    (lambda: md.nn.Pad((1, 2, 3)), "padding must be an int"),
    (lambda: md.nn.Pad(1, "reflect", value=1.0), "value=1.0 goes with mode='constant'"),
])
def test_bad_padding_is_refused_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()
