"""The CPU backend can compute a stride-1 transposed convolution as a convolution with
the flipped kernel (``numba_cpu.transposed_as_convolution``), and computes every
transposed convolution as GEMM + col2im otherwise; for stride 1 it takes the route with
the smaller column matrix.  Both routes must give the same Wᵀ y: here each stride-1 case
is computed both ways, and the routes are compared with each other and with the sparse
matrix Wᵀ.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minideconv as md
from minideconv import _checks, matrices
from minideconv.backends import numba_cpu


@st.composite
def stride1_transpose_cases(draw):
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # paddings up to (k − 1)·d + 1: the last value takes the GEMM + col2im route
    ph, pw = draw(st.integers(0, (kh - 1) * dh + 1)), draw(st.integers(0, (kw - 1) * dw + 1))
    mode = draw(st.sampled_from(["zeros", "circular"]))
    wrap = mode == "circular"
    h_min = max(1, wrap * ph, dh * (kh - 1) + 1 - 2 * ph)
    w_min = max(1, wrap * pw, dw * (kw - 1) + 1 - 2 * pw)
    h, w = draw(st.integers(h_min, h_min + 6)), draw(st.integers(w_min, w_min + 6))
    # with dilation > 1 a stride-1 transpose can also add output_padding rows/columns
    ah = draw(st.integers(0, dh - 1)) if mode == "zeros" else 0
    aw = draw(st.integers(0, dw - 1)) if mode == "zeros" else 0
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weight = rng.standard_normal((c_out, c_in // groups, kh, kw))
    y_hw = tuple(n + 2 * p - d * (k - 1) for n, p, d, k in
                 zip((h, w), (ph, pw), (dh, dw), (kh, kw)))
    y = rng.standard_normal((draw(st.integers(1, 2)), c_out, *y_hw))
    kwargs = dict(padding=(ph, pw), dilation=(dh, dw), groups=groups, padding_mode=mode,
                  output_padding=(ah, aw))
    return y, weight, kwargs


def _route(y, weight, kwargs, via_convolution):
    """conv_transpose2d, with the stride-1 route forced (where the relation holds)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(numba_cpu, "convolution_route_is_smaller",
                  lambda geom, as_conv: via_convolution)
        return md.conv_transpose2d(y, weight, **kwargs)


@given(stride1_transpose_cases())
def test_stride1_transpose_routes_agree_with_each_other_and_the_sparse_matrix(case):
    y, weight, kwargs = case
    default = md.conv_transpose2d(y, weight, **kwargs)
    via_convolution = _route(y, weight, kwargs, via_convolution=True)
    via_col2im = _route(y, weight, kwargs, via_convolution=False)
    np.testing.assert_allclose(via_convolution, via_col2im, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(default, via_convolution
                                  if _takes_convolution_route(y, weight, kwargs) else via_col2im)

    # Wᵀ of the convolution of an input of the result's size.  That convolution's output
    # is larger by output_padding (bottom/right); those extra outputs are zero in y.
    conv_kwargs = {k: v for k, v in kwargs.items() if k != "output_padding"}
    wt = matrices.conv_transpose2d_matrix(weight, default.shape[1:], **conv_kwargs)
    ah, aw = kwargs["output_padding"]
    y_ext = np.pad(y, ((0, 0), (0, 0), (0, ah), (0, aw)))
    expected = np.stack([wt @ y_n.ravel() for y_n in y_ext]).reshape(default.shape)
    np.testing.assert_allclose(via_convolution, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(via_col2im, expected, rtol=1e-12, atol=1e-12)


def _takes_convolution_route(y, weight, kwargs):
    geom = _checks.conv_transpose2d_geometry(
        y.shape, weight, 1, kwargs["padding"], kwargs["output_padding"], kwargs["dilation"],
        kwargs["groups"], None, kwargs["padding_mode"])
    route = numba_cpu.transposed_as_convolution(weight, geom)
    return route is not None and numba_cpu.convolution_route_is_smaller(geom, route[1])


def test_the_route_with_the_smaller_column_matrix_is_taken():
    """3 → 16 channels: col2im's columns are 3·k² rows, the convolution's 16·k² (5x more);
    128 → 16 channels: the other way round."""
    for c_in, c_out, expect_convolution in [(3, 16, False), (128, 16, True)]:
        weight = np.ones((c_out, c_in, 3, 3))
        geom = _checks.conv_transpose2d_geometry((1, c_out, 8, 8), weight, 1, 1, 0, 1, 1,
                                                 None, "zeros")
        route = numba_cpu.transposed_as_convolution(weight, geom)
        assert numba_cpu.convolution_route_is_smaller(geom, route[1]) == expect_convolution


@pytest.mark.parametrize("stride, padding, expect_route", [
    (1, 0, True), (1, 2, True),           # p ≤ (k − 1)·d = 2: a convolution
    (1, 3, False),                         # p > (k − 1)·d: it would need negative padding
    (2, 1, False), ((1, 2), 1, False),     # stride ≠ 1
])
def test_flipped_kernel_route_applies_exactly_where_the_relation_holds(stride, padding,
                                                                        expect_route):
    weight = np.ones((4, 3, 3, 3))
    geom = _checks.conv2d_geometry((1, 3, 9, 9), weight.shape, stride, padding, 1, 1, "zeros")
    route = numba_cpu.transposed_as_convolution(weight, geom)
    assert (route is not None) == expect_route
    if route is not None:
        flipped, as_conv = route
        assert flipped.shape == (3, 4, 3, 3)
        assert as_conv.in_hw == geom.out_hw and as_conv.out_hw == geom.in_hw
        assert as_conv.conv_pads == (2 - padding, 2 - padding)
