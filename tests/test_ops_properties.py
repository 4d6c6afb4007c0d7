"""Mathematical properties of the core operators, without PyTorch.

* adjointness (``minideconv.dottest``): <W x, y> = <x, Wᵀ y> for conv2d / conv_transpose2d
  (zeros and circular padding) and <P(s) x, y> = <x, P(s)ᵀ y> for max_pool2d / max_unpool2d,
  overlapping windows included;
* gradients: conv_transpose2d and conv2d_weight_grad equal central finite differences;
* WᵀW ≠ I in general, = I exactly under the named conditions;
* max_pool2d / max_unpool2d / relu / relu_backward against brute-force NumPy references.

Relative errors of dot products are measured against the natural rounding scale
<|W| |x|, |y|> (float32 <= 1e-5, float64 <= 1e-12): ``dottest_at_rounding_scale``
(``support.adjoints``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minideconv as md
from minideconv import shapes

from support.adjoints import brute_unpool, dottest_at_rounding_scale
from support.strategies import (DTYPES, RTOL, ConvCase, assert_close, conv_cases, dot,
                                elementwise_arrays, orthonormal_columns, pool_cases, rel_err)


# --------------------------------------------------------------------------- helpers

def _transpose_kwargs(case: ConvCase, x) -> dict:
    kw = case.kwargs()
    kw["output_size"] = x.shape[-2:]
    return kw


def _window_rows(o, k, s, p, d):
    return list(shapes.window_positions(o, k, s, p, d))


def brute_max_pool(x, case):
    """Reference max-pool in plain Python/NumPy: scan each window row-major; a value
    replaces the running max when it is larger or NaN (PyTorch's rule: ties keep the first
    maximum, the last NaN wins)."""
    N, C, H, W = x.shape
    Ho, Wo = case.out_hw
    y = np.empty((N, C, Ho, Wo), x.dtype)
    idx = np.empty((N, C, Ho, Wo), np.int64)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = case.kernel, case.stride, case.padding, \
        case.dilation
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                rows = [r for r in _window_rows(oh, kh, sh, ph, dh) if 0 <= r < H]
                for ow in range(Wo):
                    cols = [q for q in _window_rows(ow, kw, sw, pw, dw) if 0 <= q < W]
                    best, best_i = -np.inf, None
                    for r in rows:
                        for q in cols:
                            v = x[n, c, r, q]
                            if best_i is None or v > best or np.isnan(v):
                                best, best_i = v, r * W + q
                    y[n, c, oh, ow] = best
                    idx[n, c, oh, ow] = best_i
    return y, idx


def gather_at_switches(x, switches):
    """P(s) x: the value of x at every switch (what max_pool2d returns, for x itself)."""
    n, c = switches.shape[:2]
    return np.take_along_axis(x.reshape(n, c, -1), switches.reshape(n, c, -1),
                              axis=2).reshape(switches.shape)


# --------------------------------------------------------------------------- adjointness

@given(conv_cases(string_padding=False, bias=False))
def test_conv2d_and_conv_transpose2d_are_adjoint(case):
    """<conv2d(x), g> = <x, conv_transpose2d(g, output_size=x's size)>, zeros and
    circular padding, strides, dilations, groups."""
    x, w, _, g = case.arrays()
    kwargs, transpose_kwargs = case.kwargs(), _transpose_kwargs(case, x)
    Wx = md.conv2d(x, w, **kwargs)
    WTg = md.conv_transpose2d(g, w, **transpose_kwargs)
    assert Wx.shape == g.shape and WTg.shape == x.shape
    assert Wx.dtype == WTg.dtype == case.dtype

    def rounding_scale(x, y):      # <|W| |x|, |y|>
        return dot(md.conv2d(np.abs(x).astype(np.float64), np.abs(w).astype(np.float64),
                             **kwargs), np.abs(y))

    dottest_at_rounding_scale(lambda v: md.conv2d(v, w, **kwargs),
                              lambda u: md.conv_transpose2d(u, w, **transpose_kwargs),
                              x.shape, g.shape, case.dtype, rounding_scale, seed=case.seed)


def _check_pool_adjoint(case, values):
    """max_pool2d with its switches s fixed is the selection P(s): P(s) x = max_pool2d(x)
    exactly, and max_unpool2d(·, s) must be P(s)ᵀ."""
    x = case.x(values)
    y, s = md.max_pool2d(x, **case.kwargs())
    np.testing.assert_array_equal(gather_at_switches(x, s), y)

    def unpool(g):
        return md.max_unpool2d(g, s, case.kernel_arg, case.stride_arg, case.padding_arg,
                               output_size=x.shape[-2:], dilation=case.dilation_arg)

    PTg = unpool(case.cotangent())
    assert PTg.shape == x.shape and PTg.dtype == x.dtype

    def rounding_scale(x, y):      # <|P(s) x|, |y|>
        return dot(np.abs(gather_at_switches(x, s)), np.abs(y))

    dottest_at_rounding_scale(lambda v: gather_at_switches(v, s), unpool, x.shape, y.shape,
                              case.dtype, rounding_scale, seed=case.seed)


@given(pool_cases(), st.sampled_from(["normal", "ties"]))
def test_max_pool2d_and_max_unpool2d_are_adjoint(case, values):
    """<max_pool2d(x)[0], g> = <x, max_unpool2d(g, s, x's size)>, overlapping windows and
    ties included."""
    if not case.has_empty_window:
        _check_pool_adjoint(case, values)


@given(pool_cases(overlapping=True), st.sampled_from(["normal", "ties"]))
def test_max_pool_unpool_adjoint_with_overlapping_windows(case, values):
    """kernel > stride on both axes: several outputs share a switch; the transpose must
    accumulate them (brute force np.add.at), and the dot-product test must hold."""
    if case.has_empty_window:
        return
    _check_pool_adjoint(case, values)
    x = case.x(values)
    _, s = md.max_pool2d(x, **case.kwargs())
    g = case.cotangent()
    assert_close(md.max_unpool2d(g, s, case.kernel_arg, case.stride_arg, case.padding_arg, output_size=x.shape,
                                 dilation=case.dilation_arg),
                 brute_unpool(g, s, x.shape[-2:]),
                 what="max_unpool2d vs np.add.at")


# --------------------------------------------------------------------------- max-pool / unpool

@given(pool_cases(), st.sampled_from(["normal", "ties", "nan", "tiesnan", "inf"]))
def test_max_pool2d_matches_brute_force(case, values):
    """Values and switches equal a plain-Python window scan (ties: first maximum in scan
    order; NaN: the last NaN wins); the switches gather y from x."""
    if case.has_empty_window:
        return
    x = case.x(values)
    y, s = md.max_pool2d(x, **case.kwargs())
    y_ref, s_ref = brute_max_pool(x, case)
    np.testing.assert_array_equal(y, y_ref)        # NaN == NaN here
    np.testing.assert_array_equal(s, s_ref)
    assert s.dtype == np.int64
    H, W = case.hw
    assert s.min() >= 0 and s.max() < H * W
    gathered = np.take_along_axis(x.reshape(x.shape[0], x.shape[1], -1),
                                  s.reshape(s.shape[0], s.shape[1], -1), axis=2)
    np.testing.assert_array_equal(gathered.reshape(y.shape), y)


def test_max_unpool2d_accumulates_the_shared_centre():
    """REFERENCES.md: 5x5 input whose centre is the max of all four 3x3/2 windows,
    y = [1, 2, 3, 4]: the transpose puts 1+2+3+4 at the centre (PyTorch's max_unpool2d,
    which overwrites, gives 4)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1, 1, 5, 5))
    x[0, 0, 2, 2] = 5.0
    pooled, s = md.max_pool2d(x, 3, stride=2)
    assert pooled.shape == (1, 1, 2, 2)
    assert np.all(s == 2 * 5 + 2)
    g = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    out = md.max_unpool2d(g, s, 3, 2, output_size=(5, 5))
    expected = np.zeros((1, 1, 5, 5))
    expected[0, 0, 2, 2] = g.sum()
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(md.max_unpool2d(g, s, 3, 2, output_size=(1, 1, 5, 5)), expected)


