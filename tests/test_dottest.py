"""minideconv.dottest: it passes for true adjoint pairs, fails for wrong ones, and checks
its arguments.

A dot test that cannot fail checks nothing, so every wrong adjoint below is a mistake a
hand-written transpose really makes: a kernel that is flipped (or not flipped) once too
often, an unpooling that assigns where overlapping windows must add (PyTorch's
``max_unpool2d``), a matrix used where its transpose belongs.
"""

from __future__ import annotations

import numpy as np
import pytest

import minideconv as md
from minideconv.dottest import DotTest

RNG_SEED = 20140  # the tests' own arrays (dottest draws x and y from its ``seed``)


def random_weight(shape, dtype=np.float64, seed=RNG_SEED):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def conv_pair(weight, x_shape, **kwargs):
    """conv2d and its adjoint conv_transpose2d (same arguments, output_size = x's size),
    and the output shape."""
    y_shape = md.conv2d(np.zeros(x_shape, weight.dtype), weight, **kwargs).shape

    def forward(x):
        return md.conv2d(x, weight, **kwargs)

    def adjoint(y):
        return md.conv_transpose2d(y, weight, output_size=x_shape[-2:], **kwargs)

    return forward, adjoint, y_shape


# =========================================================================== true adjoints

CONV_SETTINGS = [
    dict(),                                                  # valid, stride 1
    dict(padding=1),
    dict(padding=(2, 0), stride=2),
    dict(padding="same"),                                    # odd kernel: symmetric pads
    dict(padding="valid", stride=(2, 3), dilation=(1, 2)),
    dict(padding=(1, 2), padding_mode="circular"),
    dict(padding="same", padding_mode="circular"),
    dict(padding=1, stride=2, dilation=2, groups=2),
]


@pytest.mark.parametrize("kwargs", CONV_SETTINGS, ids=repr)
def test_conv2d_and_conv_transpose2d_pass(kwargs):
    weight = random_weight((4, 2 // kwargs.get("groups", 1), 3, 3))
    forward, adjoint, y_shape = conv_pair(weight, (2, 2, 11, 10), **kwargs)
    result = md.dottest(forward, adjoint, (2, 2, 11, 10), y_shape)
    assert isinstance(result, DotTest)
    assert result.relative_error <= 1e-10
    assert result.forward_side == pytest.approx(result.adjoint_side, rel=1e-10)
    assert abs(result.forward_side) > 0                      # not a vacuous 0 = 0


@pytest.mark.parametrize("kernel", [(2, 4), (4, 3)])
def test_same_padding_with_even_kernels_passes(kernel):
    """An even kernel with "same" pads one more pixel at the bottom/right than at the
    top/left; the transposed convolution must undo exactly that asymmetry."""
    weight = random_weight((3, 2) + kernel)
    for mode in ("zeros", "circular"):
        forward, adjoint, y_shape = conv_pair(weight, (1, 2, 7, 9), padding="same",
                                              padding_mode=mode)
        assert y_shape == (1, 3, 7, 9)
        md.dottest(forward, adjoint, (1, 2, 7, 9), y_shape)


def test_float32_uses_its_own_default_tolerance():
    weight = random_weight((3, 2, 3, 3), np.float32)
    forward, adjoint, y_shape = conv_pair(weight, (2, 2, 8, 8), padding=1)
    result = md.dottest(forward, adjoint, (2, 2, 8, 8), y_shape, dtype=np.float32)
    assert 0 < result.relative_error <= 1e-4       # float32 rounding, within the default
    with pytest.raises(md.DotTestError):           # and far above float64's default
        md.dottest(forward, adjoint, (2, 2, 8, 8), y_shape, dtype=np.float32, rtol=1e-10)


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (8, 2)])
def test_dense_matrix_and_its_transpose_pass(shape):
    a = random_weight(shape)
    result = md.dottest(lambda x: a @ x, lambda y: a.T @ y, shape[1], shape[0])
    assert result.relative_error <= 1e-13


def test_true_unpooling_passes_with_overlapping_windows():
    forward, _, adjoint, x_shape, y_shape = pool_pair()
    md.dottest(forward, adjoint, x_shape, y_shape)


def test_same_seed_same_draws_and_a_zero_map_passes():
    a = random_weight((4, 6))
    first = md.dottest(lambda x: a @ x, lambda y: a.T @ y, 6, 4, seed=3)
    assert md.dottest(lambda x: a @ x, lambda y: a.T @ y, (6,), [4], seed=3) == first
    assert md.dottest(lambda x: a @ x, lambda y: a.T @ y, 6, 4, seed=4) != first
    zero = md.dottest(lambda x: np.zeros(4), lambda y: np.zeros(6), 6, 4)
    assert zero.forward_side == zero.adjoint_side == zero.relative_error == 0


