"""Bad input raises ValueError / TypeError whose message names the parameter — one test
per bad input — and unusual but valid memory layouts (non-contiguous views, negative
strides, Fortran order) give the same answers as C-contiguous copies."""

from __future__ import annotations

import re

import numpy as np
import pytest

import minideconv as md
from minideconv import shapes

from support.strategies import assert_close

rng = np.random.default_rng(12345)
X = rng.standard_normal((2, 4, 8, 9))          # float64 (N, C, H, W)
W = rng.standard_normal((6, 2, 3, 3))          # groups=2: 4 input channels, 6 outputs
W1 = rng.standard_normal((6, 4, 3, 3))         # groups=1
B = rng.standard_normal(6)
Y = rng.standard_normal((2, 6, 6, 7))         # the shape of conv2d(X, W1)
G = rng.standard_normal((2, 6, 6, 7))
POOLED, SWITCHES = None, None


def _pooled():
    global POOLED, SWITCHES
    if POOLED is None:
        POOLED, SWITCHES = md.max_pool2d(X, 2)          # (2, 4, 4, 4)
    return POOLED, SWITCHES


def _switches(dtype=np.int64, shape=None, value=None):
    y, s = _pooled()
    s = s.astype(dtype)
    if shape is not None:
        s = s[..., :shape]
    if value is not None:
        s = s.copy()
        s[0, 0, 0, 0] = value
    return s


def _unpool(y, switches, kernel_size=2, **geometry):
    """max_unpool2d of ``_pooled``'s 2x2 pooling of X by default."""
    geometry.setdefault("output_size", X.shape[2:])
    return md.max_unpool2d(y, switches, kernel_size, **geometry)


x_name = r"\bx\b"
y_name = r"\by\b"

