"""The CPU backend's routes must all give the same result.

- A stride-1 transposed convolution can run as a convolution with the flipped kernel
  (``geometry.transpose_as_convolution``), every transposed convolution as GEMM +
  col2im; for stride 1 the route with the smaller column matrix is taken.  Each stride-1
  case is computed both ways, and the routes are compared with each other and with the
  sparse matrix Wᵀ.
- ``conv2d`` and ``conv2d_weight_grad`` cut images whose column matrix exceeds
  ``cpu.BAND_BYTES`` into bands of output rows; a tiny BAND_BYTES forces that on
  the drawn cases, compared with whole images and the sparse matrix W.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import minideconv as md
from minideconv import geometry, matrices
from minideconv import backends
from minideconv.backends import image_threads, winograd

from support.strategies import conv_cases, conv_transpose_cases

cpu = backends.load_cpu_backend()


def _route(y, weight, kwargs, via_convolution):
    """conv_transpose2d, with the stride-1 route forced (where the relation holds)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu, "convolution_route_is_smaller",
                  lambda geom, as_conv, itemsize=4, n_img=1: via_convolution)
        return md.conv_transpose2d(y, weight, **kwargs)


@given(conv_transpose_cases(padding_modes=("zeros", "circular"), dtypes=(np.float64,),
                            max_stride=1, max_channels=6))
