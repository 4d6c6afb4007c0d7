"""Average pooling and adaptive average pooling, and their transposes.

- ``avg_pool2d`` / ``adaptive_avg_pool2d`` equal ``torch.nn.functional``'s over every
  option (padding, ceil_mode windows that hang over the border, count_include_pad,
  divisor_override; output larger than the input, None entries), and each transpose
  equals torch's autograd gradient;
- the divisor rule written out by hand on small cases;
- each transpose passes the dot test (``minideconv.dottest``) against its forward map;
- the sparse matrices A equal the operators, and Aᵀ the transposes;
- the reference backend gives the CPU backend's results;
- the loops run as plain Python under ``NUMBA_DISABLE_JIT=1`` with the same results;
- bad arguments are a ValueError / TypeError naming the parameter, before any kernel runs.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minideconv import geometry, matrices, ops
from minideconv.dottest import DotTestError, dottest

from support.adjoints import dottest_at_rounding_scale
from support.gpu import cupy_or_skip, on_reference_backend
from support.strategies import assert_close, dot
from support.subprocesses import run_without_jit

try:
    import torch
    F = torch.nn.functional
except ImportError:  # pragma: no cover - torch is in the test environment
    torch = F = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed: the "
                                 "cross-checks against torch.nn.functional are skipped")


def T(a, requires_grad=False):
    return torch.from_numpy(np.ascontiguousarray(a).copy()).requires_grad_(requires_grad)


def torch_value_and_grad(function, x, r):
    """function(x) and the gradient of <function(x), r> with respect to x, by autograd."""
    t = T(x, requires_grad=True)
    y = function(t)
    y.backward(T(r))
    return y.detach().numpy(), t.grad.numpy()


# --------------------------------------------------------------------------- cases

@dataclass(frozen=True)
class AvgCase:
    """One avg_pool2d call: arguments and the input's shape, arrays from ``seed``."""

    shape: Tuple[int, int, int, int]
    kernel_size: object
    stride: object
    padding: object
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: Optional[int]
    dtype: type
    seed: int

    def kwargs(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def x(self):
        return np.random.default_rng(self.seed).standard_normal(self.shape).astype(self.dtype)

    def r(self, out_shape):
        return np.random.default_rng(self.seed + 1).standard_normal(out_shape).astype(
            self.dtype)


@st.composite
def avg_cases(draw, dtypes=(np.float32, np.float64)):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    # at least the kernel minus both paddings (the smallest input torch accepts)
    hw = tuple(draw(st.integers(max(1, k - 2 * p), k - 2 * p + 7))
               for k, p in zip(kernel, padding))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + hw
    as_int = kernel[0] == kernel[1] and padding[0] == padding[1] and draw(st.booleans())
    return AvgCase(shape, kernel[0] if as_int else kernel, stride,
                   padding[0] if as_int else padding, draw(st.booleans()), draw(st.booleans()),
                   draw(st.none() | st.sampled_from([1, 2, 3, 7, -2])),
                   draw(st.sampled_from(dtypes)), draw(st.integers(0, 2**31)))


#: Hand-picked configurations: torchvision's (GoogLeNet/Inception's 3/1/1 without the
#: padding in the divisor, DenseNet's 2/2 transitions), ceil_mode windows hanging over
#: the padded input, a kernel as large as the padded image, and the override.
PICKED = [
    AvgCase((2, 3, 7, 9), 3, 1, 1, False, False, None, np.float64, 1),
    AvgCase((1, 2, 8, 8), 2, 2, 0, False, True, None, np.float64, 2),
    AvgCase((2, 2, 6, 6), 3, 2, 1, True, True, None, np.float64, 3),
    AvgCase((1, 3, 5, 5), (4, 4), (3, 3), (2, 2), True, True, None, np.float64, 4),
    AvgCase((1, 3, 5, 5), (4, 4), (3, 3), (2, 2), True, False, None, np.float64, 5),
    AvgCase((2, 1, 7, 4), (3, 2), (2, 3), (1, 0), True, True, None, np.float64, 6),
    AvgCase((1, 2, 3, 4), (5, 6), None, (2, 3), False, True, None, np.float64, 7),
    AvgCase((1, 2, 9, 9), 3, 2, 1, True, True, 5, np.float64, 8),
    AvgCase((1, 2, 9, 9), 3, 2, 1, True, False, -4, np.float32, 9),
    AvgCase((2, 4, 13, 11), (3, 5), (2, 1), (1, 2), True, False, None, np.float32, 10),
]

ADAPTIVE = [
    ((2, 3, 13, 13), (6, 6)),      # AlexNet's 13x13 → 6x6
    ((1, 2, 5, 5), (6, 6)),        # AlexNet's pooling on a smaller image: output > input
    ((2, 3, 7, 7), 1),             # ResNet's global average pool
    ((1, 2, 7, 5), (3, None)),     # None keeps the input width
    ((1, 2, 4, 9), (None, 4)),
    ((1, 1, 3, 2), (7, 11)),       # much larger than the input
    ((1, 2, 10, 7), (3, 3)),       # non-integer ratios: overlapping windows
]


@st.composite
def adaptive_cases(draw, dtypes=(np.float32, np.float64)):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)),
             draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    side = st.integers(1, 12)
    output_size = draw(side | st.tuples(side | st.none(), side | st.none()))
    return shape, output_size, draw(st.sampled_from(dtypes)), draw(st.integers(0, 2**31))