# --------------------------------------------------------------------------- finite differences

def _fd_input_gradient(f_batch, x, h):
    """Central differences of a function that is evaluated on a batch of inputs:
    f_batch(X) -> one value per leading index."""
    E = np.eye(x.size, dtype=x.dtype).reshape((x.size,) + x.shape)
    return ((f_batch(x + h * E) - f_batch(x - h * E)) / (2 * h)).reshape(x.shape)


@given(conv_cases(string_padding=False, dtypes=(np.float64,), max_size=6, max_kernel=4,
                  bias=True))
def test_conv_transpose2d_equals_finite_difference_input_gradient(case):
    """conv_transpose2d(g, W) = ∂<conv2d(x, W) + b, g>/∂x, by central differences in float64
    (the function is affine, so the differences are exact up to rounding)."""
    x, w, b, g = case.arrays()
    kw = case.kwargs()
    h = 0.5
    grad = md.conv_transpose2d(g, w, **_transpose_kwargs(case, x))
    for n in range(case.n):
        def f(X, n=n):   # X: (m, C_in, H, W) -> (m,)
            out = md.conv2d(X, w, b, **kw)
            return np.einsum("mchw,chw->m", out, g[n])
        fd = _fd_input_gradient(f, x[n], h)
        assert_close(grad[n], fd, rtol=1e-9, what=f"sample {n}")