# =========================================================================== wrong adjoints

@pytest.mark.parametrize("kwargs", CONV_SETTINGS[:3] + CONV_SETTINGS[5:6], ids=repr)
def test_flipped_kernel_fails(kwargs):
    """conv_transpose2d already correlates with the flipped kernel; flipping it once more
    (the classic mix-up of convolution and cross-correlation) is not the adjoint."""
    weight = random_weight((4, 2, 3, 3))
    forward, _, y_shape = conv_pair(weight, (2, 2, 11, 10), **kwargs)
    flipped = np.ascontiguousarray(weight[..., ::-1, ::-1])

    def flipped_adjoint(y):
        return md.conv_transpose2d(y, flipped, output_size=(11, 10), **kwargs)

    with pytest.raises(md.DotTestError, match="dot test failed"):
        md.dottest(forward, flipped_adjoint, (2, 2, 11, 10), y_shape)
    result = md.dottest(forward, flipped_adjoint, (2, 2, 11, 10), y_shape,
                        raise_error=False)
    assert result.relative_error > 1e-3


def pool_pair():
    """Max-pooling 3x3 with stride 1 (overlapping windows) with its switches s fixed:
    the selection P(s), the assigning unpool, the true (adding) one, and the shapes."""
    x = random_weight((2, 3, 9, 9))
    y, switches = md.max_pool2d(x, 3, stride=1)
    n, c = switches.shape[:2]
    flat = switches.reshape(n, c, -1)
    # the test means something only if some input is the maximum of several windows
    assert any(np.unique(flat[i, j]).size < flat.shape[2]
               for i in range(n) for j in range(c))

    def select(v):                                 # P(s) v
        return np.take_along_axis(v.reshape(n, c, -1), flat, axis=2).reshape(y.shape)

    def assigning_unpool(g):                       # out[s] = g: the last window wins
        out = np.zeros((n, c, 81))
        for i in range(n):
            for j in range(c):
                out[i, j, flat[i, j]] = g[i, j].ravel()
        return out.reshape(x.shape)

    def adding_unpool(g):
        return md.max_unpool2d(g, switches, 3, 1, output_size=(9, 9))

    return select, assigning_unpool, adding_unpool, x.shape, y.shape


def test_assigning_unpool_fails_with_overlapping_windows():
    forward, assigning_unpool, _, x_shape, y_shape = pool_pair()
    with pytest.raises(md.DotTestError):
        md.dottest(forward, assigning_unpool, x_shape, y_shape)


@pytest.mark.parametrize("wrong", ["itself", "scaled", "inverse"])
def test_a_matrix_that_is_not_the_transpose_fails(wrong):
    a = random_weight((6, 6))
    b = {"itself": a, "scaled": 1.001 * a.T, "inverse": np.linalg.inv(a)}[wrong]
    with pytest.raises(md.DotTestError):
        md.dottest(lambda x: a @ x, lambda y: b @ y, 6, 6)


def test_dot_test_error_is_an_assertion_error_and_rtol_is_the_threshold():
    assert issubclass(md.DotTestError, AssertionError)
    a = random_weight((5, 4))
    nearly = (1 + 1e-7) * a.T
    with pytest.raises(AssertionError):
        md.dottest(lambda x: a @ x, lambda y: nearly @ y, 4, 5)
    result = md.dottest(lambda x: a @ x, lambda y: nearly @ y, 4, 5, rtol=1e-6)
    assert result.relative_error == pytest.approx(1e-7, rel=1e-3)


# =========================================================================== argument errors

def test_wrong_output_shapes_are_value_errors():
    a = random_weight((5, 4))
    with pytest.raises(ValueError, match="forward"):
        md.dottest(lambda x: (a @ x)[:-1], lambda y: a.T @ y, 4, 5)
    with pytest.raises(ValueError, match="adjoint"):
        md.dottest(lambda x: a @ x, lambda y: np.append(a.T @ y, 0.0), 4, 5)
    with pytest.raises(ValueError, match="y_shape"):       # shapes given the wrong way round
        md.dottest(lambda x: a @ x, lambda y: a.T @ y, 4, (5, 1))


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.complex128, bool, "int32"])
def test_dtypes_other_than_float32_and_float64_are_type_errors(dtype):
    a = random_weight((3, 3))
    with pytest.raises(TypeError, match="dtype"):
        md.dottest(lambda x: a @ x, lambda y: a.T @ y, 3, 3, dtype=dtype)


@pytest.mark.parametrize("shape", [(2.5,), "3", (3, -1), None, (True,)])
def test_shapes_must_be_tuples_of_non_negative_ints(shape):
    with pytest.raises(TypeError, match="x_shape"):
        md.dottest(lambda x: x, lambda y: y, shape, 3)
