"""Explicit matrices: W, Wᵀ, P(s) and D against the operators, and what they show.

The operators (``minideconv.conv2d`` etc.) and the matrix builders are independent
implementations (im2col + BLAS loops against CSR assembled from per-axis incidences), so
every "matrix @ vector == operator" check can fail.  PyTorch's autograd is a third
opinion on the transposes where it is installed.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, strategies as st

import minideconv as md
from minideconv import matrices as mx

from support.strategies import (DTYPES, ConvCase, assert_close, conv_cases,
                                elementwise_arrays, pool_cases)

SMALL = dict(max_size=10, max_channels=4)


def matrix_kwargs(case: ConvCase) -> dict:
    return dict(stride=case.stride_arg, padding=case.padding_arg,
                dilation=case.dilation_arg, groups=case.groups,
                padding_mode=case.padding_mode)


def input_shape(case: ConvCase):
    return (case.c_in,) + tuple(case.hw)


def canonical_csr(a):
    a = sp.csr_array(a)
    a.sum_duplicates()
    a.sort_indices()
    return a


# =========================================================================== W and Wᵀ

@given(conv_cases(**SMALL))
def test_conv2d_matrix_times_x_is_conv2d(case):
    x, w, _, _ = case.arrays()
    W = mx.conv2d_matrix(w, input_shape(case), **matrix_kwargs(case))
    y = md.conv2d(x, w, **case.kwargs())
    assert isinstance(W, sp.csr_array)
    assert W.shape == (y[0].size, x[0].size)
    assert W.dtype == w.dtype
    assert W.indices.dtype == np.int32 and W.indptr.dtype == np.int32
    assert W.has_sorted_indices
    assert W.has_canonical_format          # no duplicate columns in a row
    for n in range(case.n):
        assert_close(W @ x[n].ravel(), y[n].ravel(), dtype=case.dtype, what=f"image {n}")


@given(conv_cases(**SMALL))
def test_transpose_builder_is_exactly_W_transposed(case):
    """Same sparsity pattern, same values — not approximately."""
    _, w, _, _ = case.arrays()
    W = mx.conv2d_matrix(w, input_shape(case), **matrix_kwargs(case))
    Wt = mx.conv_transpose2d_matrix(w, input_shape(case), **matrix_kwargs(case))
    reference = canonical_csr(W.T)
    assert Wt.shape == W.shape[::-1]
    assert Wt.dtype == w.dtype
    assert Wt.has_sorted_indices and Wt.has_canonical_format
    assert (Wt != reference).nnz == 0
    np.testing.assert_array_equal(Wt.indptr, reference.indptr)
    np.testing.assert_array_equal(Wt.indices, reference.indices)
    np.testing.assert_array_equal(Wt.data, reference.data)


@given(conv_cases(string_padding=False, **SMALL))
def test_transpose_matrix_times_y_is_conv_transpose2d(case):
    x, w, _, g = case.arrays()
    Wt = mx.conv_transpose2d_matrix(w, input_shape(case), **matrix_kwargs(case))
    kwargs = dict(stride=case.stride_arg, padding=case.padding_arg,
                  dilation=case.dilation_arg, groups=case.groups,
                  padding_mode=case.padding_mode, output_size=tuple(case.hw))
    back = md.conv_transpose2d(g, w, **kwargs)
    for n in range(case.n):
        assert_close(Wt @ g[n].ravel(), back[n].ravel(), dtype=case.dtype,
                     what=f"image {n}")


@given(conv_cases(**SMALL))
def test_dot_product_through_the_matrices(case):
    """<W x, y> = <x, Wᵀ y> (``minideconv.dottest``, in float64) with W and Wᵀ from their
    own builders."""
    _, w, _, _ = case.arrays()
    W = mx.conv2d_matrix(w, input_shape(case), **matrix_kwargs(case)).astype(np.float64)
    Wt = mx.conv_transpose2d_matrix(w, input_shape(case),
                                    **matrix_kwargs(case)).astype(np.float64)
    md.dottest(lambda x: W @ x, lambda y: Wt @ y, W.shape[1], W.shape[0], rtol=1e-12,
               seed=case.seed)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@given(conv_cases(**SMALL))
def test_transpose_matrix_is_the_autograd_input_gradient(case):
    """Wᵀ g = ∂<conv2d(x), g>/∂x from PyTorch's autograd — "same" (asymmetric) and
    circular padding included, which conv_transpose2d cannot express directly."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, _, g = case.arrays()
    tx = torch.from_numpy(x[:1].copy()).requires_grad_(True)
    tw = torch.from_numpy(w.copy())
    padding = case.padding_arg
    if isinstance(padding, list):
        padding = tuple(padding)
    if case.padding_mode == "circular":
        (top, bottom), (left, right) = case.pads
        out = F.conv2d(F.pad(tx, (left, right, top, bottom), mode="circular"), tw, None,
                       case.stride_arg, 0, case.dilation_arg, case.groups)
    else:
        out = F.conv2d(tx, tw, None, case.stride_arg, padding, case.dilation_arg,
                       case.groups)
    (grad,) = torch.autograd.grad(out, tx, torch.from_numpy(g[:1].copy()))
    Wt = mx.conv_transpose2d_matrix(w, input_shape(case), **matrix_kwargs(case))
    assert_close(Wt @ g[0].ravel(), grad.numpy()[0].ravel(), dtype=case.dtype)


