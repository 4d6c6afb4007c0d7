"""max_unpool2d takes the pooling's geometry, as torch.nn.functional.max_unpool2d does,
and refuses a switch that does not lie in its own pooling window.

Switches are flat indices h·W + w: unpooled into a plane of another width they point at
other positions, and a wrong ``output_size`` would scatter the values there without a
word.  So the size must be one that max_pool2d maps to y's size, and every switch must
lie in its own window — checked by a Numba kernel on the CPU and by whole-array code on
the reference (GPU) backend, before anything is written.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minideconv as md
from minideconv import checks, geometry, ops, shapes
from minideconv import backends

cpu, reference = backends.load_cpu_backend(), backends.load_reference_backend()

from support.adjoints import brute_unpool
from support.strategies import DTYPES, PoolCase, as_arg, assert_close, pool_cases

BACKENDS = ["cpu", "reference"]


def unpool_args(case):
    """max_unpool2d's positional geometry for a drawn pool case, as the case passes it
    to max_pool2d (ints, tuples or lists; stride None when it defaults)."""
    return case.kernel_arg, case.stride_arg, case.padding_arg


def default_hw(case):
    """PyTorch's default unpooled size, with our dilation: (o − 1)s − 2p + d(k − 1) + 1."""
    return tuple((o - 1) * s - 2 * p + d * (k - 1) + 1 for o, k, s, p, d in
                 zip(case.out_hw, case.kernel, case.stride, case.padding, case.dilation))


def first_outside(backend, switches, geom):
    """The window check of one backend on (normalised) geometry."""
    module = cpu if backend == "cpu" else reference
    return module.first_switch_outside_window(np.ascontiguousarray(switches, dtype=np.int64),
                                              geom)


# --------------------------------------------------------------------------- (a) scrambling

def test_a_wrong_output_size_is_refused_instead_of_scrambling_silently():
    """A 4x6 input pooled 2x2: every maximum at its window's bottom-right.  (5, 7) is a
    size max_pool2d(2) also maps to (2, 3), and the range check [0, H*W) alone passes it,
    so that check followed by the scatter would return values at other positions without
    a word.  The switches of the second row of windows fail the window check, and a size
    max_pool2d cannot map to (2, 3) fails the size check."""
    x = np.arange(24.0).reshape(1, 1, 4, 6)
    y, s = md.max_pool2d(x, 2)
    g = np.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    right = md.max_unpool2d(g, s, 2, output_size=(4, 6))
    np.testing.assert_array_equal(right, brute_unpool(g, s, (4, 6)))
    np.testing.assert_array_equal(right[0, 0, 1::2, 1::2], g[0, 0])   # bottom-right each

    checks.check_switches(s, y, (5, 7))                  # the range check lets it through
    as_5x7 = geometry.PoolGeometry(kernel=(2, 2), stride=(2, 2), padding=(0, 0),
                                   dilation=(1, 1), in_hw=(5, 7), out_hw=(2, 3))
    scrambled = cpu.max_unpool2d(g, s, as_5x7)            # ... and the bare scatter runs
    assert scrambled.shape == (1, 1, 5, 7)
    assert scrambled[0, 0, 1, 0] == g[0, 0, 0, 0]          # switch 7 read as (1, 0)
    assert scrambled[0, 0, 2, 5] == g[0, 0, 1, 0]          # switch 19 read as (2, 5)
    assert not np.array_equal(scrambled[..., :4, :6], right)

    with pytest.raises(ValueError, match=r"switches\[0, 0, 1, 0\] = 19 \(row 2, column 5\)"):
        md.max_unpool2d(g, s, 2, output_size=(5, 7))
    with pytest.raises(ValueError, match=r"output_size \(4, 8\)"):
        md.max_unpool2d(g, s, 2, output_size=(4, 8))


def test_a_the_check_runs_before_the_scatter(monkeypatch):
    """A bad switch raises before the backend's unpooling kernel is called."""
    called = []
    monkeypatch.setattr(cpu, "max_unpool2d", lambda *a: called.append(a))
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 6))
    y, s = md.max_pool2d(x, 2)
    s[0, 1, 2, 2] = 0
    with pytest.raises(ValueError, match=r"switches\[0, 1, 2, 2\] = 0"):
        md.max_unpool2d(y, s, 2, output_size=(6, 6))
    assert not called


# --------------------------------------------------------------------------- (b) default size

