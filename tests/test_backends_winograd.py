"""Winograd's F(2×2, 3×3) route (``backends.winograd``) against the whole-array reference
backend and the im2col + GEMM route.

- ``winograd.conv2d`` called directly on drawn shapes — odd and 1×1 outputs (partial
  tiles), one input channel, batches, every zero padding 0–2 on each side, float32 and
  float64 — equals ``reference.conv2d`` computed in float64: to 1e-5 of max|y| in
  float32, 1e-12 in float64;
- the units of work (bands of tile rows, chunks of images) change nothing, forced small;
- ``cpu.conv2d`` takes the route exactly where ``winograd.applies`` says, and then
  equals the im2col route; ``conv_transpose2d`` reaches it through the flipped-kernel
  convolution, and reflect padding through the caller's padding.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minideconv as md
from minideconv import backends, geometry
from minideconv.backends import reference, winograd

from support.strategies import rel_err

cpu = backends.load_cpu_backend()

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


@st.composite
def winograd_cases(draw):
    """(x, weight, pads): 3×3 filters, any zero padding (top, bottom, left, right) up to
    2 that leaves an output of at least 1×1."""
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    height = draw(st.integers(max(1, 3 - pads[0] - pads[1]), 13))
    width = draw(st.integers(max(1, 3 - pads[2] - pads[3]), 13))
    n, c_in, c_out = (draw(st.integers(1, 3)), draw(st.integers(1, 20)),
                      draw(st.integers(1, 20)))
    dtype = draw(st.sampled_from((np.float32, np.float64)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c_in, height, width)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, 3, 3)).astype(dtype)
    return x, weight, pads


def _geometry(x, weight, pads):
    return geometry.conv2d_geometry(x.shape, weight.shape, 1, pads, 1, 1)


def _reference(x, weight, geom):
    """The plain reference, in float64 whatever the inputs' dtype."""
    return reference.conv2d(x.astype(np.float64), weight.astype(np.float64), geom)


@given(winograd_cases())
def test_winograd_equals_the_reference_on_drawn_shapes(case):
    x, weight, pads = case
    geom = _geometry(x, weight, pads)
    y = winograd.conv2d(x, weight, geom)
    assert y.dtype == x.dtype and y.shape == (x.shape[0], weight.shape[0], *geom.out_hw)
    assert rel_err(y, _reference(x, weight, geom)) <= TOLERANCE[x.dtype.type]


