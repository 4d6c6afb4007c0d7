"""Output shapes: every op's output shape equals minideconv.shapes' formula and PyTorch's,
over hypothesis-drawn configurations; the output-padding arithmetic is checked by brute
force; receptive fields are checked by pushing one-hot images through chains of ops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minideconv as md
from minideconv import shapes

from support.strategies import _axis_conv, conv_cases, conv_transpose_cases, pool_cases


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed: "
                                               "cross-checks against torch skipped")


def _t(a):
    torch = _torch()
    return torch.from_numpy(np.ascontiguousarray(a))


# --------------------------------------------------------------------------- conv2d

def _formula_conv2d_shape(case):
    """The shapes-module answer for a ConvCase (string paddings resolved as torch does)."""
    if case.padding == "same":
        return tuple(case.hw)
    padding = (0, 0) if case.padding == "valid" else case.padding
    return shapes.conv2d_output_shape(case.hw, case.kernel, case.stride, padding,
                                      case.dilation)


@given(conv_cases())
def test_conv2d_shape_matches_formula(case):
    x, w, b, _ = case.arrays()
    y = md.conv2d(x, w, b, **case.kwargs())
    assert y.shape == (case.n, case.c_out) + _formula_conv2d_shape(case)
    assert y.dtype == x.dtype


@given(conv_cases(padding_modes=("zeros",)))
def test_conv2d_shape_formula_matches_torch(case):
    torch = _torch()
    x, w, b, _ = case.arrays()
    y = torch.nn.functional.conv2d(_t(x), _t(w), None, case.stride_arg, case.padding_arg,
                                   case.dilation_arg, case.groups)
    assert tuple(y.shape[2:]) == _formula_conv2d_shape(case)


# --------------------------------------------------------------------------- conv_transpose2d

@given(conv_transpose_cases(padding_modes=("zeros", "circular")))
def test_conv_transpose2d_shape_matches_formula(tcase):
    c = tcase.conv
    y, w, b, _ = tcase.arrays()
    out = md.conv_transpose2d(y, w, b, **tcase.kwargs())
    expected = shapes.conv_transpose2d_output_shape(c.out_hw, c.kernel, c.stride,
                                                    c.int_padding, tcase.output_padding,
                                                    c.dilation)
    assert out.shape == (c.n, c.c_in) + expected
    assert out.dtype == y.dtype
    if tcase.output_size is not None:
        assert out.shape[2:] == tuple(tcase.output_size)[-2:]


@given(conv_transpose_cases())
def test_conv_transpose2d_shape_formula_matches_torch(tcase):
    torch = _torch()
    c = tcase.conv
    y, w, _, _ = tcase.arrays()
    out = torch.nn.functional.conv_transpose2d(_t(y), _t(w), None, c.stride, c.int_padding,
                                               tcase.output_padding, c.groups, c.dilation)
    assert tuple(out.shape[2:]) == shapes.conv_transpose2d_output_shape(
        c.out_hw, c.kernel, c.stride, c.int_padding, tcase.output_padding, c.dilation)


@given(_axis_conv(circular=False))
def test_reachable_lengths_are_exactly_the_conv_preimage(axis):
    """Brute force: the input lengths L >= 1 a convolution maps to o are exactly the
    reachable lengths of the transposed convolution from o, and output_padding_for_length
    picks the right one."""
    i, k, s, p, d = axis
    o = shapes.conv_output_length(i, k, s, p, d)
    assert o >= 1
    preimage = {L for L in range(1, i + 4 * s + 8)
                if shapes.conv_output_length(L, k, s, p, d) == o}
    reachable = shapes.conv_transpose_reachable_lengths(o, k, s, p, d)
    assert len(reachable) == s
    assert preimage == {L for L in reachable if L >= 1}
    assert i in preimage
    for L in preimage:
        a = shapes.output_padding_for_length(L, k, s, p, d)
        assert 0 <= a < s
        assert shapes.conv_transpose_output_length(o, k, s, p, a, d) == L


@given(_axis_conv(circular=False), st.sampled_from(["H", "W"]))
def test_conv_transpose2d_output_size_reachable_sizes(axis, which):
    """Every reachable size is returned (as torch's ConvTranspose2d(output_size=...));
    the sizes just outside the range raise ValueError (torch raises too)."""
    i, k, s, p, d = axis
    o = shapes.conv_output_length(i, k, s, p, d)
    reachable = [L for L in shapes.conv_transpose_reachable_lengths(o, k, s, p, d) if L >= 1]
    # the other axis: a plain 1-tap axis of length 3
    kernel = (k, 1) if which == "H" else (1, k)
    stride, padding, dilation = ((s, 1), (p, 0), (d, 1)) if which == "H" else \
        ((1, s), (0, p), (1, d))
    y_hw = (o, 3) if which == "H" else (3, o)
    rng = np.random.default_rng(i * 1000 + k * 100 + s * 10 + p + d)
    y = rng.standard_normal((1, 2) + y_hw)
    w = rng.standard_normal((2, 1) + kernel)
    for L in reachable:
        size = (L, 3) if which == "H" else (3, L)
        out = md.conv_transpose2d(y, w, stride=stride, padding=padding, dilation=dilation,
                                  output_size=size)
        assert out.shape == (1, 1) + size
    smallest = shapes.conv_transpose_output_length(o, k, s, p, 0, d)
    for L in (smallest - 1, smallest + s):
        if L < 1:
            continue
        size = (L, 3) if which == "H" else (3, L)
        with pytest.raises(ValueError, match="output_size"):
            md.conv_transpose2d(y, w, stride=stride, padding=padding, dilation=dilation,
                                output_size=size)


@given(_axis_conv(circular=False))
def test_conv_transpose_reachable_lengths_match_torch(axis):
    torch = _torch()
    i, k, s, p, d = axis
    o = shapes.conv_output_length(i, k, s, p, d)
    reachable = set(shapes.conv_transpose_reachable_lengths(o, k, s, p, d))
    layer = torch.nn.ConvTranspose2d(1, 1, (k, 1), stride=(s, 1), padding=(p, 0),
                                     dilation=(d, 1), bias=False).double()
    y = torch.zeros(1, 1, o, 2, dtype=torch.float64)
    smallest = min(reachable)
    for L in range(max(1, smallest - 2), smallest + s + 2):
        try:
            out = layer(y, output_size=(L, 2))
            accepted = True
            assert out.shape[2] == L
        except (ValueError, RuntimeError):
            accepted = False
        assert accepted == (L in reachable), (L, sorted(reachable))


@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(1, 4))
def test_valid_output_padding_matches_torch(s, d, k, i):
    """torch accepts output_padding a iff a < max(stride, dilation) (pytorch#56328)."""
    torch = _torch()
    w = torch.ones(1, 1, k, 1, dtype=torch.float64)
    y = torch.ones(1, 1, i, 1, dtype=torch.float64)
    valid = shapes.valid_output_padding(s, d)
    for a in range(0, max(s, d) + 2):
        try:
            torch.nn.functional.conv_transpose2d(y, w, stride=(s, 1), dilation=(d, 1),
                                                 output_padding=(a, 0))
            accepted = True
        except RuntimeError:
            accepted = False
        assert accepted == (a in valid), (a, s, d)


# --------------------------------------------------------------------------- max_pool2d

@given(pool_cases())
def test_max_pool2d_shape_matches_formula(case):
    x = case.x()
    if case.has_empty_window:
        with pytest.raises(ValueError):
            md.max_pool2d(x, **case.kwargs())
        return
    y, s = md.max_pool2d(x, **case.kwargs())
    assert y.shape == s.shape == case.y_shape
    assert y.dtype == x.dtype
    assert s.dtype == np.int64


@given(pool_cases(dtypes=(np.float64,)))
def test_max_pool2d_shape_formula_matches_torch(case):
    """Also for configurations with windows entirely in padding (torch computes them)."""
    torch = _torch()
    y, _ = torch.nn.functional.max_pool2d(_t(case.x()), case.kernel, case.stride,
                                          case.padding, case.dilation,
                                          ceil_mode=case.ceil_mode, return_indices=True)
    assert tuple(y.shape[2:]) == case.out_hw


@given(pool_cases(dtypes=(np.float64,)))
def test_empty_windows_match_torch(case):
    """torch leaves exactly the windows that see no input pixel at -inf."""
    torch = _torch()
    y, _ = torch.nn.functional.max_pool2d(_t(case.x()), case.kernel, case.stride,
                                          case.padding, case.dilation,
                                          ceil_mode=case.ceil_mode, return_indices=True)
    rows, cols = case.empty_windows
    expected = np.zeros(case.out_hw, bool)
    expected[list(rows), :] = True
    expected[:, list(cols)] = True
    got = np.isneginf(y.numpy())
    assert np.array_equal(got, np.broadcast_to(expected, got.shape))


# --------------------------------------------------------------------------- receptive field

@st.composite
def _chains(draw):
    """A chain of 1-3 layers, each a conv (followed by a ReLU) or a max-pool, per-axis
    geometry drawn independently; and an input size for which every layer's output is
    non-empty.  Pools have padding <= kernel/2 and no dilation (no empty windows)."""
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "pool"]))
        geo = []
        for _axis in range(2):
            k = draw(st.integers(1, 4))
            s = draw(st.integers(1, 2))
            if kind == "conv":
                d = draw(st.integers(1, 2))
                p = draw(st.integers(0, 2))
            else:
                d = 1
                p = draw(st.integers(0, k // 2))
            geo.append((k, s, p, d))
        layers.append((kind,) + tuple(zip(*geo)))      # (kind, (kh,kw), (sh,sw), ...)
    hw = []
    for axis in range(2):
        length = draw(st.integers(1, 2))               # wanted output length
        for kind, k, s, p, d in reversed(layers):
            eff = d[axis] * (k[axis] - 1) + 1
            length = max(1, (length - 1) * s[axis] + eff - 2 * p[axis])
        hw.append(length + draw(st.integers(0, 2)))
    return layers, tuple(hw), draw(st.integers(0, 2**32 - 1))


def _brute_force_positions(o, layers, axis, lengths=None):
    """The input positions that feed output position ``o`` along ``axis``, by walking the
    windows down the chain: {q·s − p + j·d : j < k}.  Without ``lengths`` padding
    positions are kept (the geometric field); with ``lengths`` (each layer's input length)
    positions outside [0, length) are dropped at every layer: padding feeds nothing."""
    positions = {o}
    for layer, (kind, k, s, p, d) in reversed(list(enumerate(layers))):
        positions = {q * s[axis] - p[axis] + j * d[axis]
                     for q in positions for j in range(k[axis])}
        if lengths is not None:
            positions = {q for q in positions if 0 <= q < lengths[layer]}
    return positions


@given(_chains())
def test_receptive_field_matches_brute_force_support(chain):
    """Push the H*W one-hot images through the chain (positive conv weights, ReLU,
    max-pool, zero padding): output unit (h, w) is positive exactly for the input pixels
    that some path of windows connects to it.  shapes.receptive_field(...).window((h, w))
    is the bounding box of those paths (padding included); with strides larger than a
    kernel, or dilation, the field has holes inside that box."""
    layers, (H, W), seed = chain
    rng = np.random.default_rng(seed)
    x = np.zeros((H * W, 1, H, W))
    x[np.arange(H * W), 0, np.arange(H * W) // W, np.arange(H * W) % W] = 1.0
    a = x
    in_hw = []
    for kind, k, s, p, d in layers:
        in_hw.append(a.shape[2:])
        if kind == "conv":
            w = rng.uniform(0.5, 1.5, size=(2, a.shape[1]) + tuple(k))
            a = md.relu(md.conv2d(a, w, stride=s, padding=p, dilation=d))
        else:
            a, _ = md.max_pool2d(a, k, stride=s, padding=p, dilation=d)
    rf = shapes.receptive_field([(k, s, p, d) for _, k, s, p, d in layers])
    assert a.shape[2] >= 1 and a.shape[3] >= 1
    for h in range(a.shape[2]):
        rows = _brute_force_positions(h, layers, 0)
        real_rows = sorted(_brute_force_positions(h, layers, 0, [hw[0] for hw in in_hw]))
        for w_ in range(a.shape[3]):
            cols = _brute_force_positions(w_, layers, 1)
            real_cols = sorted(_brute_force_positions(w_, layers, 1, [hw[1] for hw in in_hw]))
            r0, r1, c0, c1 = rf.window((h, w_))
            assert (r0, r1, c0, c1) == (min(rows), max(rows) + 1, min(cols), max(cols) + 1)
            expected = np.zeros((H, W), bool)
            expected[np.ix_(real_rows, real_cols)] = True
            assert np.all(expected[:, :max(c0, 0)] == 0) and np.all(expected[:, max(c1, 0):] == 0)
            assert np.all(expected[:max(r0, 0)] == 0) and np.all(expected[max(r1, 0):] == 0)
            for ch in range(a.shape[1]):
                support = (a[:, ch, h, w_] > 0).reshape(H, W)
                assert np.array_equal(support, expected), (h, w_, rf)


@given(_chains())
def test_receptive_field_is_dense_without_gaps(chain):
    """When no layer skips positions (stride <= the dilated kernel's coverage, i.e. every
    layer has d = 1 and s <= k), the receptive field is the full window."""
    layers, _, _ = chain
    for axis in range(2):
        if not all(d[axis] == 1 and s[axis] <= k[axis] for _, k, s, p, d in layers):
            continue
        rf = shapes.receptive_field([(k, s, p, d) for _, k, s, p, d in layers])
        for o in range(3):
            positions = _brute_force_positions(o, layers, axis)
            lo, hi = rf.window((o, o))[2 * axis: 2 * axis + 2]
            assert positions == set(range(lo, hi))


def test_receptive_field_of_a_single_layer_is_its_window():
    rf = shapes.receptive_field([((3, 5), (2, 1), (1, 2), (1, 2))])
    assert rf.size == (3, 9) and rf.jump == (2, 1) and rf.start == (-1, -2)
    assert rf.window((2, 3)) == (3, 6, 1, 10)