def test_stride1_transpose_routes_agree_with_each_other_and_the_sparse_matrix(case):
    """Paddings up to 3 with kernels from 1: the cases where the flipped-kernel relation
    needs a negative padding take GEMM + col2im either way."""
    y, weight, _, _ = case.arrays()
    kwargs = case.kwargs()
    default = md.conv_transpose2d(y, weight, **kwargs)
    via_convolution = _route(y, weight, kwargs, via_convolution=True)
    via_col2im = _route(y, weight, kwargs, via_convolution=False)
    np.testing.assert_allclose(via_convolution, via_col2im, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(default, via_convolution
                                  if _takes_convolution_route(case, weight) else via_col2im)

    # Wᵀ of the convolution of an input of the result's size.  That convolution's output
    # is larger by output_padding (bottom/right); those extra outputs are zero in y.
    c = case.conv
    wt = matrices.conv_transpose2d_matrix(weight, default.shape[1:], padding=c.int_padding,
                                          dilation=c.dilation, groups=c.groups,
                                          padding_mode=c.padding_mode)
    ah, aw = case.output_padding
    y_ext = np.pad(y, ((0, 0), (0, 0), (0, ah), (0, aw)))
    expected = np.stack([wt @ y_n.ravel() for y_n in y_ext]).reshape(default.shape)
    np.testing.assert_allclose(via_convolution, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(via_col2im, expected, rtol=1e-12, atol=1e-12)


def _takes_convolution_route(case, weight):
    c = case.conv
    geom = geometry.conv_transpose2d_geometry(
        c.y_shape, weight, 1, c.int_padding, case.output_padding, c.dilation, c.groups, None,
        c.padding_mode)
    geom = geom.as_zero_padded()
    as_conv = geometry.transpose_as_convolution(geom)
    return as_conv is not None and cpu.convolution_route_is_smaller(geom, as_conv,
                                                                    weight.itemsize)


def test_the_route_with_the_smaller_column_matrix_is_taken():
    """3 → 16 channels: col2im's columns are 3·k² rows, the convolution's 16·k² (5x more);
    128 → 16 channels: the other way round."""
    for c_in, c_out, expect_convolution in [(3, 16, False), (128, 16, True)]:
        weight = np.ones((c_out, c_in, 3, 3))
        geom = geometry.conv_transpose2d_geometry((1, c_out, 8, 8), weight, 1, 1, 0, 1, 1,
                                                 None, "zeros")
        as_conv = geometry.transpose_as_convolution(geom)
        assert cpu.convolution_route_is_smaller(geom, as_conv) == expect_convolution


@pytest.mark.parametrize("size, expect_convolution", [(56, False), (224, True)])
def test_equal_columns_take_the_convolution_when_one_image_exceeds_a_chunk(
        size, expect_convolution, monkeypatch):
    """64 → 64 channels, 3×3, padding 1: both routes unfold 576 × H·W columns; at 56×56
    (7.2 MB an image in float32) GEMM + col2im, at 224×224 (116 MB, more than
    CHUNK_BYTES) the convolution, in bands.  (Without Winograd's route, which makes the
    convolution win at both sizes: tests/test_backends_winograd.py.)"""
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 10**9)
    weight = np.ones((64, 64, 3, 3), np.float32)
    geom = geometry.conv_transpose2d_geometry((1, 64, size, size), weight, 1, 1, 0, 1, 1,
                                             None, "zeros")
    as_conv = geometry.transpose_as_convolution(geom)
    assert (64 * 9 * size * size * 4 > cpu.CHUNK_BYTES) == expect_convolution
    assert cpu.convolution_route_is_smaller(geom, as_conv, 4) == expect_convolution


@pytest.mark.parametrize("stride, padding, expect_route", [
    (1, 0, True), (1, 2, True),           # p ≤ (k − 1)·d = 2: a convolution
    (1, 3, False),                         # p > (k − 1)·d: it would need negative padding
    (2, 1, False), ((1, 2), 1, False),     # stride ≠ 1
])
def test_flipped_kernel_route_applies_exactly_where_the_relation_holds(stride, padding,
                                                                        expect_route):
    weight = np.ones((4, 3, 3, 3))
    geom = geometry.conv2d_geometry((1, 3, 9, 9), weight.shape, stride, padding, 1, 1, "zeros")
    as_conv = geometry.transpose_as_convolution(geom)
    assert (as_conv is not None) == expect_route
    if as_conv is not None:
        assert cpu.flipped_kernel(weight, geom).shape == (3, 4, 3, 3)
        assert as_conv.in_hw == geom.out_hw and as_conv.out_hw == geom.in_hw
        assert as_conv.top_left_pads == (2 - padding, 2 - padding)


def _in_bands(band_bytes, op, *args, **kwargs):
    """``op`` on one thread with BAND_BYTES set to ``band_bytes``."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu, "BAND_BYTES", band_bytes)
        m.setattr(image_threads, "threads_for", lambda n_images, flops: 1)
        return op(*args, **kwargs)


@given(conv_cases(dtypes=(np.float64,), string_padding=False, max_channels=6))
def test_images_cut_into_bands_of_rows_give_what_whole_images_give(case):
    """One byte per band: every output row its own band (the first and last bands read
    padding, some bands only padding); a third of an image's columns: uneven bands of
    several rows."""
    x, weight, _, g = case.arrays()
    kwargs = case.kwargs()
    whole = _in_bands(2**62, md.conv2d, x, weight, **kwargs)
    dw_whole = _in_bands(2**62, md.conv2d_weight_grad, x, g, weight.shape, **kwargs)
    w = matrices.conv2d_matrix(weight, x.shape[1:], stride=case.stride,
                               padding=case.int_padding, dilation=case.dilation,
                               groups=case.groups, padding_mode=case.padding_mode)
    expected = np.stack([w @ x_n.ravel() for x_n in x]).reshape(whole.shape)
    np.testing.assert_allclose(whole, expected, rtol=1e-12, atol=1e-12)
    rows, columns = x.shape[1] * weight[0, 0].size, whole.shape[2] * whole.shape[3]
    column_bytes = x.itemsize * rows * columns
    for band_bytes in (1, max(1, column_bytes // 3)):
        np.testing.assert_allclose(_in_bands(band_bytes, md.conv2d, x, weight, **kwargs),
                                   whole, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            _in_bands(band_bytes, md.conv2d_weight_grad, x, g, weight.shape, **kwargs),
            dw_whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, weight_shape, stride, padding, expect_bands", [
    ((8, 64, 56, 56), (64, 64, 3, 3), 1, 1, 4),    # conv A: 7.2 MB of columns per image
    ((1, 3, 224, 224), (96, 3, 7, 7), 2, 1, 4),    # conv B: 7.1 MB
    ((8, 96, 27, 27), (256, 96, 5, 5), 2, 0, 1),   # conv C: 1.4 MB, whole images
    ((1, 4, 3, 5), (2, 4, 3, 3), 1, 0, 1),         # one output row: it cannot be cut
])
def test_band_count_keeps_a_bands_columns_within_band_bytes(x_shape, weight_shape, stride,
                                                            padding, expect_bands):
    geom = geometry.conv2d_geometry(x_shape, weight_shape, stride, padding, 1, 1, "zeros")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(image_threads, "threads_for", lambda n_images, flops: 1)
        bands, threads = cpu.bands_and_threads(np.empty(x_shape, np.float32), geom)
    assert (bands, threads) == (expect_bands, 1)