@pytest.mark.parametrize("shape, pads", [
    ((1, 1, 1, 1), (1, 1, 1, 1)),       # one pixel, one channel: a 1×1 output, one tile
    ((2, 3, 5, 7), (1, 1, 1, 1)),       # odd output: partial last tiles both ways
    ((1, 4, 3, 3), (0, 0, 0, 0)),       # no padding: a 1×1 output
    ((3, 2, 6, 4), (0, 2, 2, 0)),       # one-sided padding, as "same" with a stride writes
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_on_the_edge_cases(shape, pads, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(dtype)
    weight = rng.standard_normal((5, shape[1], 3, 3)).astype(dtype)
    geom = _geometry(x, weight, pads)
    assert rel_err(winograd.conv2d(x, weight, geom),
                   _reference(x, weight, geom)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("unit_bytes, per_unit", [(1, 1), (2**14, 1), (2**30, 1), (2**30, 10**6)])
def test_the_units_of_work_change_nothing(monkeypatch, unit_bytes, per_unit):
    """Bands of one tile row, small bands, chunks of several images, whole batches."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 17, 21, 18))
    weight = rng.standard_normal((19, 17, 3, 3))
    geom = _geometry(x, weight, (1, 1, 1, 1))
    monkeypatch.setattr(winograd, "UNIT_BYTES", unit_bytes)
    monkeypatch.setattr(winograd, "MIN_TILES_PER_UNIT", per_unit)
    assert rel_err(winograd.conv2d(x, weight, geom), _reference(x, weight, geom)) <= 1e-12


def test_the_transformed_kernel_is_g_g_gt():
    """U = G g Gᵀ for every filter, against the matrices written out."""
    weight = np.random.default_rng(4).standard_normal((3, 2, 3, 3))
    u = winograd.transformed_kernel(weight)
    for k in range(3):
        for c in range(2):
            expected = winograd.G @ weight[k, c] @ winograd.G.T
            np.testing.assert_allclose(u[:, k, c].reshape(4, 4), expected, rtol=1e-14)


def test_the_flipped_transform_is_that_of_the_flipped_kernel():
    """U of ``cpu.flipped_kernel(w)``, and the convolution with it, without the copy."""
    rng = np.random.default_rng(6)
    weight = rng.standard_normal((20, 17, 3, 3))
    geom = geometry.conv_transpose2d_geometry((2, 20, 9, 11), weight, 1, 1, 0, 1, 1, None)
    as_conv = geometry.transpose_as_convolution(geom)
    flipped = cpu.flipped_kernel(weight, geom)
    np.testing.assert_allclose(winograd.transformed_kernel(weight, flipped=True),
                               winograd.transformed_kernel(flipped), rtol=1e-14, atol=1e-14)
    y = rng.standard_normal((2, 20, 9, 11))
    assert rel_err(winograd.conv2d(y, weight, as_conv, flipped=True),
                   reference.conv_transpose2d(y, weight, geom)) <= 1e-12


def test_applies_only_to_the_convolutions_it_computes_and_is_faster_on():
    def applies(x_shape, c_out=32, kernel=3, n_img=None, **kwargs):
        geom = geometry.conv2d_geometry(x_shape, (c_out, x_shape[1] // kwargs.get("groups", 1),
                                                  kernel, kernel), kwargs.pop("stride", 1),
                                        1, kwargs.pop("dilation", 1), kwargs.pop("groups", 1))
        return winograd.applies(geom, x_shape[0] if n_img is None else n_img)

    assert applies((1, 32, 20, 20))
    assert not applies((1, 32, 20, 20), kernel=5)
    assert not applies((1, 32, 20, 20), stride=2)
    assert not applies((1, 32, 20, 20), dilation=2)
    assert not applies((1, 32, 20, 20), groups=2)
    assert not applies((1, 8, 20, 20))                    # too few input channels
    assert not applies((1, 32, 20, 20), c_out=8)          # too few output channels
    assert applies((1, 16, 20, 20), c_out=32)             # twice as many out as in
    assert not applies((1, 16, 20, 20), c_out=33)         # more, from a narrow input
    assert applies((1, 32, 20, 20), c_out=128)            # a wide input: any
    assert not applies((1, 32, 18, 18))                   # 81 tiles
    assert applies((2, 32, 14, 14))                       # 98 tiles, in two images


def _eligible_arrays(dtype=np.float32):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 24, 19, 22)).astype(dtype)
    return x, rng.standard_normal((20, 24, 3, 3)).astype(dtype)


def _im2col_only(monkeypatch):
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 10**9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_conv2d_takes_the_route_and_agrees_with_im2col(monkeypatch, dtype):
    x, weight = _eligible_arrays(dtype)
    geom = _geometry(x, weight, (1, 1, 1, 1))
    assert winograd.applies(geom, x.shape[0])
    calls = []
    original = winograd.conv2d
    monkeypatch.setattr(winograd, "conv2d", lambda *a: calls.append(1) or original(*a))
    via_winograd = md.conv2d(x, weight, padding=1)
    assert calls == [1]
    with monkeypatch.context() as m:
        _im2col_only(m)
        via_im2col = md.conv2d(x, weight, padding=1)
    assert calls == [1]
    assert rel_err(via_winograd, via_im2col) <= TOLERANCE[dtype]


@pytest.mark.parametrize("padding, padding_mode", [(1, "reflect"), (1, "circular"),
                                                   (0, "zeros"), ("same", "zeros")])
def test_conv2d_and_its_transpose_through_the_route(monkeypatch, padding, padding_mode):
    """Reflect and circular padding are applied by the caller, then the route runs on
    the padded image; the stride-1 transpose runs as the flipped-kernel convolution."""
    x, weight = (a.astype(np.float64) for a in _eligible_arrays())
    y = md.conv2d(x, weight, padding=padding, padding_mode=padding_mode)
    back = md.conv_transpose2d(y, weight, padding=padding, padding_mode=padding_mode,
                               output_size=x.shape[2:])
    monkeypatch.setattr(md.ops, "CPU_BACKEND", "reference")
    assert rel_err(y, md.conv2d(x, weight, padding=padding, padding_mode=padding_mode)) <= 1e-12
    expected = md.conv_transpose2d(y, weight, padding=padding, padding_mode=padding_mode,
                                   output_size=x.shape[2:])
    assert rel_err(back, expected) <= 1e-12


@pytest.mark.parametrize("c_in, c_out, via_winograd", [(64, 64, True), (64, 128, True),
                                                       (32, 128, False)])
def test_the_transpose_takes_the_convolution_route_when_it_runs_as_winograd(
        monkeypatch, c_in, c_out, via_winograd):
    """The transpose of a c_in → c_out convolution: as the convolution (Winograd) its
    columns are c_out/c_in times GEMM + col2im's; taken up to twice as many with
    Winograd, never without it (one image's columns are below ``CHUNK_BYTES``)."""
    weight = np.ones((c_out, c_in, 3, 3), dtype=np.float32)
    geom = geometry.conv_transpose2d_geometry((8, c_out, 16, 16), weight, 1, 1, 0, 1, 1, None)
    as_conv = geometry.transpose_as_convolution(geom)
    assert cpu.convolution_route_is_smaller(geom, as_conv, 4, 8) == via_winograd
    _im2col_only(monkeypatch)
    assert not cpu.convolution_route_is_smaller(geom, as_conv, 4, 8)