def test_circular_kernel_wider_than_image_sums_wrapped_taps():
    """2 pixels, 5 taps, circular padding 2: taps 0, 2, 4 land on one pixel, 1, 3 on the
    other, so every row has 2 entries holding sums of weights."""
    w = np.arange(1.0, 6.0).reshape(1, 1, 1, 5)
    W = mx.conv2d_matrix(w, (1, 1, 2), padding=(0, 2), padding_mode="circular")
    # output o sees input (o - 2 + i) mod 2: for o = 0 taps 0,2,4 -> pixel 0, taps 1,3 -> 1
    # and for o = 1 the other way round; 2 + 2·2 − 4 = 2 outputs
    np.testing.assert_array_equal(W.toarray(), [[1 + 3 + 5, 2 + 4],
                                                [2 + 4, 1 + 3 + 5]])
    assert W.nnz == 4 and W.has_canonical_format
    Wt = mx.conv_transpose2d_matrix(w, (1, 1, 2), padding=(0, 2), padding_mode="circular")
    np.testing.assert_array_equal(Wt.toarray(), W.toarray().T)


def test_zfnet_layer1_geometry_on_a_small_image():
    """ZFNet's first layer (7x7/2, padding 1) on a 3x23x23 image: sizes and row counts."""
    w = np.random.default_rng(0).standard_normal((4, 3, 7, 7)).astype(np.float32)
    W = mx.conv2d_matrix(w, (3, 23, 23), stride=2, padding=1)
    h_out = md.shapes.conv_output_length(23, 7, 2, 1)
    assert W.shape == (4 * h_out * h_out, 3 * 23 * 23)
    per_row = np.diff(W.indptr).reshape(4, h_out, h_out)
    assert per_row[0, 0, 0] == 3 * 6 * 6       # the corner window loses one row/column
    assert per_row[0, 1, 1] == 3 * 7 * 7       # an interior window sees all 147 taps
    assert np.all(per_row == per_row[:1])      # every output channel has the same pattern


# =========================================================================== P(s) and D

@given(pool_cases(), st.sampled_from(["normal", "ties", "nan"]))
def test_pool_matrix_selects_the_maxima_and_its_transpose_unpools(case, values):
    if case.has_empty_window:
        return                                  # minideconv refuses such pools
    x = case.x(values)
    y, switches = md.max_pool2d(x, **case.kwargs())
    g = case.cotangent()
    unpooled = md.max_unpool2d(g, switches, case.kernel_arg, case.stride_arg, case.padding_arg,
                               output_size=tuple(case.hw), dilation=case.dilation_arg)
    for n in range(case.n):
        P = mx.max_pool2d_matrix(switches[n], (case.c,) + tuple(case.hw), dtype=case.dtype)
        assert P.shape == (y[n].size, x[n].size) and P.dtype == case.dtype
        np.testing.assert_array_equal(np.diff(P.indptr), 1)        # one 1 per row
        np.testing.assert_array_equal(P.data, 1)
        np.testing.assert_array_equal(P @ x[n].ravel(), y[n].ravel())
        assert_close(P.T @ g[n].ravel(), unpooled[n].ravel(), dtype=case.dtype)