@given(pool_cases(max_dilation=1), st.integers(0, 2**32 - 1))
def test_b_default_size_equals_torchs(case, seed):
    """Without output_size the size is PyTorch's (o − 1)s − 2p + k, here on an input of
    exactly that size (which pools to the same y), so torch's unpool can run too."""
    torch = pytest.importorskip("torch")
    hw = default_hw(case)
    assume(min(hw) >= 1)
    x = np.random.default_rng(seed).standard_normal((1, 2) + hw)
    kw = dict(kernel_size=case.kernel_arg, padding=case.padding_arg)
    if case.stride_arg is not None:
        kw["stride"] = case.stride_arg
    yt, it = torch.nn.functional.max_pool2d(torch.from_numpy(x), return_indices=True, **kw)
    assert tuple(yt.shape[2:]) == case.out_hw
    theirs = torch.nn.functional.max_unpool2d(yt, it, *unpool_args(case))
    ours = md.max_unpool2d(yt.numpy(), it.numpy(), *unpool_args(case))
    assert ours.shape == tuple(theirs.shape) == x.shape


@given(pool_cases(), st.sampled_from(["normal", "ties"]))
def test_b_default_size_is_the_input_when_the_windows_cover_it_exactly(case, values):
    """An input whose last window ends at its last row and column (floor mode), dilation
    included, is unpooled to its own size without output_size, to autograd's gradient
    (brute force np.add.at)."""
    hw = default_hw(case)
    assume(min(hw) >= 1)
    assume(not any(shapes.empty_windows(i, k, s, p, d, o) for i, k, s, p, d, o in
                   zip(hw, case.kernel, case.stride, case.padding, case.dilation,
                       case.out_hw)))
    x = np.random.default_rng(case.seed).standard_normal((case.n, case.c) + hw)
    kw = case.kwargs()
    kw["ceil_mode"] = False
    y, s = md.max_pool2d(x, **kw)
    g = np.random.default_rng(case.seed + 1).standard_normal(y.shape)
    out = md.max_unpool2d(g, s, *unpool_args(case), dilation=case.dilation_arg)
    assert out.shape == x.shape
    assert_close(out, brute_unpool(g, s, hw))


def test_b_a_size_the_windows_do_not_cover_needs_output_size():
    """bench_ops's workload: 110 pools 3x3/2 to 54 windows, whose default is 109."""
    x = np.random.default_rng(2).standard_normal((1, 2, 110, 110))
    y, s = md.max_pool2d(x, 3, 2)
    assert y.shape[2:] == (54, 54)
    assert shapes.max_pool_output_length(109, 3, 2) == 54
    with pytest.raises(ValueError, match="switches"):   # the maxima on row or column 109
        md.max_unpool2d(y, s, 3, 2)
    assert md.max_unpool2d(y, s, 3, 2, output_size=(110, 110)).shape == x.shape


@given(pool_cases(max_dilation=1), st.sampled_from("HW"))
def test_b_accepted_output_sizes_are_those_max_pool2d_maps_to_y_within_torchs(case, axis):
    """Along one axis (the other at its default), output_size L is accepted exactly when
    max_pool2d of an L-long input, in floor or ceil mode, gives y's size; every accepted L
    is also one torch accepts (its range is default − s < L < default + s)."""
    torch = pytest.importorskip("torch")
    hw = default_hw(case)
    assume(min(hw) >= 1 and not case.has_empty_window)
    a = "HW".index(axis)
    s = case.stride[a]
    y = np.zeros((1, 1) + case.out_hw)
    switches = np.zeros(y.shape, np.int64)
    for length in range(max(1, hw[a] - s - 1), hw[a] + s + 2):
        size = list(hw)
        size[a] = length
        pools_to_y = any(shapes.max_pool2d_output_shape(size, case.kernel, case.stride,
                                                        case.padding, 1, ceil_mode)
                         == case.out_hw for ceil_mode in (False, True))
        try:
            first_outside("cpu", switches, geometry.max_unpool2d_geometry(
                y.shape, *unpool_args(case), 1, tuple(size)))
            accepted = True
        except ValueError as e:
            assert str(e).startswith(f"output_size {tuple(size)}"), str(e)
            accepted = False
        assert accepted == pools_to_y, (size, case)
        if accepted:
            torch.nn.functional.max_unpool2d(torch.zeros(y.shape), torch.zeros(y.shape,
                                             dtype=torch.int64), *unpool_args(case),
                                             output_size=tuple(size))