def _arrays(shape, out_shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape).astype(dtype),
            rng.standard_normal(out_shape).astype(dtype))


# --------------------------------------------------------------------------- torch

def check_avg_case_against_torch(case: AvgCase):
    x = case.x()
    y = ops.avg_pool2d(x, **case.kwargs())
    r = case.r(y.shape)
    y_ref, grad_ref = torch_value_and_grad(lambda t: F.avg_pool2d(t, **case.kwargs()), x, r)
    assert y.dtype == x.dtype
    assert_close(y, y_ref, what="avg_pool2d")
    back = ops.avg_pool2d_transpose(r, x.shape[2:], **case.kwargs())
    assert back.dtype == x.dtype
    assert_close(back, grad_ref, what="avg_pool2d_transpose vs autograd")


@needs_torch
@pytest.mark.parametrize("case", PICKED, ids=lambda c: f"{c.shape}-{c.kwargs()}")
def test_avg_pool2d_and_its_transpose_match_torch_on_picked_cases(case):
    check_avg_case_against_torch(case)


@needs_torch
@given(avg_cases())
def test_avg_pool2d_and_its_transpose_match_torch(case):
    check_avg_case_against_torch(case)


def check_adaptive_case_against_torch(shape, output_size, dtype, seed):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    y = ops.adaptive_avg_pool2d(x, output_size)
    r = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    y_ref, grad_ref = torch_value_and_grad(lambda t: F.adaptive_avg_pool2d(t, output_size),
                                           x, r)
    assert y.dtype == x.dtype
    assert_close(y, y_ref, what="adaptive_avg_pool2d")
    assert_close(ops.adaptive_avg_pool2d_transpose(r, x.shape[2:]), grad_ref,
                 what="adaptive_avg_pool2d_transpose vs autograd")
    assert_close(ops.adaptive_avg_pool2d_transpose(r, x.shape), grad_ref,
                 what="adaptive_avg_pool2d_transpose, input_size (N, C, H, W)")


@needs_torch
@pytest.mark.parametrize("shape, output_size", ADAPTIVE)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adaptive_avg_pool2d_and_its_transpose_match_torch_on_picked_cases(
        shape, output_size, dtype):
    check_adaptive_case_against_torch(shape, output_size, dtype, seed=11)


@needs_torch
@given(adaptive_cases())
def test_adaptive_avg_pool2d_and_its_transpose_match_torch(case):
    check_adaptive_case_against_torch(*case)