@given(pool_cases(overlapping=True))
def test_pool_transpose_adds_shared_switches(case):
    """Overlapping windows: P(s)ᵀ y adds every y at its switch (bincount), which is what
    max_unpool2d computes and what torch's assigning max_unpool2d does not."""
    if case.has_empty_window:
        return
    x = case.x("ties")
    _, switches = md.max_pool2d(x, **case.kwargs())
    g = case.cotangent()
    plane = case.hw[0] * case.hw[1]
    P = mx.max_pool2d_matrix(switches[0], (case.c,) + tuple(case.hw), dtype=np.float64)
    offsets = (np.arange(case.c) * plane)[:, None, None]
    expected = np.bincount((switches[0] + offsets).ravel(),
                           weights=g[0].astype(np.float64).ravel(), minlength=case.c * plane)
    assert_close(P.T @ g[0].astype(np.float64).ravel(), expected, dtype=np.float64)


def test_pool_transpose_on_the_centre_of_four_windows():
    """REFERENCES.md: centre of a 5x5 input in all four 3x3/2 windows, y = [1, 2, 3, 4]:
    the transpose puts 10 there (torch's max_unpool2d gives 4)."""
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    _, switches = md.max_pool2d(x, 3, 2)
    np.testing.assert_array_equal(switches, 12)
    P = mx.max_pool2d_matrix(switches[0], (1, 5, 5))
    back = (P.T @ np.array([1.0, 2.0, 3.0, 4.0])).reshape(5, 5)
    assert back[2, 2] == 10.0 and np.count_nonzero(back) == 1


@given(elementwise_arrays())
def test_relu_matrix(x):
    """Any shape (usually one image (C, H, W)); D is diag(x > 0) of the flattened array."""
    D = mx.relu_matrix(x)
    assert D.shape == (x.size,) * 2 and D.dtype == x.dtype
    np.testing.assert_array_equal(D.diagonal(), (x > 0).ravel())
    assert D.nnz == np.count_nonzero(x > 0)                        # only the ones stored
    np.testing.assert_array_equal(D @ x.ravel(), md.relu(x).ravel())
    np.testing.assert_array_equal(mx.relu_matrix(x > 0).toarray(), D.toarray())


# =========================================================================== WᵀW ≠ I

@given(conv_cases(dtypes=(np.float64,), **SMALL))
def test_transpose_is_not_an_inverse_for_generic_kernels(case):
    _, w, _, _ = case.arrays()
    W = mx.conv2d_matrix(w, input_shape(case), **matrix_kwargs(case))
    dense = W.toarray()
    gram = dense.T @ dense - np.eye(W.shape[1])
    deviation = mx.gram_deviation(W)
    assert deviation.frobenius == pytest.approx(np.linalg.norm(gram), rel=1e-10, abs=1e-12)
    assert deviation.frobenius > 1e-6            # Gaussian kernels are never orthonormal
    sigma = mx.singular_values(W)
    reference = np.linalg.svd(dense, compute_uv=False)
    np.testing.assert_allclose(sigma, reference, rtol=1e-10,
                               atol=1e-10 * max(reference.max(), 1.0))
    # the n eigenvalues of WᵀW are σ² and, when W is wide, n − m zeros
    eigenvalues = np.concatenate([reference ** 2, np.zeros(W.shape[1] - reference.size)])
    assert deviation.spectral == pytest.approx(np.abs(eigenvalues - 1).max(), rel=1e-8,
                                               abs=1e-10)
    if W.shape[0] < W.shape[1]:
        rank = np.count_nonzero(reference > reference.max() * max(W.shape) * 1e-15)
        assert rank < W.shape[1]                  # (at most the m rows)
        assert deviation.spectral >= 1 - 1e-9     # a null direction x has WᵀWx - x = -x


def test_singular_values_from_svds_match_the_dense_ones():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((2, 1, 3, 3))
    W = mx.conv2d_matrix(w, (1, 12, 12), padding=1)
    dense = np.linalg.svd(W.toarray(), compute_uv=False)
    largest = mx.singular_values(W, k=4, dense_limit=0)
    np.testing.assert_allclose(largest, dense[:4], rtol=1e-8)
    np.testing.assert_allclose(mx.singular_values(W, k=4), dense[:4], rtol=1e-12)
    np.testing.assert_allclose(mx.singular_values(W, k=2, which="SM"), dense[-2:], rtol=1e-12)
    spectral = mx.gram_deviation(W, dense_limit=0).spectral          # eigsh path
    assert spectral == pytest.approx(mx.gram_deviation(W).spectral, rel=1e-8)


