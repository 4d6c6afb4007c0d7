"""minideconv.visualize.invert against independent computations: its gradient against central
finite differences, its answer on a linear layer against LSQR on the explicit matrix
(``matrices.conv2d_matrix``), determinism, the regularisers, and the argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.linalg import lsqr

from minideconv import matrices, nn
from minideconv.visualize import invert
from minideconv.data import load_dataset, load_image, load_model

SHAPE = (2, 8, 8)


def small_net(seed=0):
    """conv → ReLU → pool → conv → ReLU → flatten → linear, float64, random weights."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(rng.standard_normal((4, 2, 3, 3)) * 0.5, rng.standard_normal(4) * 0.1,
                  padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, padding=1),
        nn.Conv2d(rng.standard_normal((5, 4, 3, 3)) * 0.3, rng.standard_normal(5) * 0.1,
                  padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(rng.standard_normal((3, 80)) * 0.2, rng.standard_normal(3) * 0.1),
        input_shape=SHAPE)


def image(seed=1, shape=SHAPE):
    return np.random.default_rng(seed).uniform(0, 1, shape)


def central_differences(f, x, h=1e-6):
    grad = np.zeros(x.size)
    flat = x.ravel()
    for i in range(flat.size):
        step = np.zeros_like(flat)
        step[i] = h
        grad[i] = (f(flat + step) - f(flat - step)) / (2 * h)
    return grad


# --------------------------------------------------------------------------- the gradient

@pytest.mark.parametrize("layer", [0, 1, 2, 3, 4, 6])
@pytest.mark.parametrize("weights", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.2), (0.1, 0.05)],
                         ids=["data", "tv", "alpha", "all"])
def test_the_gradient_is_the_finite_difference_gradient(layer, weights):
    net = small_net()
    x0 = image(1)
    tv_weight, alpha_weight = weights
    objective = invert.InversionObjective.for_image(net, x0, layer, tv_weight=tv_weight,
                                                    alpha_weight=alpha_weight, alpha=4)
    x = image(2) * 1.4 - 0.2          # partly outside [0, 1], so the α term matters
    value, grad = objective(x)
    assert value == pytest.approx(objective.terms(x).total)
    numeric = central_differences(lambda v: objective.terms(v).total, x)
    assert np.abs(grad).max() > 1e-3
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7 * np.abs(numeric).max())


def test_the_data_term_and_its_normalisation():
    net = small_net()
    x0, x = image(1), image(2)
    objective = invert.InversionObjective.for_image(net, x0, 4)
    target = net.trace(x0[None], upto=4).outputs[4]
    output = net.trace(x[None], upto=4).outputs[4]
    terms = objective.terms(x)
    expected = np.sum((output - target) ** 2) / np.sum(target ** 2)
    assert terms.data == pytest.approx(expected, rel=1e-12)
    assert terms.feature_error == pytest.approx(np.sqrt(expected), rel=1e-12)
    assert objective.terms(x0).data == 0


@pytest.mark.parametrize("beta", [1.0, 1.5, 2.0, 3.0])
def test_total_variation_gradient_and_value(beta):
    x = image(3, (3, 5, 6))
    value, grad = invert.total_variation(x, beta, eps=1e-3)
    numeric = central_differences(lambda v: invert.total_variation(v.reshape(x.shape), beta,
                                                                   1e-3)[0], x)
    np.testing.assert_allclose(grad.ravel(), numeric, rtol=1e-5, atol=1e-9)
    # by hand: forward differences, the last one 0, summed over channels, mean over pixels
    dx = np.diff(x, axis=2, append=x[:, :, -1:])
    dy = np.diff(x, axis=1, append=x[:, -1:, :])
    by_hand = np.mean(((dx ** 2 + dy ** 2).sum(axis=0) + 1e-3) ** (beta / 2))
    assert value == pytest.approx(by_hand, rel=1e-12)
    flat_value, flat_grad = invert.total_variation(np.full((3, 5, 6), 0.7), beta, eps=1e-3)
    assert flat_value == pytest.approx(1e-3 ** (beta / 2))
    assert not flat_grad.any()


def test_alpha_norm_is_a_soft_box():
    inside = np.full((1, 2, 2), 0.75)
    value, _ = invert.alpha_norm(inside, 6)
    assert value == pytest.approx(0.5 ** 6)
    assert invert.alpha_norm(np.full((1, 2, 2), 1.5), 6)[0] == pytest.approx(2.0 ** 6)
    assert invert.alpha_norm(np.full((1, 2, 2), 1.0), 6, pixel_range=(-1, 1))[0] == 1


# --------------------------------------------------------------------------- a linear layer

def linear_case(c_out, padding, seed=0):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((c_out, 2, 3, 3))
    bias = rng.standard_normal(c_out)
    net = nn.Sequential(nn.Conv2d(weight, bias, padding=padding), input_shape=(2, 6, 6))
    x0 = image(4, (2, 6, 6))
    matrix = matrices.conv2d_matrix(weight, (2, 6, 6), padding=padding)
    return net, x0, matrix