@needs_torch
@given(avg_cases(dtypes=(np.float64,)))
def test_the_geometry_gives_torch_output_size(case):
    """What nn layers ask the geometry for: the output size."""
    geom = geometry.avg_pool2d_geometry(case.shape, **case.kwargs())
    expected = F.avg_pool2d(torch.zeros(case.shape, dtype=torch.float64), **case.kwargs())
    assert (case.shape[:2] + geom.out_hw) == tuple(expected.shape)


# --------------------------------------------------------------------------- by hand

def test_the_divisor_rule_by_hand():
    """A row of six ones, kernel 3, stride 2, padding 1, ceil_mode: windows [-1, 2),
    [1, 4), [3, 6), [5, 8).  Every output is (ones inside the image) / divisor."""
    ones = np.ones((1, 1, 1, 6))

    def pool(**kw):
        return ops.avg_pool2d(ones, (1, 3), (1, 2), (0, 1), ceil_mode=True, **kw)[0, 0, 0]

    # count_include_pad: the padding counts (3 for the first window), the last window
    # reaches 8, beyond the padded input's end 7, so it counts 7 − 5 = 2, not 3
    np.testing.assert_array_equal(pool(), [2 / 3, 1, 1, 1 / 2])
    np.testing.assert_array_equal(pool(count_include_pad=False), [1, 1, 1, 1])
    np.testing.assert_array_equal(pool(divisor_override=4), [2 / 4, 3 / 4, 3 / 4, 1 / 4])
    # the transpose spreads r / divisor over each window's pixels inside the image
    back = ops.avg_pool2d_transpose(np.array([[[[3.0, 6.0, 9.0, 4.0]]]]), (1, 6), (1, 3),
                                    (1, 2), (0, 1), ceil_mode=True)
    # r / divisor = 3/3, 6/3, 9/3, 4/2 over pixels {0, 1}, {1, 2, 3}, {3, 4, 5}, {5}
    np.testing.assert_array_equal(back[0, 0, 0], [1, 1 + 2, 2, 2 + 3, 3, 3 + 2])


def test_adaptive_windows_by_hand():
    """Length 5 into 3: [0, 2), [1, 4), [3, 5); length 2 into 5: pixels repeat."""
    assert [tuple(w[:2]) for w in geometry.adaptive_windows(5, 3)] == [(0, 2), (1, 4), (3, 5)]
    assert [tuple(w[:2]) for w in geometry.adaptive_windows(2, 5)] == \
        [(0, 1), (0, 1), (0, 2), (1, 2), (1, 2)]
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    np.testing.assert_array_equal(ops.adaptive_avg_pool2d(x, (1, 3))[0, 0, 0],
                                  [0.5, 2.0, 3.5])
    np.testing.assert_array_equal(ops.adaptive_avg_pool2d(x, (None, 5)), x)


# --------------------------------------------------------------------------- dot tests

# The tolerance is at the inner product's rounding scale <|A| |x|, |y|> (which cannot
# cancel, unlike <A x, y>): |A| |x| is the pooling of |x|, up to the sign of a negative
# divisor_override.

@given(avg_cases())
def test_avg_pool2d_transpose_is_the_adjoint(case):
    def pool(x):
        return ops.avg_pool2d(x, **case.kwargs())

    y_shape = pool(case.x()).shape
    dottest_at_rounding_scale(
        pool, lambda r: ops.avg_pool2d_transpose(r, case.shape[2:], **case.kwargs()),
        case.shape, y_shape, case.dtype, lambda x, y: dot(np.abs(pool(np.abs(x))), np.abs(y)),
        seed=case.seed)