def test_least_squares_beats_the_transpose_on_a_tall_convolution():
    """Two 3x3 filters, padding 1, on one 6x6 channel: W is 72x36 with full column rank,
    so lsqr recovers x; Wᵀ(Wx) is not even close."""
    rng = np.random.default_rng(7)
    w = rng.standard_normal((2, 1, 3, 3))
    W = mx.conv2d_matrix(w, (1, 6, 6), padding=1)
    x = rng.standard_normal((1, 6, 6))
    result = mx.reconstruct(W, x)
    assert np.linalg.matrix_rank(W.toarray()) == 36
    assert result.lsqr_error < 1e-8
    assert result.transpose_error > 0.1
    assert result.lsqr_error < 1e-6 * result.transpose_error
    assert result.lsqr_residual <= result.transpose_residual
    np.testing.assert_allclose(result.x_transpose, (W.T @ (W @ x.ravel())).reshape(x.shape))
    np.testing.assert_allclose(mx.least_squares_inverse(W, W @ x.ravel()), x.ravel(),
                               atol=1e-8)


def test_least_squares_is_the_minimum_norm_solution_for_a_wide_convolution():
    """Stride 2 throws pixels away: W is wide, x is not recoverable, and lsqr returns
    W⁺ y (zero residual, smallest norm)."""
    rng = np.random.default_rng(8)
    w = rng.standard_normal((1, 1, 3, 3))
    W = mx.conv2d_matrix(w, (1, 7, 7), stride=2, padding=1)
    x = rng.standard_normal(49)
    result = mx.reconstruct(W, x)
    np.testing.assert_allclose(result.x_lsqr, np.linalg.pinv(W.toarray()) @ (W @ x),
                               atol=1e-8)
    assert result.lsqr_residual < 1e-8
    assert result.lsqr_error > 0.1


# =========================================================================== circular convolutions

def wrapped_dilated_kernel(kernel2d, hw, dilation):
    """The kernel's taps placed at (i·dh mod H, j·dw mod W) on the H×W grid, added."""
    grid = np.zeros(hw)
    for i in range(kernel2d.shape[0]):
        for j in range(kernel2d.shape[1]):
            grid[(i * dilation[0]) % hw[0], (j * dilation[1]) % hw[1]] += kernel2d[i, j]
    return grid