def test_a_full_rank_linear_layer_is_inverted_as_lsqr_does():
    net, x0, matrix = linear_case(c_out=4, padding=1)     # W: 144 × 72, full column rank
    assert np.linalg.matrix_rank(matrix.toarray()) == x0.size
    found = invert.invert_representation(net, x0, 0, max_iter=2000, tol=1e-14)
    x_lsqr = lsqr(matrix, matrix @ x0.ravel(), atol=1e-14, btol=1e-14)[0]
    assert np.abs(found.image.ravel() - x_lsqr).max() < 1e-6
    assert found.image_error < 1e-6
    # E ≈ feature_error² stops where its decrease is below tol: √1e-14 = 1e-7
    assert found.feature_error < 1e-6
    assert found.converged


def test_a_rank_deficient_linear_layer_gives_lsqr_minimum_norm_solution():
    """Started at 0, L-BFGS's steps are combinations of gradients 2Wᵀ(Wx − y) and stay in
    the row space of W, as LSQR's do: both find the minimum-norm solution W⁺y ≠ x₀."""
    net, x0, matrix = linear_case(c_out=1, padding=0)     # W: 16 × 72
    found = invert.invert_representation(net, x0, 0, x_init="zeros", max_iter=2000,
                                         tol=1e-14)
    x_lsqr = matrices.least_squares_inverse(matrix, matrix @ x0.ravel())
    scale = np.abs(x_lsqr).max()
    assert np.abs(found.image.ravel() - x_lsqr).max() < 1e-6 * scale
    assert found.image_error > 0.5          # many images share this representation
    assert found.feature_error < 1e-6


def test_the_shipped_network_first_layer_is_recovered_to_a_few_percent():
    net = load_model()
    x0 = load_image("test:1")
    found = invert.invert_representation(net, x0, 0, max_iter=200)
    assert found.image_error < 0.02
    assert found.feature_error < 1e-3
    assert found.image.dtype == np.float64 and found.image.shape == x0.shape


# --------------------------------------------------------------------------- the result

def test_the_same_arguments_give_the_same_result():
    net = small_net()
    x0 = image(1)
    a = invert.invert_representation(net, x0, 4, tv_weight=0.01, max_iter=60, seed=3)
    b = invert.invert_representation(net, x0, 4, tv_weight=0.01, max_iter=60, seed=3)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.losses, b.losses)
    c = invert.invert_representation(net, x0, 4, tv_weight=0.01, max_iter=60, seed=4)
    assert not np.array_equal(a.image, c.image)


def test_losses_are_recorded_per_iteration_and_decrease():
    net = small_net()
    found = invert.invert_representation(net, image(1), 2, max_iter=40)
    assert len(found.losses) == found.iterations + 1
    assert np.all(np.diff(found.losses) <= 1e-15)
    assert found.losses[-1] == pytest.approx(found.terms.total)
    assert found.evaluations >= found.iterations
    assert not found.image.flags.writeable


def test_the_data_term_is_recorded_beside_the_total():
    """``data_losses`` is ‖Φ(x) − Φ₀‖²/‖Φ₀‖² at every iterate: with no regulariser the
    total itself, with TV the total minus λ·TV of each iterate, recomputed here from the
    iterates of a run with one more step at a time (the same arguments give the same
    iterates)."""
    net = small_net()
    x0 = image(1)
    plain = invert.invert_representation(net, x0, 2, max_iter=30)
    assert np.array_equal(plain.data_losses, plain.losses)
    start = 0.5 + 0.1 * np.random.default_rng(2).standard_normal(x0.shape)
    smooth = invert.invert_representation(net, x0, 2, tv_weight=0.05, max_iter=12,
                                          x_init=start)
    assert len(smooth.data_losses) == len(smooth.losses) == smooth.iterations + 1
    assert smooth.data_losses[-1] == pytest.approx(smooth.terms.data)
    assert not smooth.data_losses.flags.writeable
    fresh = invert.InversionObjective.for_image(net, x0, 2)        # the data term alone
    for k in (0, 3, smooth.iterations):
        shorter = invert.invert_representation(net, x0, 2, tv_weight=0.05, max_iter=k,
                                               x_init=start) if k else None
        iterate = shorter.image if k else start
        assert smooth.data_losses[k] == pytest.approx(fresh.terms(iterate).total,
                                                      rel=1e-12)
    assert np.all(smooth.data_losses < smooth.losses)


def test_the_tv_term_lowers_the_total_variation():
    net = small_net()
    x0 = image(1)
    plain = invert.invert_representation(net, x0, 2, max_iter=200)
    smooth = invert.invert_representation(net, x0, 2, tv_weight=0.5, max_iter=200)
    tv_plain = invert.total_variation(plain.image)[0]
    tv_smooth = invert.total_variation(smooth.image)[0]
    assert tv_smooth < 0.5 * tv_plain
    assert smooth.terms.tv == pytest.approx(tv_smooth)
    assert smooth.feature_error > plain.feature_error     # the price paid