# (id, call, exception type, regex the message must match: the parameter's name)
CASES = [
    # ---- wrong ndim
    ("conv2d x 3-D", lambda: md.conv2d(X[0], W1), ValueError, x_name),
    ("conv2d x 5-D", lambda: md.conv2d(X[None], W1), ValueError, x_name),
    ("conv2d weight 3-D", lambda: md.conv2d(X, W1[0]), ValueError, "weight"),
    ("conv_transpose2d y 3-D", lambda: md.conv_transpose2d(Y[0], W1), ValueError, y_name),
    ("conv_transpose2d weight 2-D", lambda: md.conv_transpose2d(Y, W1[0, 0]), ValueError,
     "weight"),
    ("conv2d_weight_grad x 3-D", lambda: md.conv2d_weight_grad(X[0], G, W1.shape),
     ValueError, x_name),
    ("conv2d_weight_grad grad_out 3-D", lambda: md.conv2d_weight_grad(X, G[0], W1.shape),
     ValueError, "grad_out"),
    ("conv2d_weight_grad weight_shape of length 3",
     lambda: md.conv2d_weight_grad(X, G, (6, 4, 3)), ValueError, "weight_shape"),
    ("max_pool2d x 3-D", lambda: md.max_pool2d(X[0], 2), ValueError, x_name),
    ("max_unpool2d y 3-D", lambda: _unpool(_pooled()[0][0], _switches()[0]), ValueError,
     y_name),
    # ---- channels not matching the weight
    ("conv2d channels != weight.shape[1]*groups", lambda: md.conv2d(X[:, :3], W1),
     ValueError, "weight"),
    ("conv2d channels != weight.shape[1]*groups (groups=2)",
     lambda: md.conv2d(X, W1, groups=2), ValueError, "weight"),
    ("conv_transpose2d channels != weight.shape[0]", lambda: md.conv_transpose2d(Y[:, :5], W1),
     ValueError, "weight"),
    ("conv2d_weight_grad weight_shape channels != x's",
     lambda: md.conv2d_weight_grad(X, G, (6, 3, 3, 3)), ValueError, "weight_shape"),
    ("conv2d_weight_grad grad_out channels != weight_shape[0]",
     lambda: md.conv2d_weight_grad(X, G[:, :5], W1.shape), ValueError, "grad_out"),
    # ---- groups
    ("conv2d groups not dividing C_in", lambda: md.conv2d(X[:, :3], W[:, :1], groups=2),
     ValueError, "groups"),
    ("conv2d groups not dividing C_out", lambda: md.conv2d(X, W[:5], groups=2), ValueError,
     "groups"),
    ("conv2d groups=0", lambda: md.conv2d(X, W1, groups=0), ValueError, "groups"),
    ("conv2d groups float", lambda: md.conv2d(X, W, groups=2.0), TypeError, "groups"),
    ("conv_transpose2d groups not dividing C_out",
     lambda: md.conv_transpose2d(rng.standard_normal((1, 5, 4, 4)), W[:5], groups=2),
     ValueError, "groups"),
    # ---- bias
    ("conv2d bias too short", lambda: md.conv2d(X, W1, B[:5]), ValueError, "bias"),
    ("conv2d bias 2-D", lambda: md.conv2d(X, W1, B[None]), ValueError, "bias"),
    ("conv2d bias list", lambda: md.conv2d(X, W1, list(B)), TypeError, "bias"),
    ("conv2d bias dtype", lambda: md.conv2d(X, W1, B.astype(np.float32)), TypeError, "bias"),
    ("conv_transpose2d bias of C_out length (needs C_in)",
     lambda: md.conv_transpose2d(Y, W1, B), ValueError, "bias"),
    # ---- non-positive stride / dilation / kernel
    ("conv2d stride 0", lambda: md.conv2d(X, W1, stride=0), ValueError, "stride"),
    ("conv2d stride (1, -1)", lambda: md.conv2d(X, W1, stride=(1, -1)), ValueError, "stride"),
    ("conv2d stride float", lambda: md.conv2d(X, W1, stride=1.5), TypeError, "stride"),
    ("conv2d stride triple", lambda: md.conv2d(X, W1, stride=(1, 1, 1)), TypeError, "stride"),
    ("conv2d dilation 0", lambda: md.conv2d(X, W1, dilation=0), ValueError, "dilation"),
    ("conv2d empty kernel", lambda: md.conv2d(X, np.zeros((6, 4, 0, 3))), ValueError,
     "weight"),
    ("conv2d zero output channels", lambda: md.conv2d(X, np.zeros((0, 4, 3, 3))), ValueError,
     "weight"),
    ("conv_transpose2d stride 0", lambda: md.conv_transpose2d(Y, W1, stride=0), ValueError,
     "stride"),
    ("conv_transpose2d dilation -1", lambda: md.conv_transpose2d(Y, W1, dilation=(-1, 1)),
     ValueError, "dilation"),
    ("conv2d_weight_grad stride 0", lambda: md.conv2d_weight_grad(X, G, W1.shape, stride=0),
     ValueError, "stride"),
    ("conv2d_weight_grad weight_shape with 0",
     lambda: md.conv2d_weight_grad(X, G, (6, 4, 0, 3)), ValueError, "weight_shape"),
    ("max_pool2d kernel_size 0", lambda: md.max_pool2d(X, 0), ValueError, "kernel_size"),
    ("max_pool2d kernel_size (2, -1)", lambda: md.max_pool2d(X, (2, -1)), ValueError,
     "kernel_size"),
    ("max_pool2d stride 0", lambda: md.max_pool2d(X, 2, stride=0), ValueError, "stride"),
    ("max_pool2d dilation 0", lambda: md.max_pool2d(X, 2, dilation=0), ValueError,
     "dilation"),
    # ---- padding
    ("conv2d negative padding", lambda: md.conv2d(X, W1, padding=-1), ValueError, "padding"),
    ("conv2d negative padding pair", lambda: md.conv2d(X, W1, padding=(0, -2)), ValueError,
     "padding"),
    ("conv2d unknown padding string", lambda: md.conv2d(X, W1, padding="full"), ValueError,
     "padding"),
    ("conv2d padding='same' with stride 2", lambda: md.conv2d(X, W1, padding="same", stride=2),
     ValueError, "padding"),
    ("conv2d unknown padding_mode", lambda: md.conv2d(X, W1, padding=1, padding_mode="symmetric"),
     ValueError, "padding_mode"),
    ("conv2d circular padding wider than the input",
     lambda: md.conv2d(X[..., :2], W1[..., :1], padding=3, padding_mode="circular"),
     ValueError, "padding"),
    ("conv_transpose2d negative padding", lambda: md.conv_transpose2d(Y, W1, padding=-1),
     ValueError, "padding"),
    ("conv_transpose2d padding too large for the output",
     lambda: md.conv_transpose2d(Y, W1, padding=5), ValueError, "padding"),
    ("max_pool2d negative padding", lambda: md.max_pool2d(X, 2, padding=-1), ValueError,
     "padding"),
    ("max_pool2d padding > kernel/2", lambda: md.max_pool2d(X, 3, padding=2), ValueError,
     "padding"),
    ("max_pool2d padding > kernel/2 on one axis", lambda: md.max_pool2d(X, (4, 2), padding=(2, 2)),
     ValueError, "padding"),
    # ---- kernel larger than the padded input
    ("conv2d kernel larger than input", lambda: md.conv2d(X[..., :2, :], W1), ValueError,
     "weight"),
    ("conv2d dilated kernel larger than padded input",
     lambda: md.conv2d(X, W1, dilation=5, padding=1), ValueError, "weight"),
    ("conv2d_weight_grad kernel of weight_shape larger than input",
     lambda: md.conv2d_weight_grad(X, G, (6, 4, 11, 3)), ValueError, "weight_shape"),
    ("max_pool2d kernel larger than input", lambda: md.max_pool2d(X, (9, 2)), ValueError,
     "kernel_size"),
    ("max_pool2d dilated kernel larger than padded input",
     lambda: md.max_pool2d(X, 3, dilation=5, padding=1), ValueError, "kernel_size"),
    # ---- empty spatial sizes
    ("conv2d H = 0", lambda: md.conv2d(X[:, :, :0], W1), ValueError, x_name),
    ("conv2d W = 0", lambda: md.conv2d(X[..., :0], W1, padding=2), ValueError, x_name),
    ("conv_transpose2d H = 0", lambda: md.conv_transpose2d(Y[:, :, :0], W1), ValueError,
     y_name),
    ("max_pool2d W = 0", lambda: md.max_pool2d(X[..., :0], 1), ValueError, x_name),
    ("relu_backward shape mismatch", lambda: md.relu_backward(X[..., :3], X), ValueError,
     "grad"),
    # ---- output_padding / output_size
    ("output_padding == stride", lambda: md.conv_transpose2d(Y, W1, stride=2,
                                                              output_padding=2),
     ValueError, "output_padding"),
    ("output_padding >= max(stride, dilation)",
     lambda: md.conv_transpose2d(Y, W1, stride=2, dilation=3, output_padding=(0, 3)),
     ValueError, "output_padding"),
    ("output_padding negative", lambda: md.conv_transpose2d(Y, W1, output_padding=-1),
     ValueError, "output_padding"),
    ("output_size of length 3", lambda: md.conv_transpose2d(Y, W1, output_size=(2, 8, 9)),
     (TypeError, ValueError), "output_size"),
    # ---- switches
    ("switches float", lambda: _unpool(_pooled()[0], _switches(np.float64)),
     TypeError, "switches"),
    ("switches list", lambda: _unpool(_pooled()[0], _switches().tolist()),
     TypeError, "switches"),
    ("switches wrong shape", lambda: _unpool(_pooled()[0], _switches(shape=3)),
     ValueError, "switches"),
    ("switches negative", lambda: _unpool(_pooled()[0], _switches(value=-1)),
     ValueError, "switches"),
    ("switches == H*W", lambda: _unpool(_pooled()[0], _switches(value=72)),
     ValueError, "switches"),
    ("switch in another window", lambda: _unpool(_pooled()[0], _switches(value=2)),
     ValueError, r"switches\[0, 0, 0, 0\] = 2 .*rows \[0, 1\] and columns \[0, 1\]"),
    ("max_unpool2d output_size smaller than the pooled input",
     lambda: _unpool(_pooled()[0], _switches(), output_size=(4, 4)), ValueError,
     "output_size"),
    ("max_unpool2d output_size that pools to another size",
     lambda: _unpool(_pooled()[0], _switches(), output_size=(8, 10)), ValueError,
     r"output_size \(8, 10\).*widths 8\.\.9"),
    ("max_unpool2d output_size with the wrong (N, C)",
     lambda: _unpool(_pooled()[0], _switches(), output_size=(2, 3, 8, 9)), ValueError,
     "output_size"),
    ("max_unpool2d output_size not ints",
     lambda: _unpool(_pooled()[0], _switches(), output_size=(8.0, 9.0)), TypeError,
     "output_size"),
    ("max_unpool2d output_size of length 3",
     lambda: _unpool(_pooled()[0], _switches(), output_size=(4, 8, 9)), TypeError,
     "output_size"),
    ("max_unpool2d output_size zero",
     lambda: _unpool(_pooled()[0], _switches(), output_size=(0, 9)), ValueError,
     "output_size"),
    # ---- the pooling geometry of max_unpool2d
    ("max_unpool2d without kernel_size", lambda: md.max_unpool2d(*_pooled()), TypeError,
     "kernel_size"),
    ("max_unpool2d kernel_size 0", lambda: _unpool(*_pooled(), kernel_size=0), ValueError,
     "kernel_size"),
    ("max_unpool2d kernel_size float", lambda: _unpool(*_pooled(), kernel_size=2.0),
     TypeError, "kernel_size"),
    ("max_unpool2d kernel_size string", lambda: _unpool(*_pooled(), kernel_size="2"),
     TypeError, "kernel_size"),
    ("max_unpool2d: (N, C, H, W) given as kernel_size",
     lambda: md.max_unpool2d(*_pooled(), X.shape), TypeError, "kernel_size"),
    ("max_unpool2d: (H, W) given as kernel_size",
     lambda: md.max_unpool2d(*_pooled(), X.shape[2:]), ValueError,
     r"switches.*outside its pooling window"),
    ("max_unpool2d stride 0", lambda: _unpool(*_pooled(), stride=0), ValueError, "stride"),
    ("max_unpool2d stride of length 3", lambda: _unpool(*_pooled(), stride=(2, 2, 2)),
     TypeError, "stride"),
    ("max_unpool2d padding negative", lambda: _unpool(*_pooled(), padding=-1), ValueError,
     "padding"),
    ("max_unpool2d padding more than half the kernel",
     lambda: _unpool(*_pooled(), padding=(0, 2)), ValueError, "padding"),
    ("max_unpool2d padding 'same'", lambda: _unpool(*_pooled(), padding="same"), TypeError,
     "padding"),
    ("max_unpool2d dilation 0", lambda: _unpool(*_pooled(), dilation=0), ValueError,
     "dilation"),
    ("max_unpool2d dilation positional", lambda: md.max_unpool2d(*_pooled(), 2, 2, 0, None, 1),
     TypeError, "positional"),
    # ---- relu rule
    ("unknown relu rule", lambda: md.relu_backward(X, X, rule="zeiler"), ValueError, "rule"),
    ("relu rule in capitals", lambda: md.relu_backward(X, X, rule="Guided"), ValueError,
     "rule"),
    # ---- dtypes
    ("conv2d x float32, weight float64", lambda: md.conv2d(X.astype(np.float32), W1),
     TypeError, "weight"),
    ("conv_transpose2d y float64, weight float32",
     lambda: md.conv_transpose2d(Y, W1.astype(np.float32)), TypeError, "weight"),
    ("conv2d_weight_grad x float32, grad_out float64",
     lambda: md.conv2d_weight_grad(X.astype(np.float32), G, W1.shape), TypeError, "grad_out"),
    ("relu_backward grad float32, x float64",
     lambda: md.relu_backward(X.astype(np.float32), X), TypeError, "grad"),
    ("conv2d complex x", lambda: md.conv2d(X.astype(np.complex128), W1), TypeError, x_name),
    ("conv2d integer x", lambda: md.conv2d(X.astype(np.int64), W1), TypeError, x_name),
    ("conv2d float16 x", lambda: md.conv2d(X.astype(np.float16), W1.astype(np.float16)),
     TypeError, x_name),
    ("conv2d integer weight", lambda: md.conv2d(X, W1.astype(np.int32)), TypeError, "weight"),
    ("conv2d list x", lambda: md.conv2d(X.tolist(), W1), TypeError, x_name),
    ("conv2d list weight", lambda: md.conv2d(X, W1.tolist()), TypeError, "weight"),
    ("conv_transpose2d complex y", lambda: md.conv_transpose2d(Y.astype(np.complex64), W1),
     TypeError, y_name),
    ("conv2d_weight_grad integer grad_out",
     lambda: md.conv2d_weight_grad(X, G.astype(np.int64), W1.shape), TypeError, "grad_out"),
    ("relu list", lambda: md.relu([1.0, -1.0]), TypeError, x_name),
    ("relu integer", lambda: md.relu(np.arange(4)), TypeError, x_name),
    ("relu complex", lambda: md.relu(np.ones(3, np.complex128)), TypeError, x_name),
    ("relu bool", lambda: md.relu(np.ones(3, bool)), TypeError, x_name),
    ("relu_backward integer grad", lambda: md.relu_backward(np.ones((2, 2), int), np.ones((2, 2))),
     TypeError, "grad"),
    ("relu_backward list x", lambda: md.relu_backward(np.ones(2), [1.0, 2.0]), TypeError,
     x_name),
    ("max_pool2d integer x", lambda: md.max_pool2d(np.ones((1, 1, 4, 4), np.int32), 2),
     TypeError, x_name),
    ("max_pool2d list x", lambda: md.max_pool2d(X.tolist(), 2), TypeError, x_name),
    ("max_unpool2d integer y", lambda: _unpool(_switches(), _switches()), TypeError, y_name),
    # ---- a pooling window entirely in padding
    ("max_pool2d window entirely in padding (dilation)",
     lambda: md.max_pool2d(np.ones((1, 1, 2, 7)), (2, 2), stride=1, padding=1,
                           dilation=(3, 1)), ValueError, "padding|dilation"),
]