@given(conv_cases(dtypes=(np.float64,), max_size=6, max_kernel=3, max_channels=3))
def test_conv2d_weight_grad_equals_finite_differences(case):
    """conv2d_weight_grad(x, g, w.shape) = ∂<conv2d(x, w), g>/∂w by central differences."""
    x, w, b, g = case.arrays()
    kw = case.kwargs()
    dw = md.conv2d_weight_grad(x, g, w.shape, **kw)
    assert dw.shape == w.shape and dw.dtype == w.dtype
    h = 0.5
    fd = np.empty_like(w)
    for i in np.ndindex(w.shape):
        wp, wm = w.copy(), w.copy()
        wp[i] += h
        wm[i] -= h
        fd[i] = (dot(md.conv2d(x, wp, b, **kw), g) - dot(md.conv2d(x, wm, b, **kw), g)) / (2 * h)
    assert_close(dw, fd, rtol=1e-9)


@given(conv_cases(string_padding=False, dtypes=(np.float64,), max_size=6, max_kernel=4,
                  bias=False))
def test_conv2d_is_the_finite_difference_gradient_of_conv_transpose2d(case):
    """The other direction: ∂<conv_transpose2d(y, W), r>/∂y = conv2d(r, W)."""
    x, w, _, g = case.arrays()
    kw = _transpose_kwargs(case, x)
    r = x                                   # a cotangent of conv_transpose2d's output
    expected = md.conv2d(r, w, **case.kwargs())
    for n in range(case.n):
        def f(Y, n=n):
            out = md.conv_transpose2d(Y, w, **kw)
            return np.einsum("mchw,chw->m", out, r[n])
        fd = _fd_input_gradient(f, g[n], 0.5)
        assert_close(expected[n], fd, rtol=1e-9, what=f"sample {n}")


# --------------------------------------------------------------------------- WᵀW ≠ I

def _round_trip(x, w, **kw):
    y = md.conv2d(x, w, **kw)
    return md.conv_transpose2d(y, w, output_size=x.shape[-2:], **kw)


@given(conv_cases(string_padding=False, dtypes=(np.float64,), bias=False))
def test_transpose_is_not_the_inverse_for_generic_weights(case):
    """Gaussian weights are (almost surely) not an orthonormal-column W: WᵀW x ≠ x."""
    x, w, _, _ = case.arrays()
    z = _round_trip(x, w, **case.kwargs())
    assert z.shape == x.shape
    assert rel_err(z, x) > 1e-6