# --------------------------------------------------------------------------- (c) values

@st.composite
def disjoint_pool_cases(draw):
    """Pool cases with kernel <= stride and no dilation (torch's unpool has none),
    drawn directly: filtering pool_cases for them discards too many."""
    kernel, stride, padding, hw = [], [], [], []
    for _ in range(2):
        k = draw(st.integers(1, 4))
        p = draw(st.integers(0, k // 2))
        kernel.append(k), padding.append(p)
        stride.append(draw(st.integers(k, k + 2)))
        hw.append(draw(st.integers(max(1, k - 2 * p), 12)))
    kernel, stride, padding, hw = map(tuple, (kernel, stride, padding, hw))
    stride_arg = None if stride == kernel and draw(st.booleans()) else as_arg(draw, stride)
    return PoolCase(n=draw(st.integers(1, 2)), c=draw(st.integers(1, 3)), hw=hw,
                    kernel=kernel, stride=stride, padding=padding, dilation=(1, 1),
                    ceil_mode=draw(st.booleans()), dtype=draw(st.sampled_from(DTYPES)),
                    seed=draw(st.integers(0, 2**32 - 1)), kernel_arg=as_arg(draw, kernel),
                    stride_arg=stride_arg, padding_arg=as_arg(draw, padding))


@given(disjoint_pool_cases(), st.sampled_from(["normal", "ties"]))
def test_c_without_overlap_equals_torchs_unpool_with_the_same_arguments(case, values):
    """kernel <= stride: no switch repeats, and torch's assigning unpool is the transpose
    too, so the same call gives the same array."""
    torch = pytest.importorskip("torch")
    x = case.x(values)
    _, s = md.max_pool2d(x, **case.kwargs())
    g = case.cotangent()
    theirs = torch.nn.functional.max_unpool2d(torch.from_numpy(g), torch.from_numpy(s),
                                              *unpool_args(case), output_size=x.shape[2:])
    np.testing.assert_array_equal(
        md.max_unpool2d(g, s, *unpool_args(case), output_size=x.shape[2:]), theirs.numpy())


@given(pool_cases(overlapping=True), st.sampled_from(["normal", "ties"]))
def test_c_with_overlap_equals_autograds_max_pool2d_backward(case, values):
    """kernel > stride: shared switches add up, as in autograd's gradient of max_pool2d."""
    torch = pytest.importorskip("torch")
    assume(not case.has_empty_window)
    x = case.x(values)
    _, s = md.max_pool2d(x, **case.kwargs())
    g = case.cotangent()
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = torch.nn.functional.max_pool2d(xt, case.kernel, case.stride, case.padding,
                                        case.dilation, ceil_mode=case.ceil_mode)
    yt.backward(torch.from_numpy(g))
    ours = md.max_unpool2d(g, s, *unpool_args(case), output_size=x.shape,
                           dilation=case.dilation_arg)
    assert_close(ours, xt.grad.numpy(), dtype=case.dtype)


# --------------------------------------------------------------------------- (d) all pass

@given(pool_cases(), st.sampled_from(["normal", "ties", "nan", "inf"]))
def test_d_every_switch_of_max_pool2d_lies_in_its_window(case, values):
    """Padding, dilation, ceil_mode, ties, NaN and windows of −inf: the switches
    max_pool2d returns pass both backends' window check."""
    assume(not case.has_empty_window)
    x = case.x(values)
    _, s = md.max_pool2d(x, **case.kwargs())
    geom = geometry.max_unpool2d_geometry(s.shape, *unpool_args(case), case.dilation_arg,
                                         x.shape[2:])
    assert first_outside("cpu", s, geom) == -1
    assert first_outside("reference", s, geom) == -1


# --------------------------------------------------------------------------- (e) moved

def _moved(geometry, position, moved_to):
    """Switches of a 1x1x9x11 pooling with ``geometry``, the one at output ``position``
    moved to the input position ``moved_to`` = (h, w) (h·W + w even when w is outside
    [0, W): there the flat index aliases a position of another row)."""
    x = np.random.default_rng(3).standard_normal((1, 1, 9, 11))
    y, s = md.max_pool2d(x, **geometry)
    s = s.copy()
    s[(0, 0) + position] = moved_to[0] * 11 + moved_to[1]
    return y, s


# kernel 3, stride 2, padding 1: window (1, 1) is rows 1..3, columns 1..3; window (0, 0)
# is clipped to rows 0..1, columns 0..1; window (0, 5) to columns 9..10.
OVERLAP = dict(kernel_size=3, stride=2, padding=1)
# kernel 2, dilation 2, stride 3: window (1, 1) is rows {3, 5}, columns {3, 5}.
DILATED = dict(kernel_size=2, stride=3, dilation=2)

MOVES = [
    ("up", OVERLAP, (1, 1), (0, 2)),
    ("down", OVERLAP, (1, 1), (4, 2)),
    ("left", OVERLAP, (1, 1), (2, 0)),
    ("right", OVERLAP, (1, 1), (2, 4)),
    ("up, off the image", OVERLAP, (0, 0), (-1, 1)),
    ("left, off the image (the previous row's last column)", OVERLAP, (1, 0), (2, -1)),
    ("right, off the image (the next row's first column)", OVERLAP, (0, 5), (1, 11)),
    ("down, off the image", OVERLAP, (4, 1), (9, 2)),
    ("dilation gap row", DILATED, (1, 1), (4, 3)),
    ("dilation gap column", DILATED, (1, 1), (5, 4)),
    ("dilation gap centre", DILATED, (1, 1), (4, 4)),
    ("one dilation step past the window", DILATED, (1, 1), (3, 7)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("geometry, position, moved_to", [m[1:] for m in MOVES],
                         ids=[m[0] for m in MOVES])
def test_e_a_switch_outside_its_window_is_refused(backend, geometry, position, moved_to,
                                                  monkeypatch):
    monkeypatch.setattr(ops, "CPU_BACKEND", backend)
    y, s = _moved(geometry, position, moved_to)
    with pytest.raises(ValueError, match=r"switches\[0, 0, %d, %d\] = %d .*outside its "
                       r"pooling window" % (position + (s[(0, 0) + position],))):
        md.max_unpool2d(y, s, output_size=(9, 11), **geometry)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("geometry, position, moved_to", [
    (OVERLAP, (1, 1), (3, 3)), (OVERLAP, (0, 0), (0, 0)), (OVERLAP, (0, 5), (1, 10)),
    (DILATED, (1, 1), (5, 5)), (DILATED, (1, 1), (3, 5))])
def test_e_a_switch_moved_within_its_window_is_accepted(backend, geometry, position,
                                                        moved_to, monkeypatch):
    monkeypatch.setattr(ops, "CPU_BACKEND", backend)
    y, s = _moved(geometry, position, moved_to)
    out = md.max_unpool2d(y, s, output_size=(9, 11), **geometry)
    np.testing.assert_array_equal(out, brute_unpool(y, s, (9, 11)))


def test_e_both_backends_report_the_same_first_bad_switch():
    """With bad switches in several planes, both report the first in C order."""
    x = np.random.default_rng(4).standard_normal((3, 4, 8, 8))
    y, s = md.max_pool2d(x, 2)
    s[2, 3, 0, 0] = 63
    s[1, 2, 3, 1] = 0
    s[1, 2, 3, 3] = 0
    geom = geometry.max_unpool2d_geometry(s.shape, 2, None, 0, 1, (8, 8))
    expected = np.ravel_multi_index((1, 2, 3, 1), s.shape)
    assert first_outside("cpu", s, geom) == first_outside("reference", s, geom) == expected


def test_e_uint64_switches_that_wrap_to_negatives_are_refused():
    """uint64 switches beyond int64 wrap to negatives when converted: still refused."""
    x = np.random.default_rng(5).standard_normal((1, 1, 4, 4))
    y, s = md.max_pool2d(x, 2)
    s = s.astype(np.uint64)
    s[0, 0, 1, 1] = 2**64 - 1
    with pytest.raises(ValueError, match=r"switches\[0, 0, 1, 1\]"):
        md.max_unpool2d(y, s, 2)


# --------------------------------------------------------------------------- the layer

def test_maxpool2d_layer_passes_its_geometry_back():
    """nn.MaxPool2d's way back unpools with its own kernel, stride, padding, dilation and
    the recorded input size: equal to the gradient (np.add.at) for a ceil_mode pool."""
    from minideconv import nn
    layer = nn.MaxPool2d(3, stride=2, padding=1, dilation=(1, 2), ceil_mode=True)
    x = np.random.default_rng(6).standard_normal((2, 3, 10, 13))
    y, record = layer.forward(x)
    g = np.random.default_rng(7).standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward(g, record), brute_unpool(g, record[0],
                                                                          x.shape[2:]))