@given(adaptive_cases())
def test_adaptive_avg_pool2d_transpose_is_the_adjoint(case):
    shape, output_size, dtype, seed = case

    def pool(x):
        return ops.adaptive_avg_pool2d(x, output_size)

    y_shape = pool(np.zeros(shape, dtype)).shape
    dottest_at_rounding_scale(pool, lambda r: ops.adaptive_avg_pool2d_transpose(r, shape),
                              shape, y_shape, dtype, lambda x, y: dot(pool(np.abs(x)), np.abs(y)),
                              seed=seed)


def test_the_dot_test_would_notice_a_wrong_transpose():
    """Not vacuous: the transpose without its divisor fails."""
    case = PICKED[2]
    y_shape = ops.avg_pool2d(case.x(), **case.kwargs()).shape
    wrong = dict(case.kwargs(), divisor_override=1)
    with pytest.raises(DotTestError):
        dottest(lambda x: ops.avg_pool2d(x, **case.kwargs()),
                        lambda r: ops.avg_pool2d_transpose(r, case.shape[2:], **wrong),
                        case.shape, y_shape)


# --------------------------------------------------------------------------- matrices

def check_matrix(a, x, y, back, r):
    """A x = the forward op and Aᵀ r = its transpose, image by image."""
    assert a.format == "csr" and a.shape == (y[0].size, x[0].size)
    for n in range(x.shape[0]):
        assert_close(a @ x[n].ravel(), y[n].ravel(), rtol=1e-13, what="A x")
        assert_close(a.T @ r[n].ravel(), back[n].ravel(), rtol=1e-13, what="Aᵀ r")


@given(avg_cases(dtypes=(np.float64,)))
def test_avg_pool2d_matrix_is_the_operator(case):
    x = case.x()
    y = ops.avg_pool2d(x, **case.kwargs())
    r = case.r(y.shape)
    a = matrices.avg_pool2d_matrix(case.shape[1:], **case.kwargs())
    check_matrix(a, x, y, ops.avg_pool2d_transpose(r, x.shape[2:], **case.kwargs()), r)


@given(adaptive_cases(dtypes=(np.float64,)))
def test_adaptive_avg_pool2d_matrix_is_the_operator(case):
    shape, output_size, dtype, seed = case
    x = np.random.default_rng(seed).standard_normal(shape)
    y = ops.adaptive_avg_pool2d(x, output_size)
    r = np.random.default_rng(seed + 1).standard_normal(y.shape)
    a = matrices.adaptive_avg_pool2d_matrix(shape[1:], output_size)
    check_matrix(a, x, y, ops.adaptive_avg_pool2d_transpose(r, shape[2:]), r)


def test_the_matrices_rows_sum_to_one_without_padding_or_override():
    """A mean: every row of A sums to 1 when the divisor counts exactly the window."""
    a = matrices.adaptive_avg_pool2d_matrix((2, 7, 5), (3, 8))
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-15)
    a = matrices.avg_pool2d_matrix((2, 7, 5), 3, 2, 1, ceil_mode=True,
                                   count_include_pad=False)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-15)
    assert a.indices.dtype == np.int32
    assert matrices.avg_pool2d_matrix((1, 4, 4), 2, dtype=np.float32).dtype == np.float32


# --------------------------------------------------------------------------- backends

@given(avg_cases())
def test_avg_pool2d_reference_backend_matches_the_cpu_backend(case):
    x = case.x()
    y = ops.avg_pool2d(x, **case.kwargs())
    r = case.r(y.shape)
    reference = on_reference_backend(ops.avg_pool2d, x, **case.kwargs())
    assert reference.dtype == y.dtype and reference.flags.c_contiguous
    assert_close(reference, y, what="reference avg_pool2d")
    assert_close(on_reference_backend(ops.avg_pool2d_transpose, r, x.shape[2:],
                                      **case.kwargs()),
                 ops.avg_pool2d_transpose(r, x.shape[2:], **case.kwargs()),
                 what="reference avg_pool2d_transpose")