@given(st.integers(1, 4), st.integers(0, 3), st.integers(1, 2), st.integers(1, 7),
       st.integers(1, 7), st.sampled_from(DTYPES), st.integers(0, 2**32 - 1))
def test_transpose_inverts_1x1_conv_with_orthonormal_columns(c_in, extra, n, H, W, dtype,
                                                             seed):
    """Condition: 1x1 kernel, stride 1, C_out >= C_in and the (C_out, C_in) weight matrix
    has orthonormal columns (WᵀW = I_{C_in})  =>  conv_transpose2d(conv2d(x)) = x."""
    rng = np.random.default_rng(seed)
    c_out = c_in + extra
    w = orthonormal_columns(rng, c_out, c_in, dtype).reshape(c_out, c_in, 1, 1)
    x = rng.standard_normal((n, c_in, H, W)).astype(dtype)
    z = _round_trip(x, w)
    assert z.dtype == x.dtype
    assert_close(z, x, dtype=dtype)


@given(st.integers(2, 4), st.integers(1, 2), st.integers(3, 7), st.integers(3, 7),
       st.sampled_from(DTYPES), st.integers(0, 2**32 - 1))
def test_1x1_conv_with_fewer_outputs_than_inputs_is_not_inverted(c_in, n, H, W, dtype, seed):
    """C_out < C_in: W has a null space, so WᵀW ≠ I even with orthonormal rows."""
    rng = np.random.default_rng(seed)
    c_out = c_in - 1
    w = orthonormal_columns(rng, c_in, c_out, dtype).T.reshape(c_out, c_in, 1, 1)
    x = rng.standard_normal((n, c_in, H, W)).astype(dtype)
    assert rel_err(_round_trip(x, w), x) > 1e-3


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2),
       st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.integers(0, 2),
       st.sampled_from(DTYPES), st.integers(0, 2**32 - 1))
def test_transpose_inverts_stride_equals_kernel_tiling_with_orthonormal_filters(
        kh, kw, c_in, extra, tiles_h, tiles_w, rem_h, rem_w, dtype, seed):
    """Condition: stride = kernel (the windows tile the image without overlap) and the
    C_out filters, flattened to C_in*kh*kw vectors, are orthonormal columns (C_out >=
    C_in*kh*kw)  =>  every tiled pixel is recovered exactly; pixels of the last rows /
    columns that no window covers (H mod kh, W mod kw) come back as 0."""
    rng = np.random.default_rng(seed)
    m = c_in * kh * kw
    c_out = m + extra
    w = orthonormal_columns(rng, c_out, m, dtype).reshape(c_out, c_in, kh, kw)
    H, W = tiles_h * kh + rem_h % kh, tiles_w * kw + rem_w % kw
    x = rng.standard_normal((1, c_in, H, W)).astype(dtype)
    z = _round_trip(x, w, stride=(kh, kw))
    Hc, Wc = tiles_h * kh, tiles_w * kw
    assert_close(z[..., :Hc, :Wc], x[..., :Hc, :Wc], dtype=dtype)
    assert np.all(z[..., Hc:, :] == 0) and np.all(z[..., :, Wc:] == 0)