@st.composite
def circular_same_cases(draw, max_channels=1):
    """Stride-1 circular convolutions with output size = input size (the "same" pads,
    wrapping at most once), kernels possibly wider than the image."""
    hw, kernel, dilation = [], [], []
    for _ in range(2):
        size = draw(st.integers(1, 8))
        d = draw(st.integers(1, 3))
        k = draw(st.integers(1, 2 * size // d + 1))   # total pad d(k-1) <= 2·size
        hw.append(size), kernel.append(k), dilation.append(d)
    groups = draw(st.integers(1, 2)) if max_channels > 1 else 1
    c_in = groups * draw(st.integers(1, max_channels // groups))
    c_out = groups * draw(st.integers(1, max_channels // groups))
    return (tuple(hw), tuple(kernel), tuple(dilation), c_in, c_out, groups,
            draw(st.integers(0, 2**32 - 1)))


@given(circular_same_cases())
def test_circular_single_channel_gram_eigenvalues_are_the_squared_dft(params):
    hw, kernel, dilation, _, _, _, seed = params
    w = np.random.default_rng(seed).standard_normal((1, 1) + kernel)
    W = mx.conv2d_matrix(w, (1,) + hw, padding="same", dilation=dilation,
                         padding_mode="circular")
    assert W.shape == (hw[0] * hw[1],) * 2
    dense = W.toarray()
    eigenvalues = np.linalg.eigvalsh(dense.T @ dense)
    dft = np.fft.fft2(wrapped_dilated_kernel(w[0, 0], hw, dilation))
    expected = np.sort(np.abs(dft).ravel() ** 2)
    scale = max(expected.max(), 1e-300)
    np.testing.assert_allclose(eigenvalues, expected, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(mx.circular_gram_eigenvalues(w, hw, dilation), expected,
                               rtol=0, atol=1e-12 * scale)
    if all(d * (k - 1) < n for n, k, d in zip(hw, kernel, dilation)):
        # the kernel fits: plain zero-padded fft2, as the statement is usually written
        dilated = np.zeros(tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation)))
        dilated[::dilation[0], ::dilation[1]] = w[0, 0]
        np.testing.assert_allclose(np.sort(np.abs(np.fft.fft2(dilated, hw)).ravel() ** 2),
                                   expected, rtol=0, atol=1e-12 * scale)


@given(circular_same_cases(max_channels=4))
def test_circular_multichannel_gram_eigenvalues_from_the_dft(params):
    hw, kernel, dilation, c_in, c_out, groups, seed = params
    w = np.random.default_rng(seed).standard_normal((c_out, c_in // groups) + kernel)
    W = mx.conv2d_matrix(w, (c_in,) + hw, padding="same", dilation=dilation, groups=groups,
                         padding_mode="circular")
    dense = W.toarray()
    eigenvalues = np.linalg.eigvalsh(dense.T @ dense)
    predicted = mx.circular_gram_eigenvalues(w, hw, dilation, groups)
    assert predicted.shape == eigenvalues.shape
    np.testing.assert_allclose(eigenvalues, predicted, rtol=0,
                               atol=1e-10 * max(predicted.max(), 1e-300))


@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1),
       st.sampled_from(["same", "explicit"]))
def test_allpass_kernel_makes_the_transpose_an_inverse(height, width, seed, how):
    kernel = mx.allpass_kernel((height, width), seed=seed)
    np.testing.assert_allclose(np.abs(np.fft.fft2(kernel)), 1.0, atol=1e-12)
    if how == "same":
        padding = "same"
    else:   # any split of the total padding k-1 keeps W square and orthogonal
        padding = ((height - 1) // 2, (width - 1) // 2) if height % 2 and width % 2 \
            else "same"
    W = mx.conv2d_matrix(kernel[None, None], (1, height, width), padding=padding,
                         padding_mode="circular")
    dense = W.toarray()
    assert np.abs(dense.T @ dense - np.eye(height * width)).max() < 1e-12
    assert mx.gram_deviation(W).spectral < 1e-12
    x = np.random.default_rng(seed).standard_normal(height * width)
    assert mx.reconstruct(W, x).transpose_error < 1e-12


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5), st.integers(1, 5),
       st.data())
def test_shifted_delta_is_all_pass(height, width, kh, kw, data):
    """A kernel with a single 1 anywhere is a circular shift: WᵀW = I exactly."""
    kh, kw = min(kh, 2 * height - 1), min(kw, 2 * width - 1)
    w = np.zeros((1, 1, kh, kw))
    w[0, 0, data.draw(st.integers(0, kh - 1)), data.draw(st.integers(0, kw - 1))] = 1.0
    W = mx.conv2d_matrix(w, (1, height, width), padding="same", padding_mode="circular")
    dense = W.toarray()
    np.testing.assert_array_equal(dense.T @ dense, np.eye(height * width))


# =========================================================================== chains

def small_network(seed, dtype=np.float64):
    """conv 3x3 p1 (2 -> 3) → relu → maxpool 3/2 (overlapping) → conv 3x3 (3 -> 2) → relu,
    on one 2x9x9 image; returns the activations and the recorded factors."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 2, 9, 9)).astype(dtype)
    w1 = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    w2 = rng.standard_normal((2, 3, 3, 3)).astype(dtype)
    a1 = md.conv2d(x, w1, padding=1)
    r1 = md.relu(a1)
    p1, switches = md.max_pool2d(r1, 3, 2)
    a2 = md.conv2d(p1, w2)
    out = md.relu(a2)
    factors = [mx.conv2d_matrix(w1, (2, 9, 9), padding=1), mx.relu_matrix(a1[0]),
               mx.max_pool2d_matrix(switches[0], (3, 9, 9), dtype=dtype),
               mx.conv2d_matrix(w2, (3, 4, 4)), mx.relu_matrix(a2[0])]
    acts = dict(x=x, w1=w1, w2=w2, a1=a1, switches=switches, a2=a2, out=out)
    return acts, factors


RELU_POSITIONS = (1, 4)


@given(st.integers(0, 2**32 - 1))
def test_forward_chain_is_the_network(seed):
    acts, factors = small_network(seed)
    F = mx.forward_chain(factors)
    assert F.shape == (acts["out"].size, acts["x"].size)
    assert_close(F @ acts["x"].ravel(), acts["out"].ravel(), dtype=np.float64)
    B = mx.backward_chain(factors)
    assert abs(B - F.T).max() <= 1e-12 * abs(F).max()


def backward_with_ops(acts, top, rule):
    """The rule's projection computed with the operators, layer by layer."""
    r = md.relu_backward(top, acts["a2"], rule)
    r = md.conv_transpose2d(r, acts["w2"], output_size=(4, 4))
    r = md.max_unpool2d(r, acts["switches"], 3, 2, output_size=(9, 9))
    r = md.relu_backward(r, acts["a1"], rule)
    return md.conv_transpose2d(r, acts["w1"], padding=1, output_size=(9, 9))


@given(st.integers(0, 2**32 - 1), st.sampled_from(["backprop", "deconvnet", "guided"]))
def test_rule_backward_maps_are_explicit_matrices(seed, rule):
    acts, factors = small_network(seed)
    top = np.random.default_rng([seed, 1]).standard_normal(acts["out"].shape)
    result = mx.rule_backward_map(factors, RELU_POSITIONS, top, rule)
    expected = backward_with_ops(acts, top, rule)
    assert result.rule == rule
    assert result.matrix.shape == (acts["x"].size, acts["out"].size)
    assert_close(result.projection, expected.ravel(), dtype=np.float64)
    assert_close(result.matrix @ top.ravel(), expected.ravel(), dtype=np.float64)
    # only the ReLU factors depend on the rule
    for k, (g, f) in enumerate(zip(result.factors, factors)):
        if k not in RELU_POSITIONS:
            assert (g != f.T).nnz == 0
    if rule == "backprop":
        F = mx.forward_chain(factors)
        assert abs(result.matrix - F.T).max() <= 1e-12 * abs(F).max()


def test_guided_factor_is_the_product_of_the_other_two():
    acts, factors = small_network(11)
    top = np.random.default_rng(12).standard_normal(acts["out"].shape)
    relu = {rule: mx.relu_rule_factors(factors, RELU_POSITIONS, top, rule)
            for rule in ("backprop", "deconvnet", "guided")}
    # at the top ReLU the arriving signal is `top` itself for every rule
    top_k = RELU_POSITIONS[-1]
    product = relu["backprop"][top_k] @ relu["deconvnet"][top_k]
    assert (relu["guided"][top_k] != product).nnz == 0
    np.testing.assert_array_equal(relu["deconvnet"][top_k].diagonal(), top.ravel() > 0)
    assert (relu["backprop"][top_k] != factors[top_k]).nnz == 0


# =========================================================================== errors

W_OK = np.ones((2, 1, 3, 3))


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(input_shape=(1, 5)), TypeError, "input_shape"),
    (dict(input_shape=(1, 5, 5.0)), TypeError, "input_shape"),
    (dict(input_shape=(1, 0, 5)), ValueError, "input_shape"),
    (dict(input_shape=(3, 5, 5)), ValueError, "weight"),
    (dict(weight=np.ones((2, 1, 3, 3), dtype=np.int64)), TypeError, "weight"),
    (dict(weight=np.ones((2, 1, 3))), ValueError, "weight"),
    (dict(weight=[[[[1.0]]]]), TypeError, "weight"),
    (dict(stride=0), ValueError, "stride"),
    (dict(stride=1.5), TypeError, "stride"),
    (dict(dilation=(1, 0)), ValueError, "dilation"),
    (dict(padding=-1), ValueError, "padding"),
    (dict(padding="full"), ValueError, "padding"),
    (dict(padding="same", stride=2), ValueError, "padding"),
    (dict(groups=2), ValueError, "groups"),
    (dict(groups=0), ValueError, "groups"),
    (dict(padding_mode="symmetric"), ValueError, "padding_mode"),
    (dict(padding=6, padding_mode="circular"), ValueError, "padding"),
    (dict(input_shape=(1, 2, 2)), ValueError, "kernel"),
])
@pytest.mark.parametrize("builder", [mx.conv2d_matrix, mx.conv_transpose2d_matrix])
def test_conv_matrix_errors_name_the_parameter(builder, kwargs, error, word):
    args = dict(weight=W_OK, input_shape=(1, 5, 5))
    args.update(kwargs)
    with pytest.raises(error, match=word):
        builder(**args)


@pytest.mark.parametrize("kwargs", [
    dict(stride=0), dict(padding="full"), dict(padding="same", stride=2), dict(groups=2),
    dict(padding_mode="symmetric"), dict(padding=6, padding_mode="circular"),
    dict(weight=np.ones((2, 3, 3, 3))),
])
def test_conv_matrix_rejects_what_conv2d_rejects(kwargs):
    """Same validator, same verdict: the builder and the op raise the same error type."""
    args = dict(weight=W_OK, stride=1, padding=0, dilation=1, groups=1,
                padding_mode="zeros")
    args.update(kwargs)
    weight = args.pop("weight")
    with pytest.raises((TypeError, ValueError)) as from_op:
        md.conv2d(np.ones((1, 1, 5, 5)), weight, **args)
    with pytest.raises(from_op.type):
        mx.conv2d_matrix(weight, (1, 5, 5), **args)


@pytest.mark.parametrize("switches, shape, error, word", [
    (np.zeros((1, 2, 2)), (1, 4, 4), TypeError, "switches"),            # float
    ([[[0]]], (1, 4, 4), TypeError, "switches"),                       # not an array
    (np.zeros((2, 2), np.int64), (1, 4, 4), ValueError, "switches"),   # no channel axis
    (np.zeros((2, 2, 2), np.int64), (1, 4, 4), ValueError, "switches"),  # C mismatch
    (np.full((1, 2, 2), 16, np.int64), (1, 4, 4), ValueError, "switches"),  # >= H·W
    (np.full((1, 2, 2), -1, np.int64), (1, 4, 4), ValueError, "switches"),
    (np.zeros((1, 2, 2), np.int64), (1, 4), TypeError, "input_shape"),
])
def test_pool_matrix_errors(switches, shape, error, word):
    with pytest.raises(error, match=word):
        mx.max_pool2d_matrix(switches, shape)


def test_other_errors_name_the_parameter():
    with pytest.raises(TypeError, match="x"):
        mx.relu_matrix([1.0, -1.0])
    W = mx.conv2d_matrix(W_OK, (1, 5, 5))
    with pytest.raises(ValueError, match="factors"):
        mx.forward_chain([W, W])
    with pytest.raises(ValueError, match="factors"):
        mx.forward_chain([])
    with pytest.raises(TypeError, match="factors"):
        mx.forward_chain([W, "relu"])
    D = mx.relu_matrix(np.ones(W.shape[0]))
    with pytest.raises(ValueError, match="rule"):
        mx.rule_backward_map([W, D], [1], np.ones(W.shape[0]), "gradient")
    with pytest.raises(ValueError, match="relu_positions"):
        mx.relu_rule_factors([W, D], [0], np.ones(W.shape[0]))
    with pytest.raises(ValueError, match="top_signal"):
        mx.relu_rule_factors([W, D], [1], np.ones(3))
    with pytest.raises(ValueError, match="replacements"):
        mx.backward_chain([W, D], {1: sp.eye_array(3)})
    with pytest.raises(ValueError, match="k"):
        mx.singular_values(W, k=W.shape[1] + 1)
    with pytest.raises(ValueError, match="k"):
        mx.singular_values(W, dense_limit=10)
    with pytest.raises(ValueError, match="y"):
        mx.least_squares_inverse(W, np.ones(3))
    with pytest.raises(ValueError, match="x"):
        mx.reconstruct(W, np.ones(3))


def test_index_dtype_switches_to_int64_only_when_needed():
    assert mx.csr.index_dtype(2**31 - 1, 10) == np.int32
    assert mx.csr.index_dtype(2**31, 10) == np.int64


@pytest.mark.parametrize("dtype", DTYPES)
def test_float32_and_float64_weights_keep_their_dtype(dtype):
    w = np.ones((1, 1, 2, 2), dtype=dtype)
    assert mx.conv2d_matrix(w, (1, 3, 3)).dtype == dtype
    assert mx.conv_transpose2d_matrix(w, (1, 3, 3)).dtype == dtype
    assert mx.relu_matrix(np.ones(3, dtype)).dtype == dtype
