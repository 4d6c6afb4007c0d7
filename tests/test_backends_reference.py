"""The reference backend's whole-array code, run with xp = numpy, against the CPU backend.

``minideconv.ops.CPU_BACKEND = "reference"`` sends NumPy arrays through
``backends/reference.py`` — the code a GPU runs, minus CuPy itself — so that its logic is
checked on every machine.  The Numba kernels are in turn checked against PyTorch, finite
differences and the sparse matrices elsewhere.  Tests that need a real GPU carry the
``gpu`` marker and are skipped, with the reason, where CuPy or a GPU is absent.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minideconv as md

from support.gpu import cupy_or_skip, on_reference_backend


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    mode = draw(st.sampled_from(["zeros", "circular"]))
    same = sh == sw == 1 and draw(st.booleans())  # "same" pads unevenly for even kernels
    wrap = mode == "circular"  # circular padding may not exceed the image (PyTorch's rule)
    if same:  # the larger of the two "same" pads, and they always fit the kernel
        ph, pw = dh * (kh - 1) - dh * (kh - 1) // 2, dw * (kw - 1) - dw * (kw - 1) // 2
    h = draw(st.integers(max(1, wrap * ph, dh * (kh - 1) + 1 - (2 - same) * ph), 9))
    w = draw(st.integers(max(1, wrap * pw, dw * (kw - 1) + 1 - (2 - same) * pw), 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((draw(st.integers(1, 2)), c_in, h, w))
    weight = rng.standard_normal((c_out, c_in // groups, kh, kw))
    kwargs = dict(stride=(sh, sw), padding="same" if same else (ph, pw), dilation=(dh, dw),
                  groups=groups, padding_mode=mode)
    return x, weight, kwargs, rng


@given(conv_cases())
def test_convolutions_match_the_cpu_backend(case):
    x, weight, kwargs, rng = case
    y = md.conv2d(x, weight, **kwargs)
    np.testing.assert_allclose(on_reference_backend(md.conv2d, x, weight, **kwargs), y,
                               rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    back = md.conv_transpose2d(g, weight, output_size=x.shape[2:], **kwargs)
    np.testing.assert_allclose(
        on_reference_backend(md.conv_transpose2d, g, weight, output_size=x.shape[2:],
                             **kwargs),
        back, rtol=1e-12, atol=1e-12)
    dw = md.conv2d_weight_grad(x, g, weight.shape, **kwargs)
    np.testing.assert_allclose(
        on_reference_backend(md.conv2d_weight_grad, x, g, weight.shape, **kwargs), dw,
        rtol=1e-12, atol=1e-12)


@given(kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       ceil_mode=st.booleans(), seed=st.integers(0, 2**32 - 1),
       with_nan=st.booleans())
def test_pooling_matches_the_cpu_backend(kernel, stride, dilation, ceil_mode, seed,
                               with_nan):
    rng = np.random.default_rng(seed)
    padding = (rng.integers(0, kernel[0] // 2 + 1), rng.integers(0, kernel[1] // 2 + 1))
    size = [d * (k - 1) + 1 + rng.integers(0, 6) for k, d in zip(kernel, dilation)]
    # small integers make ties common: the tie rule must agree too
    x = rng.integers(0, 3, (2, 2, *size)).astype(np.float32)
    if with_nan:
        x.flat[rng.integers(0, x.size, 3)] = np.nan
    args = dict(kernel_size=kernel, stride=stride, padding=tuple(map(int, padding)),
                dilation=dilation, ceil_mode=ceil_mode)
    try:
        y, s = md.max_pool2d(x, **args)
    except ValueError:  # a window entirely in padding: rejected by both backends alike
        with pytest.raises(ValueError):
            on_reference_backend(md.max_pool2d, x, **args)
        return
    y2, s2 = on_reference_backend(md.max_pool2d, x, **args)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(s2, s)
    g = rng.standard_normal(y.shape).astype(np.float32)
    unpool = dict(kernel_size=kernel, stride=stride, padding=args["padding"],
                  output_size=x.shape[2:], dilation=dilation)
    np.testing.assert_allclose(on_reference_backend(md.max_unpool2d, g, s, **unpool),
                               md.max_unpool2d(g, s, **unpool), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rule", md.rules.NAMES)
def test_relu_rules_match_the_cpu_backend(rule):
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 3, 5, 5))
    x[0, 0, 0, :2] = [np.nan, 0.0]
    g[0, 0, 1, :2] = [np.nan, 0.0]
    np.testing.assert_array_equal(on_reference_backend(md.relu, x), md.relu(x))
    np.testing.assert_array_equal(on_reference_backend(md.relu_backward, g, x, rule),
                                  md.relu_backward(g, x, rule))
    slopes = np.array([0.1, -0.3, 0.2])          # with NaN and ties, as the ReLU's
    np.testing.assert_array_equal(on_reference_backend(md.rectifier, x, slopes, 0.5),
                                  md.rectifier(x, slopes, 0.5))
    np.testing.assert_array_equal(
        on_reference_backend(md.rectifier_backward, g, x, rule, slopes, 0.5),
        md.rectifier_backward(g, x, rule, slopes, 0.5))


def test_mixed_numpy_and_cupy_is_a_type_error():
    class FakeCupyArray(np.ndarray):
        """Looks like a cupy array to the dispatcher (module name), holds numpy data."""
    FakeCupyArray.__module__ = "cupy._core.core"
    x = np.zeros((1, 1, 4, 4))
    w = np.zeros((1, 1, 2, 2)).view(FakeCupyArray)
    with pytest.raises(TypeError, match="weight"):
        md.conv2d(x, w)


# ------------------------------------------------------------------ real GPU (skipped here)

@pytest.mark.gpu
@given(conv_cases())
def test_cupy_arrays_give_the_cpu_results(case):
    cupy = cupy_or_skip()
    x, weight, kwargs, rng = case
    y = md.conv2d(cupy.asarray(x), cupy.asarray(weight), **kwargs)
    assert isinstance(y, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(y), md.conv2d(x, weight, **kwargs),
                               rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)
    back = md.conv_transpose2d(cupy.asarray(g), cupy.asarray(weight),
                               output_size=x.shape[2:], **kwargs)
    np.testing.assert_allclose(
        cupy.asnumpy(back), md.conv_transpose2d(g, weight, output_size=x.shape[2:], **kwargs),
        rtol=1e-10, atol=1e-10)
    pooled, s = md.max_pool2d(cupy.asarray(x), 2, 1)
    ref, ref_s = md.max_pool2d(x, 2, 1)
    np.testing.assert_array_equal(cupy.asnumpy(s), ref_s)
    np.testing.assert_allclose(
        cupy.asnumpy(md.max_unpool2d(pooled, s, 2, 1, output_size=x.shape[2:])),
        md.max_unpool2d(ref, ref_s, 2, 1, output_size=x.shape[2:]))