def test_the_alpha_term_and_bounds_keep_pixels_in_range():
    net = small_net()
    x0 = image(1)
    free = invert.invert_representation(net, x0, 4, max_iter=150)
    soft = invert.invert_representation(net, x0, 4, alpha_weight=1.0, max_iter=150)
    hard = invert.invert_representation(net, x0, 4, bounds=(0, 1), max_iter=150)
    outside = [np.abs(np.clip(r.image, 0, 1) - r.image).max() for r in (free, soft, hard)]
    assert outside[1] < outside[0]
    assert outside[2] == 0


def test_starts():
    net = small_net()
    x0 = image(1)
    given = image(7)
    found = invert.invert_representation(net, x0, 1, x_init=given, max_iter=1)
    assert found.losses[0] == pytest.approx(
        invert.InversionObjective.for_image(net, x0, 1).terms(given).total)
    zeros = invert.invert_representation(net, x0, 1, x_init="zeros", max_iter=1)
    assert zeros.losses[0] == pytest.approx(
        invert.InversionObjective.for_image(net, x0, 1).terms(np.zeros(SHAPE)).total)
    assert given.dtype == np.float64 and np.array_equal(given, image(7))   # not modified


def test_a_float32_network_is_inverted_in_float64():
    net = small_net().astype(np.float32)
    x0 = image(1).astype(np.float32)
    found = invert.invert_representation(net, x0, 0, max_iter=5)
    assert found.image.dtype == np.float64
    assert net.layers[0].weight.dtype == np.float32


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs, error, words", [
    (dict(layer=10), ValueError, "layer"),
    (dict(layer=1.0), TypeError, "layer"),
    (dict(tv_weight=-1.0), ValueError, "tv_weight"),
    (dict(tv_weight="a"), TypeError, "tv_weight"),
    (dict(alpha_weight=-0.1), ValueError, "alpha_weight"),
    (dict(alpha=0.5), ValueError, "alpha"),
    (dict(tv_beta=0.5), ValueError, "tv_beta"),
    (dict(tv_beta=1.0, tv_eps=0.0), ValueError, "tv_eps"),
    (dict(tv_eps=-1.0), ValueError, "tv_eps"),
    (dict(x_init="ones"), ValueError, "x_init"),
    (dict(x_init=[0.0]), TypeError, "x_init"),
    (dict(x_init=np.zeros((2, 4, 4))), ValueError, "x_init"),
    (dict(x_init=np.full(SHAPE, np.nan)), ValueError, "x_init"),
    (dict(max_iter=0), ValueError, "max_iter"),
    (dict(max_iter=2.5), TypeError, "max_iter"),
    (dict(memory=0), ValueError, "memory"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(tol=0.0), ValueError, "tol"),
    (dict(pixel_range=(1, 0)), ValueError, "pixel_range"),
    (dict(pixel_range=0.5), TypeError, "pixel_range"),
    (dict(bounds=(0,)), TypeError, "bounds"),
])
def test_bad_arguments_are_named(kwargs, error, words):
    arguments = dict(layer=2)
    arguments.update(kwargs)
    layer = arguments.pop("layer")
    with pytest.raises(error, match=words):
        invert.invert_representation(small_net(), image(1), layer, **arguments)


def test_bad_networks_and_images():
    with pytest.raises(TypeError, match="net"):
        invert.invert_representation("net", image(1), 0)
    with pytest.raises(TypeError, match="x0"):
        invert.invert_representation(small_net(), [[0.0]], 0)
    with pytest.raises(ValueError, match="x0"):
        invert.invert_representation(small_net(), image(1)[None], 0)
    with pytest.raises(TypeError, match="x0"):
        invert.invert_representation(small_net(), np.ones(SHAPE, np.int64), 0)
    with pytest.raises(ValueError, match="does not fit|channels"):
        invert.invert_representation(small_net(), image(1, (3, 8, 8)), 0)


def test_a_zero_representation_is_refused():
    net = nn.Sequential(nn.Conv2d(-np.ones((1, 2, 3, 3)), None), nn.ReLU())
    with pytest.raises(ValueError, match="zero"):
        invert.invert_representation(net, image(1), 1)


@pytest.mark.slow
def test_lesson_10s_total_variation_sentence_holds_over_8_test_images():
    """Lesson 11: "Over 8 test images, raising λ from 0 to 0.1 lowers the median image
    error at every block while the feature error moves by a few points" — with the
    lesson's settings (200 iterations, TV₂, the default random start).  48 inversions."""
    net = load_model()
    images, _ = load_dataset("test", n=8)
    for layer in (2, 5, 7):                  # the outputs of the three blocks
        found = {}
        for weight in (0.0, 0.1):
            runs = [invert.invert_representation(net, x.astype(np.float64), layer,
                                                 max_iter=200, tv_weight=weight, tv_beta=2.0)
                    for x in images]
            found[weight] = (np.median([r.feature_error for r in runs]),
                             np.median([r.image_error for r in runs]))
        (feature_0, image_0), (feature_1, image_1) = found[0.0], found[0.1]
        assert image_1 < image_0, (layer, image_0, image_1)
        assert abs(feature_1 - feature_0) < 0.05, (layer, feature_0, feature_1)
