"""Cross-checks against PyTorch (torch.nn.functional and autograd) over hypothesis-drawn
configurations.  float64 agrees to ~1e-12 relative, float32 to ~1e-5.

Skipped, with the reason shown, only when PyTorch is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the cross-checks "
                                            "against torch.nn.functional are skipped")
F = torch.nn.functional

import minideconv as md  # noqa: E402

from support.strategies import (ConvCase, assert_close, conv_cases,  # noqa: E402
                                conv_transpose_cases, elementwise_arrays, pool_cases)

pytestmark = pytest.mark.torch


def T(a, requires_grad=False):
    t = torch.from_numpy(np.ascontiguousarray(a).copy())
    return t.requires_grad_(requires_grad)


def N(t):
    return t.detach().numpy()


def torch_conv2d(case: ConvCase, x, w, b):
    """conv2d in torch; circular padding = F.pad(mode='circular') then a valid conv
    (what torch.nn.Conv2d(padding_mode='circular') does, 'same' pads included)."""
    if case.padding_mode == "circular":
        (top, bottom), (left, right) = case.pads
        x = F.pad(x, (left, right, top, bottom), mode="circular")
        return F.conv2d(x, w, b, case.stride_arg, 0, case.dilation_arg, case.groups)
    return F.conv2d(x, w, b, case.stride_arg, case.padding_arg, case.dilation_arg,
                    case.groups)


# --------------------------------------------------------------------------- conv2d

@given(conv_cases())
def test_conv2d_matches_torch(case):
    x, w, b, _ = case.arrays()
    out = md.conv2d(x, w, b, **case.kwargs())
    ref = N(torch_conv2d(case, T(x), T(w), None if b is None else T(b)))
    assert out.dtype == x.dtype
    assert_close(out, ref, dtype=case.dtype)


@given(conv_cases(padding_modes=("zeros",), string_padding=False))
def test_conv2d_matches_torch_conv2d_module(case):
    """Through torch.nn.Conv2d, with its own (uniform) initial weights."""
    torch.manual_seed(case.seed)
    layer = torch.nn.Conv2d(case.c_in, case.c_out, case.kernel, case.stride, case.padding,
                            case.dilation, case.groups, bias=case.with_bias)
    layer = layer.to(torch.float64 if case.dtype == np.float64 else torch.float32)
    x, _, _, _ = case.arrays()
    w = N(layer.weight)
    b = None if layer.bias is None else N(layer.bias)
    out = md.conv2d(x, w, b, **case.kwargs())
    assert_close(out, N(layer(T(x))), dtype=case.dtype)


# --------------------------------------------------------------------------- conv_transpose2d

@given(conv_transpose_cases())
def test_conv_transpose2d_matches_torch(tcase):
    """output_padding in [0, max(stride, dilation)) or output_size (converted to torch's
    output_padding), groups, dilation, non-square."""
    c = tcase.conv
    y, w, b, _ = tcase.arrays()
    out = md.conv_transpose2d(y, w, b, **tcase.kwargs())
    ref = F.conv_transpose2d(T(y), T(w), None if b is None else T(b), c.stride,
                             c.int_padding, tcase.output_padding, c.groups, c.dilation)
    assert out.dtype == y.dtype
    assert_close(out, N(ref), dtype=c.dtype)


@given(conv_transpose_cases())
def test_conv_transpose2d_output_size_matches_torch_module(tcase):
    """ConvTranspose2d(...)(y, output_size=...) picks the same output padding."""
    c = tcase.conv
    y, w, b, _ = tcase.arrays()
    size = tuple(tcase.out_hw)
    layer = torch.nn.ConvTranspose2d(c.c_out, c.c_in, c.kernel, c.stride, c.int_padding,
                                     groups=c.groups, bias=b is not None,
                                     dilation=c.dilation)
    layer = layer.to(torch.float64 if c.dtype == np.float64 else torch.float32)
    with torch.no_grad():
        layer.weight.copy_(T(w))
        if b is not None:
            layer.bias.copy_(T(b))
    if any(a >= s for a, s in zip(tcase.output_padding, c.stride)):
        return   # torch's output_size only reaches output_padding < stride
    ref = N(layer(T(y), output_size=size))
    out = md.conv_transpose2d(y, w, b, stride=c.stride_arg, padding=c.padding_arg,
                              dilation=c.dilation_arg, groups=c.groups, output_size=size)
    assert_close(out, ref, dtype=c.dtype)


@given(conv_cases(string_padding=False))
def test_conv_transpose2d_is_torch_autograd_input_gradient(case):
    """conv_transpose2d(g, W, output_size=x's size) = x.grad of <conv2d(x, W), g> in
    torch autograd; with circular padding too (torch has no circular transposed conv)."""
    x, w, b, g = case.arrays()
    xt = T(x, requires_grad=True)
    torch_conv2d(case, xt, T(w), None if b is None else T(b)).backward(T(g))
    kw = case.kwargs()
    out = md.conv_transpose2d(g, w, output_size=x.shape[-2:], **kw)
    assert_close(out, N(xt.grad), dtype=case.dtype)


# --------------------------------------------------------------------------- weight gradient

@given(conv_cases())
def test_conv2d_weight_grad_matches_torch_autograd(case):
    x, w, b, g = case.arrays()
    wt = T(w, requires_grad=True)
    torch_conv2d(case, T(x), wt, None if b is None else T(b)).backward(T(g))
    dw = md.conv2d_weight_grad(x, g, w.shape, **case.kwargs())
    assert dw.shape == w.shape and dw.dtype == w.dtype
    assert_close(dw, N(wt.grad), dtype=case.dtype)


# --------------------------------------------------------------------------- relu

@given(elementwise_arrays(nan=True, min_ndim=1))
def test_relu_matches_torch(x):
    out = md.relu(x)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, N(torch.relu(T(x))))   # NaN propagates in both


@pytest.mark.parametrize("rule", md.rules.NAMES)
@given(data=st.data())
def test_relu_backward_matches_torch(rule, data):
    """backprop = autograd of torch.relu; deconvnet = relu(grad) (captum's Deconvolution);
    guided = relu(grad)·[x > 0] (captum's GuidedBackprop)."""
    x = data.draw(elementwise_arrays(min_ndim=1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    grad = rng.standard_normal(x.shape).astype(x.dtype)
    if rule == "backprop":
        xt = T(x, requires_grad=True)
        torch.relu(xt).backward(T(grad))
        ref = N(xt.grad)
    elif rule == "deconvnet":
        ref = N(F.relu(T(grad)))
    else:
        ref = N(F.relu(T(grad)) * (T(x) > 0).to(T(grad).dtype))
    out = md.relu_backward(grad, x, rule=rule)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("rule", md.rules.NAMES)
@given(data=st.data())
def test_relu_backward_propagates_nan_signal_like_torch(rule, data):
    """A NaN in the incoming signal passes wherever the rule lets the signal through, as
    in torch: backprop = autograd's threshold_backward(g, x, 0), deconvnet = relu(g),
    guided = threshold_backward(relu(g), x, 0) (captum's hook, then relu's own backward:
    a switched-off unit gives 0, never NaN·0)."""
    grad = data.draw(elementwise_arrays(nan=True, min_ndim=1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(grad.shape).astype(grad.dtype)
    threshold_backward = torch.ops.aten.threshold_backward
    ref = {"backprop": lambda: threshold_backward(T(grad), T(x), 0),
           "deconvnet": lambda: F.relu(T(grad)),
           "guided": lambda: threshold_backward(F.relu(T(grad)), T(x), 0)}[rule]()
    np.testing.assert_array_equal(md.relu_backward(grad, x, rule=rule), N(ref))


# --------------------------------------------------------------------------- max-pool

def torch_pool(case, x, requires_grad=False):
    xt = T(x, requires_grad)
    y, idx = F.max_pool2d(xt, case.kernel, case.stride, case.padding, case.dilation,
                          ceil_mode=case.ceil_mode, return_indices=True)
    return xt, y, idx


@given(pool_cases(), st.sampled_from(["normal", "ties", "nan", "tiesnan", "inf"]))
def test_max_pool2d_matches_torch(case, values):
    """Values and int64 indices, ceil_mode, dilation, padding, ties (small integers: the
    first maximum in scan order), NaN (the last NaN wins) and ±inf (a window of -inf
    points at its first real pixel).  Configurations with a window entirely in padding
    (torch: -inf and an out-of-range index) raise ValueError."""
    x = case.x(values)
    if case.has_empty_window:
        with pytest.raises(ValueError):
            md.max_pool2d(x, **case.kwargs())
        return
    y, s = md.max_pool2d(x, **case.kwargs())
    _, yt, it = torch_pool(case, x)
    assert y.dtype == x.dtype and s.dtype == np.int64
    np.testing.assert_array_equal(y, N(yt))
    np.testing.assert_array_equal(s, N(it))


def _check_unpool_vs_autograd(case, values):
    if case.has_empty_window:
        return
    x = case.x(values)
    _, s = md.max_pool2d(x, **case.kwargs())
    g = case.cotangent()
    xt, yt, _ = torch_pool(case, x, requires_grad=True)
    yt.backward(T(g))
    out = md.max_unpool2d(g, s, case.kernel_arg, case.stride_arg, case.padding_arg, output_size=x.shape[-2:],
                          dilation=case.dilation_arg)
    assert out.dtype == x.dtype
    assert_close(out, N(xt.grad), dtype=case.dtype)


@given(pool_cases(), st.sampled_from(["normal", "ties"]))
def test_max_unpool2d_matches_autograd_gradient_of_max_pool2d(case, values):
    """max_unpool2d(g, s, x's size) = x.grad of <max_pool2d(x), g>."""
    _check_unpool_vs_autograd(case, values)


@given(pool_cases(overlapping=True), st.sampled_from(["normal", "ties"]))
def test_max_unpool2d_matches_autograd_with_overlapping_windows(case, values):
    """kernel > stride: shared switches accumulate, as in autograd."""
    _check_unpool_vs_autograd(case, values)


@given(pool_cases(), st.sampled_from(["normal", "ties"]))
def test_max_unpool2d_agrees_with_torch_max_unpool2d_without_overlap(case, values):
    """When windows are disjoint (stride >= dilated kernel) no switch repeats, and torch's
    overwriting max_unpool2d is the transpose too."""
    if case.has_empty_window or any(s < d * (k - 1) + 1 for s, k, d in
                                    zip(case.stride, case.kernel, case.dilation)):
        return
    x = case.x(values)
    _, s = md.max_pool2d(x, **case.kwargs())
    g = case.cotangent()
    # torch's unpool has no dilation: it accepts only sizes within ± stride of its default
    # (o − 1)·s − 2p + k, which a dilated pooling's input need not be
    torch_default = [(o - 1) * st_ - 2 * p + k for o, st_, p, k in
                     zip(s.shape[2:], case.stride, case.padding, case.kernel)]
    if any(not d - st_ < size < d + st_ for d, st_, size in
           zip(torch_default, case.stride, x.shape[2:])):
        return
    ref = F.max_unpool2d(T(g), T(s), case.kernel, case.stride, case.padding,
                         output_size=x.shape[-2:])
    ours = md.max_unpool2d(g, s, case.kernel_arg, case.stride_arg, case.padding_arg, output_size=x.shape,
                           dilation=case.dilation_arg)
    np.testing.assert_array_equal(ours, N(ref))


def test_torch_max_unpool2d_is_not_the_transpose_with_overlapping_windows():
    """REFERENCES.md's example: 5x5 input, its centre the max of all four 3x3/2 windows,
    y = [1, 2, 3, 4]: autograd (and minideconv) give 1+2+3+4 = 10 at the centre; torch's
    max_unpool2d overwrites and gives one of the four (4 on the CPU)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1, 1, 5, 5))
    x[0, 0, 2, 2] = 5.0
    g = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    xt = T(x, requires_grad=True)
    yt, it = F.max_pool2d(xt, 3, 2, return_indices=True)
    yt.backward(T(g))
    ours = md.max_unpool2d(g, md.max_pool2d(x, 3, stride=2)[1], 3, 2, output_size=(5, 5))
    theirs = N(F.max_unpool2d(T(g), it, 3, 2, output_size=(5, 5)))
    assert N(xt.grad)[0, 0, 2, 2] == 10.0
    np.testing.assert_array_equal(ours, N(xt.grad))
    assert theirs[0, 0, 2, 2] in (1.0, 2.0, 3.0, 4.0)
    assert not np.array_equal(theirs, ours)


# --------------------------------------------------------------------------- a whole chain

@pytest.mark.parametrize("rule", md.rules.NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backward_chain_matches_captum(rule, seed):
    """conv -> ReLU -> max-pool 3x3/2 -> conv (1x1 output): the minideconv backward chain
    (conv_transpose2d, max_unpool2d, relu_backward(rule), conv_transpose2d) equals captum's
    Saliency(abs=False) / Deconvolution / GuidedBackprop attributions."""
    captum_attr = pytest.importorskip("captum.attr", reason="captum is not installed")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, 11, 11))
    w1 = rng.standard_normal((4, 2, 3, 3))
    w2 = rng.standard_normal((5, 4, 5, 5))
    target = int(rng.integers(0, 5))

    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), torch.nn.ReLU(),
        torch.nn.MaxPool2d(3, 2), torch.nn.Conv2d(4, 5, 5, bias=False),
        torch.nn.Flatten()).double()
    with torch.no_grad():
        model[0].weight.copy_(T(w1))
        model[3].weight.copy_(T(w2))
    method = {"backprop": lambda m: captum_attr.Saliency(m),
              "deconvnet": lambda m: captum_attr.Deconvolution(m),
              "guided": lambda m: captum_attr.GuidedBackprop(m)}[rule](model)
    kwargs = {"abs": False} if rule == "backprop" else {}
    ref = N(method.attribute(T(x, requires_grad=True), target=target, **kwargs))

    a1 = md.conv2d(x, w1, padding=1)
    h1 = md.relu(a1)
    p1, s1 = md.max_pool2d(h1, 3, stride=2)
    out = md.conv2d(p1, w2)
    assert out.shape == (2, 5, 1, 1)
    r = np.zeros_like(out)
    r[:, target] = 1.0
    r = md.conv_transpose2d(r, w2, output_size=p1.shape[-2:])
    r = md.max_unpool2d(r, s1, 3, 2, output_size=h1.shape[-2:])
    r = md.relu_backward(r, a1, rule=rule)
    r = md.conv_transpose2d(r, w1, padding=1, output_size=x.shape[-2:])
    assert_close(r, ref, dtype=np.float64)