@pytest.mark.parametrize("call, exc, pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_raises_naming_the_parameter(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_empty_pool_window_config_is_the_one_torch_gets_wrong():
    """The window-in-padding configuration above really has empty windows."""
    o = shapes.max_pool_output_length(2, 2, 1, 1, 3)
    assert shapes.empty_windows(2, 2, 1, 1, 3, o)


@pytest.mark.parametrize("which", ["H", "W"])
@pytest.mark.parametrize("offset", [-1, 2])
def test_unreachable_output_size_lists_the_reachable_sizes(which, offset):
    """Stride 2, kernel 3, padding 1: an input of 4 maps back to 7 or 8; asking for 6 or 9
    raises ValueError naming output_size and listing the reachable sizes."""
    y = rng.standard_normal((1, 2, 4, 5))
    w = rng.standard_normal((2, 3, 3, 3))
    kw = dict(stride=2, padding=1)
    reach_h = list(shapes.conv_transpose_reachable_lengths(4, 3, 2, 1))
    reach_w = list(shapes.conv_transpose_reachable_lengths(5, 3, 2, 1))
    good = (reach_h[0], reach_w[-1])
    assert md.conv_transpose2d(y, w, output_size=good, **kw).shape == (1, 3) + good
    if which == "H":
        bad, reach = (reach_h[0] + offset if offset < 0 else reach_h[-1] + offset - 1,
                      good[1]), reach_h
    else:
        bad, reach = (good[0], reach_w[0] + offset if offset < 0 else
                      reach_w[-1] + offset - 1), reach_w
    with pytest.raises(ValueError, match="output_size") as info:
        md.conv_transpose2d(y, w, output_size=bad, **kw)
    numbers = {int(v) for v in re.findall(r"-?\d+", str(info.value))}
    assert set(reach) <= numbers, (str(info.value), reach)


def test_output_size_and_output_padding_together_are_refused_or_agree():
    """Passing both is ambiguous: refused with a message naming them (or, if accepted, the
    output_size wins as in torch's module)."""
    y = rng.standard_normal((1, 2, 4, 4))
    w = rng.standard_normal((2, 1, 3, 3))
    try:
        out = md.conv_transpose2d(y, w, stride=2, output_padding=1, output_size=(9, 9))
    except ValueError as e:
        assert re.search("output_size|output_padding", str(e))
    else:
        assert out.shape[-2:] == (9, 9)


# --------------------------------------------------------------------------- memory layouts

def _layout(a, layout):
    """The values of ``a`` in another memory layout: Fortran order, a strided view of a
    bigger array, a view with swapped last axes, a negative-stride view, a channels-last
    view.  (1-D arrays, e.g. a bias, get the strided view for the 2-D/4-D-only layouts.)"""
    if a.ndim < 4 and layout in ("fortran", "transposed view", "channels-last view"):
        layout = "every-other-column view"
    if layout == "fortran":
        v = np.asfortranarray(a)
    elif layout == "every-other-column view":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        v = big[..., ::2]
    elif layout == "transposed view":
        v = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    elif layout == "negative strides":
        v = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    else:
        v = np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert np.array_equal(v, a)
    assert not v.flags.c_contiguous, layout
    return v


LAYOUTS = ["fortran", "every-other-column view", "transposed view", "negative strides",
           "channels-last view"]


def _ops(dtype):
    r = np.random.default_rng(7)
    x = r.standard_normal((2, 4, 7, 9)).astype(dtype)
    w = r.standard_normal((6, 2, 3, 2)).astype(dtype)
    b = r.standard_normal(6).astype(dtype)
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    y = md.conv2d(x, w, b, **kw)
    g = r.standard_normal(y.shape).astype(dtype)
    pooled, s = md.max_pool2d(x, 3, stride=2, padding=1)
    gp = r.standard_normal(pooled.shape).astype(dtype)
    return {
        "conv2d": (lambda x, w, b: md.conv2d(x, w, b, **kw), (x, w, b)),
        "conv2d circular": (lambda x, w: md.conv2d(x, w, padding_mode="circular", **kw),
                            (x, w)),
        "conv_transpose2d": (lambda g, w, b: md.conv_transpose2d(
            g, w, b[:4], output_size=x.shape, **kw), (g, w, b)),
        "conv2d_weight_grad": (lambda x, g: md.conv2d_weight_grad(x, g, w.shape, **kw),
                               (x, g)),
        "relu": (md.relu, (x,)),
        "relu_backward guided": (lambda g, x: md.relu_backward(g, x, rule="guided"),
                                 (x[:, ::-1].copy(), x)),
        "max_pool2d": (lambda x: md.max_pool2d(x, 3, stride=2, padding=1), (x,)),
        "max_unpool2d": (lambda gp, s: md.max_unpool2d(gp, s, 3, 2, 1, output_size=x.shape[-2:]),
                         (gp, s)),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", list(_ops(np.float64)))
def test_non_contiguous_and_fortran_inputs_give_the_same_answer(op, layout, dtype):
    fn, args = _ops(dtype)[op]
    expected = fn(*args)
    for i in range(len(args)):
        changed = list(args)
        changed[i] = _layout(args[i], layout)
        got = fn(*changed)
        if isinstance(expected, tuple):
            for e, g_ in zip(expected, got):
                np.testing.assert_array_equal(g_, e)
        else:
            assert got.dtype == expected.dtype
            assert_close(got, expected, dtype=dtype, what=f"{op}: argument {i} {layout}")


# --------------------------------------------------------------------------- the check family

from minideconv import checks  # noqa: E402


@pytest.mark.parametrize("check", [
    lambda v: checks.check_int(v, "count", 1, 9),
    lambda v: checks.check_index(v, "count", 9),
], ids=["check_int", "check_index"])
@pytest.mark.parametrize("value", [True, False, 2.0, 2.5, "2", None, np.float64(2),
                                   np.bool_(True), [2]])
def test_int_checks_refuse_what_is_not_an_int_naming_the_parameter(check, value):
    with pytest.raises(TypeError, match=r"^count must be an int, got "):
        check(value)


@pytest.mark.parametrize("call, message", [
    (lambda: checks.check_int(0, "count", 1, 9), r"^count must be in \[1, 9\], got 0$"),
    (lambda: checks.check_int(10, "count", 1, 9), r"^count must be in \[1, 9\], got 10$"),
    (lambda: checks.check_int(-1, "seed", 0), r"^seed must be >= 0, got -1$"),
    (lambda: checks.check_int(5, "k", maximum=4), r"^k must be <= 4, got 5$"),
    (lambda: checks.check_int(0, "k", 1, 3, why="one per image"),
     r"^k must be in \[1, 3\] \(one per image\), got 0$"),
    (lambda: checks.check_index(9, "channel", 9), r"^channel must be in \[0, 9\), got 9$"),
    (lambda: checks.check_index(-1, "channel", 9, why="layer 1 has 9"),
     r"^channel must be in \[0, 9\) \(layer 1 has 9\), got -1$"),
])
def test_int_checks_say_the_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_int_checks_give_back_python_ints():
    for value in (np.int64(3), np.int32(3), np.uint8(3), 3):
        for got in (checks.check_int(value, "n", 0, 3), checks.check_index(value, "n", 4),
                    checks.check_int(value, "n")):
            assert got == 3 and type(got) is int
    assert checks.check_int(-5, "n") == -5                 # no bound: any int


@pytest.mark.parametrize("value", [True, False, np.bool_(False), "1.5", None, [1.0],
                                   np.ones(1), 1j])
def test_check_real_refuses_what_is_not_a_real_number(value):
    with pytest.raises(TypeError, match=r"^tol must be a real number, got "):
        checks.check_real(value, "tol")


@pytest.mark.parametrize("call, message", [
    (lambda: checks.check_real(float("nan"), "eps"), r"^eps must be finite, got nan$"),
    (lambda: checks.check_real(-np.inf, "eps", 0), r"^eps must be finite, got -inf$"),
    (lambda: checks.check_real(1.5, "p", 0, 1), r"^p must be in \[0, 1\], got 1.5$"),
    (lambda: checks.check_real(-0.1, "w", 0), r"^w must be >= 0, got -0.1$"),
    (lambda: checks.check_real(0, "tol", above=0), r"^tol must be > 0, got 0.0$"),
    (lambda: checks.check_real(2.5, "x", maximum=2), r"^x must be <= 2, got 2.5$"),
    (lambda: checks.check_real(0.5, "tv_beta", 1, why="TV^β"),
     r"^tv_beta must be >= 1 \(TV\^β\), got 0.5$"),
])
def test_check_real_says_the_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_check_real_gives_back_floats_and_takes_ints():
    for value in (2, np.float32(2.0), np.int64(2), 2.0):
        got = checks.check_real(value, "x", 0, 2)
        assert got == 2.0 and type(got) is float
    assert checks.check_real(1e-12, "tol", above=0) == 1e-12
    assert checks.check_real(0, "w", 0) == 0.0             # the bound itself is in range


@pytest.mark.parametrize("value", [1, 0, None, "True", 1.0, np.int64(1)])
def test_check_bool_refuses_what_is_not_a_bool(value):
    with pytest.raises(TypeError, match=r"^ceil_mode must be a bool, got "):
        checks.check_bool(value, "ceil_mode")


def test_check_bool_gives_back_python_bools():
    for value in (True, np.bool_(True)):
        assert checks.check_bool(value, "b") is True
    assert checks.check_bool(np.bool_(False), "b") is False


@pytest.mark.parametrize("value", ["Guided", "", None, 1, ("a",), np.array(["a"])])
def test_check_choice_refuses_others_listing_the_choices(value):
    with pytest.raises(ValueError, match=r"^mode must be one of \('a', 'b'\), got "):
        checks.check_choice(value, "mode", ("a", "b"))
    assert checks.check_choice("b", "mode", ["a", "b"]) == "b"


# Every converted call site refuses a bool where it wants a number, and names the
# parameter: a check that let True through (True == 1 is a valid stride, seed, count…)
# fails here.

def _net():
    r = np.random.default_rng(0)
    return md.nn.Sequential(md.nn.Conv2d(r.standard_normal((2, 1, 3, 3)), np.zeros(2)),
                            md.nn.ReLU(), md.nn.MaxPool2d(2), input_shape=(1, 6, 6))


def _image():
    return np.random.default_rng(1).standard_normal((1, 6, 6))


BOOL_CASES = [
    ("Network.index", lambda: _net().index(True), "layer"),
    ("check_layer", lambda: md.visualize.check_layer(_net(), False), "layer"),
    ("check_channel", lambda: md.visualize.check_channel((2, 4, 4), True, "layer 1"),
     "channel"),
    ("project position", lambda: md.visualize.project(_net(), _image(), 1, 0, (True, 0)),
     "position"),
    ("top_k_patches k", lambda: md.visualize.top_k_patches(_net(), _image()[None], 1, 0,
                                                           k=True), r"\bk\b"),
    ("rank_top_k batch_size", lambda: md.visualize.rank_top_k(_net(), _image()[None], 1,
                                                              batch_size=True),
     "batch_size"),
    ("occlusion patch", lambda: md.visualize.occlusion_map(_net(), _image(), (1, 0),
                                                           patch=True), "patch"),
    ("occlusion stride", lambda: md.visualize.occlusion_map(_net(), _image(), (1, 0),
                                                            patch=3, stride=True), "stride"),
    ("occlusion target", lambda: md.visualize.occlusion_map(_net(), _image(), True,
                                                            patch=3), "target"),
    ("randomize seed", lambda: md.visualize.sanity.randomize(_net(), [0], seed=True),
     "seed"),
    ("invert seed", lambda: md.visualize.invert.invert_representation(
        _net(), _image(), 1, seed=True), "seed"),
    ("invert max_iter", lambda: md.visualize.invert.invert_representation(
        _net(), _image(), 1, max_iter=True), "max_iter"),
    ("invert tol", lambda: md.visualize.invert.invert_representation(
        _net(), _image(), 1, tol=True), "tol"),
    ("invert tv_weight", lambda: md.visualize.invert.invert_representation(
        _net(), _image(), 1, tv_weight=True), "tv_weight"),
    ("Dropout p", lambda: md.nn.Dropout(True), r"\bp\b"),
    ("BatchNorm2d eps", lambda: md.nn.BatchNorm2d(running_mean=np.zeros(2),
                                                  running_var=np.ones(2), eps=True), "eps"),
    ("conv2d groups", lambda: md.conv2d(X, W1, groups=True), "groups"),
    ("MaxPool2d ceil_mode", lambda: md.nn.MaxPool2d(2, ceil_mode=1), "ceil_mode"),
    ("AvgPool2d count_include_pad", lambda: md.nn.AvgPool2d(2, count_include_pad=1),
     "count_include_pad"),
    ("AvgPool2d divisor_override", lambda: md.nn.AvgPool2d(2, divisor_override=True),
     "divisor_override"),
    ("dottest shape", lambda: md.dottest(lambda x: x, lambda y: y, True, 1), "x_shape"),
    ("singular_values k", lambda: md.matrices.singular_values(np.eye(3), k=True), r"\bk\b"),
    ("relu_rule_factors", lambda: md.matrices.relu_rule_factors(
        [np.eye(2), np.eye(2)], [True], np.ones(2)), "relu_positions"),
]


@pytest.mark.parametrize("call, name", [c[1:] for c in BOOL_CASES],
                         ids=[c[0] for c in BOOL_CASES])
def test_every_converted_check_refuses_a_bool(call, name):
    with pytest.raises(TypeError, match=name):
        call()


def test_one_message_for_a_wrong_layer():
    """Network.index, visualize.check_layer and the CLI's --layer say the same thing (the
    CLI with its flag in front): the accepted forms, an index in [-n, n) or a name."""
    from minideconv.cli import checks as cli_checks
    net = _net()
    forms = net.accepted_layers()
    assert forms.startswith("an index in [-3, 3) (the network has 3 layers; negative "
                            "counts from the end) or a name of net.names ('0', '1', '2')")
    for bad, text in ((3, "3"), (-4, "-4"), ("conv", "conv")):
        errors = []
        for call in (net.index, lambda layer: md.visualize.check_layer(net, layer)):
            with pytest.raises(ValueError) as info:
                call(bad)
            errors.append(str(info.value))
        with pytest.raises(cli_checks.UsageError) as info:
            cli_checks.layer_index(net, text)
        assert errors[0] == errors[1] and forms in errors[0]
        assert str(info.value) == "--layer: " + errors[0].removeprefix("layer ")
    assert str(info.value).startswith("--layer: no layer named 'conv'; layer must be")
    with pytest.raises(TypeError, match=re.escape(f"layer must be {forms}, got 1.0")):
        net.index(1.0)
    assert cli_checks.layer_index(net, "-1") == net.index(-1) == 2
    assert cli_checks.layer_indices(net, ["2,0", "2"]) == [2, 0]