@given(adaptive_cases())
def test_adaptive_avg_pool2d_reference_backend_matches_the_cpu_backend(case):
    shape, output_size, dtype, seed = case
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    y = ops.adaptive_avg_pool2d(x, output_size)
    r = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    assert_close(on_reference_backend(ops.adaptive_avg_pool2d, x, output_size), y,
                 what="reference adaptive_avg_pool2d")
    assert_close(on_reference_backend(ops.adaptive_avg_pool2d_transpose, r, shape),
                 ops.adaptive_avg_pool2d_transpose(r, shape),
                 what="reference adaptive_avg_pool2d_transpose")


def test_non_contiguous_input_gives_the_contiguous_result():
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8))
    view = np.asfortranarray(x)[:, ::-1, :, ::2]
    np.testing.assert_array_equal(ops.avg_pool2d(view, 3, 2, 1, True),
                                  ops.avg_pool2d(np.ascontiguousarray(view), 3, 2, 1, True))
    np.testing.assert_array_equal(ops.adaptive_avg_pool2d(view, 3),
                                  ops.adaptive_avg_pool2d(np.ascontiguousarray(view), 3))


@pytest.mark.gpu
def test_cupy_arrays_give_the_cpu_results():
    cupy = cupy_or_skip()
    for case in PICKED:
        x = case.x()
        y = ops.avg_pool2d(cupy.asarray(x), **case.kwargs())
        assert isinstance(y, cupy.ndarray)
        assert_close(cupy.asnumpy(y), ops.avg_pool2d(x, **case.kwargs()))
        r = case.r(y.shape)
        assert_close(cupy.asnumpy(ops.avg_pool2d_transpose(cupy.asarray(r), x.shape[2:],
                                                           **case.kwargs())),
                     ops.avg_pool2d_transpose(r, x.shape[2:], **case.kwargs()))
    for shape, output_size in ADAPTIVE:
        x = np.random.default_rng(0).standard_normal(shape)
        assert_close(cupy.asnumpy(ops.adaptive_avg_pool2d(cupy.asarray(x), output_size)),
                     ops.adaptive_avg_pool2d(x, output_size))


# --------------------------------------------------------------------------- NUMBA_DISABLE_JIT

def run_average_ops():
    """Every picked case through all four ops; run jitted here and as plain Python in a
    child process (``test_the_loops_run_as_plain_python``)."""
    out = {}
    for k, case in enumerate(PICKED):
        x = case.x()
        y = ops.avg_pool2d(x, **case.kwargs())
        out[f"avg{k}"] = y
        out[f"avg_t{k}"] = ops.avg_pool2d_transpose(case.r(y.shape), x.shape[2:],
                                                    **case.kwargs())
    for k, (shape, output_size) in enumerate(ADAPTIVE):
        for dtype in (np.float64, np.float32):
            x = np.random.default_rng(k).standard_normal(shape).astype(dtype)
            y = ops.adaptive_avg_pool2d(x, output_size)
            out[f"adaptive{k}_{dtype.__name__}"] = y
            out[f"adaptive_t{k}_{dtype.__name__}"] = ops.adaptive_avg_pool2d_transpose(
                np.random.default_rng(k + 1).standard_normal(y.shape).astype(dtype), shape)
    return out


CHILD = textwrap.dedent(r"""
    import sys
    import numpy as np
    import numba
    assert numba.config.DISABLE_JIT, "NUMBA_DISABLE_JIT was not honoured"
    from numba.core.dispatcher import Dispatcher
    from minideconv.backends import average_loops
    from test_ops_average_pool import run_average_ops

    out = run_average_ops()
    jitted = [name for name, obj in vars(average_loops).items() if isinstance(obj, Dispatcher)]
    assert not jitted, f"still numba dispatchers: {jitted}"
    np.savez(sys.argv[1], **out)
""")