@given(st.integers(2, 3), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_orthonormal_filters_with_overlapping_windows_are_not_inverted(k, extra, seed):
    """Same orthonormal k*k filters, but stride 1 < kernel on an image larger than one
    window: windows overlap, pixels are counted by several windows, and WᵀW ≠ I."""
    size = k + extra
    rng = np.random.default_rng(seed)
    w = orthonormal_columns(rng, k * k, k * k).reshape(k * k, 1, k, k)
    x = rng.standard_normal((1, 1, size, size))
    assert rel_err(_round_trip(x, w, stride=1), x) > 1e-3


def _coverage(length, k, s, p, d):
    """How many windows of a convolution contain each input position (brute force)."""
    count = np.zeros(length, int)
    for o in range(shapes.conv_output_length(length, k, s, p, d)):
        for j in range(k):
            q = o * s - p + j * d
            if 0 <= q < length:
                count[q] += 1
    return count


@given(st.data())
def test_complete_orthonormal_filter_bank_gives_the_coverage_count(data):
    """With a complete orthonormal filter bank (C_out = C_in*kh*kw filters forming an
    orthogonal matrix), WᵀW = diag(number of windows covering each pixel), for any
    stride, padding and dilation: the identity exactly where every pixel is covered once
    (stride = kernel tiling), not the identity as soon as windows overlap or skip."""
    c_in = data.draw(st.integers(1, 2))
    geo = []
    for _ in range(2):
        k = data.draw(st.integers(1, 3))
        s = data.draw(st.integers(1, 3))
        d = data.draw(st.integers(1, 2))
        p = data.draw(st.integers(0, d * (k - 1)))
        size = data.draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 9))
        geo.append((size, k, s, p, d))
    (H, kh, sh, ph, dh), (W, kw, sw, pw, dw) = geo
    dtype = data.draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    m = c_in * kh * kw
    w = orthonormal_columns(rng, m, m, dtype).reshape(m, c_in, kh, kw)
    x = rng.standard_normal((2, c_in, H, W)).astype(dtype)
    z = _round_trip(x, w, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
    count = np.outer(_coverage(*geo[0]), _coverage(*geo[1]))
    assert_close(z, count * x, dtype=dtype)
    if np.all(count == 1):
        assert_close(z, x, dtype=dtype)
    else:
        assert rel_err(z, x) > 1e-3


# --------------------------------------------------------------------------- relu

@given(elementwise_arrays(nan=True, min_ndim=1))
def test_relu_matches_definition(x):
    y = md.relu(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    expected = np.where(x > 0, x, 0).astype(x.dtype)
    expected[np.isnan(x)] = np.nan                      # NaN propagates
    np.testing.assert_array_equal(y, expected)
    assert y is not x


@pytest.mark.parametrize("rule", ["backprop", "deconvnet", "guided"])
@given(data=st.data())
def test_relu_backward_rules_match_definition(rule, data):
    x = data.draw(elementwise_arrays(min_ndim=1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    grad = rng.standard_normal(x.shape).astype(x.dtype)
    grad[rng.random(x.shape) < 0.1] = 0.0
    expected = {"backprop": np.where(x > 0, grad, 0),
                "deconvnet": np.maximum(grad, 0),
                "guided": np.where(x > 0, np.maximum(grad, 0), 0)}[rule]
    out = md.relu_backward(grad, x, rule=rule)
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(out, expected)


def test_relu_backward_default_rule_is_backprop():
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(md.relu_backward(g, x),
                                  md.relu_backward(g, x, rule="backprop"))


def test_deconvnet_rule_ignores_the_forward_mask():
    """deconvnet passes positive signal where the forward input was negative; the two
    other rules block it."""
    x = -np.ones((1, 1, 2, 2))
    g = np.ones((1, 1, 2, 2))
    assert np.all(md.relu_backward(g, x, rule="deconvnet") == 1)
    assert np.all(md.relu_backward(g, x, rule="backprop") == 0)
    assert np.all(md.relu_backward(g, x, rule="guided") == 0)


# --------------------------------------------------------------------------- bias

@given(conv_cases(bias=True))
def test_conv2d_bias_adds_per_channel(case):
    x, w, b, _ = case.arrays()
    kw = case.kwargs()
    diff = md.conv2d(x, w, b, **kw).astype(np.float64) - md.conv2d(x, w, **kw)
    assert_close(diff, np.broadcast_to(b[None, :, None, None].astype(np.float64), diff.shape),
                 dtype=case.dtype, rtol=RTOL[np.dtype(case.dtype)] * 100)