def test_the_loops_run_as_plain_python(tmp_path):
    proc = run_without_jit(CHILD, str(tmp_path / "out.npz"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    plain = dict(np.load(tmp_path / "out.npz"))
    jitted = run_average_ops()
    assert set(plain) == set(jitted)
    for name, expected in jitted.items():
        assert plain[name].dtype == expected.dtype, name
        assert_close(plain[name], expected, what=name)


def test_the_child_would_notice_a_jitted_loop():
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        pytest.skip("this process itself runs with NUMBA_DISABLE_JIT")
    from numba.core.dispatcher import Dispatcher
    from minideconv.backends import average_loops
    assert isinstance(average_loops.avg_pool_planes, Dispatcher)
    assert isinstance(average_loops.avg_pool_transpose_planes, Dispatcher)


# --------------------------------------------------------------------------- errors

X = np.random.default_rng(5).standard_normal((2, 3, 8, 9))
R = np.ones((2, 3, 4, 4))   # avg_pool2d(X, 2)'s shape


ERRORS = [
    # ---- the arrays
    ("x 3-D", lambda: ops.avg_pool2d(X[0], 2), ValueError, "x must be 4-D"),
    ("x list", lambda: ops.avg_pool2d(X.tolist(), 2), TypeError, "x must be a numpy"),
    ("x int", lambda: ops.avg_pool2d(X.astype(np.int64), 2), TypeError, "x must have dtype"),
    ("x float16", lambda: ops.avg_pool2d(X.astype(np.float16), 2), TypeError,
     "x must have dtype"),
    ("x W = 0", lambda: ops.avg_pool2d(X[..., :0], 1), ValueError, "x must have non-empty"),
    ("adaptive x complex", lambda: ops.adaptive_avg_pool2d(X.astype(complex), 2), TypeError,
     "x must have dtype"),
    ("adaptive x 5-D", lambda: ops.adaptive_avg_pool2d(X[None], 2), ValueError,
     "x must be 4-D"),
    ("r 3-D", lambda: ops.avg_pool2d_transpose(R[0], (8, 9), 2), ValueError, "r must be 4-D"),
    ("r int", lambda: ops.avg_pool2d_transpose(R.astype(int), (8, 9), 2), TypeError,
     "r must have dtype"),
    ("adaptive r list", lambda: ops.adaptive_avg_pool2d_transpose(R.tolist(), (8, 9)),
     TypeError, "r must be a numpy"),
    # ---- kernel, stride, padding, switches
    ("kernel_size 0", lambda: ops.avg_pool2d(X, 0), ValueError, "kernel_size must be >= 1"),
    ("kernel_size float", lambda: ops.avg_pool2d(X, 2.0), TypeError, "kernel_size must be"),
    ("kernel_size triple", lambda: ops.avg_pool2d(X, (2, 2, 2)), TypeError, "kernel_size"),
    ("stride 0", lambda: ops.avg_pool2d(X, 2, 0), ValueError, "stride must be >= 1"),
    ("stride string", lambda: ops.avg_pool2d(X, 2, "1"), TypeError, "stride"),
    ("padding negative", lambda: ops.avg_pool2d(X, 2, padding=-1), ValueError,
     "padding must be >= 0"),
    ("padding more than half the kernel", lambda: ops.avg_pool2d(X, (4, 3), padding=(2, 2)),
     ValueError, "padding must be at most half the kernel size"),
    ("padding 'same'", lambda: ops.avg_pool2d(X, 3, padding="same"), TypeError, "padding"),
    ("kernel larger than the padded input", lambda: ops.avg_pool2d(X, (11, 2), padding=(1, 0)),
     ValueError, r"kernel_size \(11, 2\) is larger than the padded input"),
    ("ceil_mode 1", lambda: ops.avg_pool2d(X, 2, ceil_mode=1), TypeError,
     "ceil_mode must be a bool"),
    ("count_include_pad None", lambda: ops.avg_pool2d(X, 2, count_include_pad=None),
     TypeError, "count_include_pad must be a bool"),
    ("divisor_override 0", lambda: ops.avg_pool2d(X, 2, divisor_override=0), ValueError,
     "divisor_override must not be zero"),
    ("divisor_override float", lambda: ops.avg_pool2d(X, 2, divisor_override=2.0), TypeError,
     "divisor_override must be None or an int"),
    ("divisor_override bool", lambda: ops.avg_pool2d(X, 2, divisor_override=True), TypeError,
     "divisor_override"),
    # ---- adaptive output_size
    ("output_size 0", lambda: ops.adaptive_avg_pool2d(X, 0), ValueError,
     "output_size must be >= 1"),
    ("output_size (3, 0)", lambda: ops.adaptive_avg_pool2d(X, (3, 0)), ValueError,
     "output_size must be >= 1"),
    ("output_size None", lambda: ops.adaptive_avg_pool2d(X, None), TypeError, "output_size"),
    ("output_size triple", lambda: ops.adaptive_avg_pool2d(X, (2, 2, 2)), TypeError,
     "output_size"),
    ("output_size float", lambda: ops.adaptive_avg_pool2d(X, (2.0, 2)), TypeError,
     "output_size"),
    # ---- the transposes' input_size
    ("input_size that pools to another size", lambda: ops.avg_pool2d_transpose(R, (8, 11), 2),
     ValueError,
     r"input_size \(8, 11\) pools to \(4, 5\), but r has the spatial size \(4, 4\)"),
    ("input_size with another (N, C)",
     lambda: ops.avg_pool2d_transpose(R, (2, 5, 8, 9), 2), ValueError, "r's \\(N, C\\)"),
    ("input_size of length 3", lambda: ops.avg_pool2d_transpose(R, (3, 8, 9), 2), TypeError,
     "input_size must be"),
    ("input_size zero", lambda: ops.avg_pool2d_transpose(R, (0, 9), 2), ValueError,
     "input_size must be positive"),
    ("input_size floats", lambda: ops.adaptive_avg_pool2d_transpose(R, (8.0, 9.0)), TypeError,
     "input_size"),
    ("transpose with a bad kernel", lambda: ops.avg_pool2d_transpose(R, (8, 9), 0), ValueError,
     "kernel_size"),
    ("transpose with divisor_override 0",
     lambda: ops.avg_pool2d_transpose(R, (8, 9), 2, divisor_override=0), ValueError,
     "divisor_override"),
    # ---- the matrices
    ("matrix input_shape 4-D", lambda: matrices.avg_pool2d_matrix((1, 3, 8, 9), 2), TypeError,
     "input_shape must be"),
    ("matrix padding more than half the kernel",
     lambda: matrices.avg_pool2d_matrix((3, 8, 9), 2, padding=2), ValueError,
     "padding must be at most half"),
    ("adaptive matrix output_size 0",
     lambda: matrices.adaptive_avg_pool2d_matrix((3, 8, 9), (0, 2)), ValueError,
     "output_size must be >= 1"),
]


@pytest.mark.parametrize("call, error, message", [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_bad_arguments_are_rejected_before_any_kernel_runs(monkeypatch, call, error, message):
    from minideconv import backends
    called = []
    for backend in (backends.load_cpu_backend(), backends.load_reference_backend()):
        for kernel in ("avg_pool2d", "avg_pool2d_transpose"):
            monkeypatch.setattr(backend, kernel, lambda *a: called.append(a))
    with pytest.raises(error, match=message):
        call()
    assert not called


@needs_torch
@pytest.mark.parametrize("kwargs", [dict(kernel_size=(4, 3), padding=(2, 2)),
                                    dict(kernel_size=(11, 2), padding=(1, 0)),
                                    dict(kernel_size=2, divisor_override=0)])
def test_torch_rejects_what_avg_pool2d_rejects(kwargs):
    """The rules are torch's own: torch refuses these too."""
    with pytest.raises((RuntimeError, ValueError)):
        F.avg_pool2d(T(X), **kwargs)
    with pytest.raises(ValueError):
        ops.avg_pool2d(X, **kwargs)
