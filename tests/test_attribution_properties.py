"""Properties every correct implementation of the family has, checked without torch:
the gradient against finite differences, integrated gradients' completeness, Euler's
identity for input × gradient, Grad-CAM's gradient against the network above its layer,
SmoothGrad's zero-noise limit — and the errors that bad arguments raise."""

from __future__ import annotations

import numpy as np
import pytest

from minideconv import attribution as A
from minideconv import nn
from minideconv.attribution.integrated_gradients import path_points
from minideconv.attribution.targets import logits_of
from minideconv.data import load_dataset, load_model
from tests.support.family_networks import alexnet_like, resnet_like
from tests.support.networks import small_net


@pytest.fixture(scope="module")
def shipped():
    return load_model().astype(np.float64)


@pytest.fixture(scope="module")
def images():
    return load_dataset("test", 4)[0].astype(np.float64)


def logit(net, image, target):
    return logits_of(net, image[None])[0, target]


def test_the_gradient_matches_central_finite_differences():
    rng = np.random.default_rng(0)
    net = small_net(rng)
    x = rng.standard_normal((3, 9, 9))
    grad = A.gradient(net, x, 2)
    step = 1e-6
    for index in [(0, 0, 0), (1, 4, 4), (2, 8, 3), (0, 5, 7)]:
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        numeric = (logit(net, up, 2) - logit(net, down, 2)) / (2 * step)
        assert abs(numeric - grad[index]) < 1e-7 * max(1.0, abs(numeric))


def test_per_image_targets_equal_one_call_per_image(shipped, images):
    """The same maps, up to rounding: the convolution's route (im2col or Winograd) may
    depend on the batch's size (``backends.winograd.applies``)."""
    batch = A.gradient(shipped, images, [3, 0, 9, 3])
    for n, target in enumerate([3, 0, 9, 3]):
        one = A.gradient(shipped, images[n], target)
        np.testing.assert_allclose(batch[n], one, rtol=0, atol=1e-13 * np.abs(one).max())


def test_the_methods_do_not_write_to_their_input(shipped, images):
    before = images.copy()
    for name in ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad",
                 "grad_cam", "guided_grad_cam"):
        A.compute(name, shipped, images, 1)
    np.testing.assert_array_equal(images, before)


def test_input_x_gradient_sums_to_the_logit_of_a_bias_free_relu_network():
    """z(x) is positively homogeneous of degree 1 without biases: Σ x ∂z/∂x = z(x)."""
    rng = np.random.default_rng(1)
    net = small_net(rng, biases=0.0)
    x = rng.standard_normal((5, 3, 9, 9))
    sums = A.input_x_gradient(net, x, 4).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(sums, logits_of(net, x)[:, 4], rtol=1e-12, atol=1e-12)
    biased = small_net(np.random.default_rng(1), biases=0.3)     # the identity needs it
    assert not np.allclose(A.input_x_gradient(biased, x, 4).sum(axis=(1, 2, 3)),
                           logits_of(biased, x)[:, 4], rtol=1e-3)


@pytest.mark.parametrize("steps", [50, 200])
def test_integrated_gradients_are_complete_up_to_the_quadrature(shipped, images, steps,
                                                                capsys):
    attributions = A.integrated_gradients(shipped, images, 3, steps=steps)
    change = logits_of(shipped, images)[:, 3] - logits_of(shipped, 0 * images)[:, 3]
    error = np.abs(attributions.sum(axis=(1, 2, 3)) - change).max() / np.abs(change).max()
    with capsys.disabled():
        print(f"\n  IG completeness, shipped network, {steps} Gauss-Legendre steps: "
              f"max |Σ IG − Δz| / max |Δz| = {error:.2e}")
    assert error < 0.05


def affine_net(rng):
    return nn.Sequential(nn.Conv2d(rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4),
                                   padding=1),
                         nn.AvgPool2d(3, 2), nn.Flatten(),
                         nn.Linear(rng.standard_normal((5, 64)), rng.standard_normal(5)),
                         input_shape=(3, 9, 9))


def test_a_baseline_is_a_number_an_image_or_one_per_image(shipped, images):
    base = np.full(images.shape[1:], 0.25)          # exact in float32 too
    one_per_image = np.broadcast_to(base, images.shape).copy()
    expected = A.integrated_gradients(shipped, images, 2, baseline=one_per_image, steps=6)
    for baseline in (base, 0.25, np.float32(0.25)):
        np.testing.assert_allclose(
            A.integrated_gradients(shipped, images, 2, baseline=baseline, steps=6),
            expected, rtol=1e-12, atol=1e-15)
    single = A.integrated_gradients(shipped, images[1], 2, baseline=base, steps=6)
    np.testing.assert_allclose(single, expected[1], rtol=1e-12, atol=1e-15)
    with pytest.raises(TypeError, match="baseline must be None, a number or an array"):
        A.integrated_gradients(shipped, images, 2, baseline=True)


def test_integrated_gradients_are_exact_for_an_affine_network():
    rng = np.random.default_rng(2)
    net = affine_net(rng)
    x, base = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((2, 3, 9, 9))
    change = logits_of(net, x)[:, 1] - logits_of(net, base)[:, 1]
    for method in ("gausslegendre", "riemann_left", "riemann_middle"):
        total = A.integrated_gradients(net, x, 1, baseline=base, steps=3, method=method)
        np.testing.assert_allclose(total.sum(axis=(1, 2, 3)), change, rtol=1e-10)
    # Captum's trapezoid weights sum to (n − 1)/n: even here the sum falls short so
    total = A.integrated_gradients(net, x, 1, baseline=base, steps=4,
                                   method="riemann_trapezoid")
    np.testing.assert_allclose(total.sum(axis=(1, 2, 3)), change * 3 / 4, rtol=1e-10)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid", "riemann_left",
                                    "riemann_right", "riemann_middle"])
def test_the_quadrature_points_lie_in_the_unit_interval(method):
    alphas, weights = path_points(7, method)
    assert len(alphas) == len(weights) == 7
    assert alphas.min() >= 0 and alphas.max() <= 1
    expected = 6 / 7 if method == "riemann_trapezoid" else 1.0
    assert weights.sum() == pytest.approx(expected, rel=1e-14)
    # each rule integrates α ↦ α² as it should: Gauss–Legendre exactly
    if method == "gausslegendre":
        assert (weights * alphas ** 2).sum() == pytest.approx(1 / 3, rel=1e-14)


def test_smoothgrad_with_one_sample_of_zero_noise_is_the_gradient(shipped, images):
    gradient = A.gradient(shipped, images, 2)
    np.testing.assert_array_equal(
        A.smoothgrad(shipped, images, 2, noise=np.zeros((1,) + images.shape)), gradient)
    # three equal gradients averaged (summed before the first layer's transpose): the
    # same up to the rounding of a reordered sum
    np.testing.assert_allclose(A.smoothgrad(shipped, images, 2, samples=3, sigma=0),
                               gradient, rtol=0, atol=1e-14 * np.abs(gradient).max())


def test_smoothgrad_averages_the_gradients_at_the_noisy_images(shipped, images):
    noise = np.random.default_rng(3).normal(0, 0.1, (3,) + images[0].shape)
    expected = np.mean([A.gradient(shipped, images[0] + e, 5) for e in noise], axis=0)
    np.testing.assert_allclose(A.smoothgrad(shipped, images[0], 5, noise=noise), expected,
                               rtol=1e-12, atol=1e-15)


def test_smoothgrad_draws_are_seeded_and_scaled_to_each_image(shipped, images):
    first = A.smoothgrad(shipped, images, 1, samples=4, seed=5)
    np.testing.assert_array_equal(first, A.smoothgrad(shipped, images, 1, samples=4, seed=5))
    assert not np.array_equal(first, A.smoothgrad(shipped, images, 1, samples=4, seed=6))
    rng = np.random.default_rng(5)
    spread = images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3))
    noise = rng.standard_normal((4,) + images.shape) * 0.15 * spread[:, None, None, None]
    np.testing.assert_allclose(first, A.smoothgrad(shipped, images, 1, noise=noise),
                               rtol=1e-12, atol=1e-15)


def test_smoothgrad_batches_give_the_same_map(shipped, images):
    whole = A.smoothgrad(shipped, images, 1, samples=5, seed=2)
    np.testing.assert_allclose(A.smoothgrad(shipped, images, 1, samples=5, seed=2,
                                            batch_size=3), whole, rtol=1e-12, atol=1e-15)


def test_grad_cam_pools_the_gradient_of_the_network_above_its_layer(shipped, images):
    """∂z/∂A by an independent route: the gradient of the layers above A, run on A."""
    layer = A.last_spatial_layer(shipped)
    activation = shipped.forward_outputs(images, [layer])[layer]
    above = nn.Sequential(*shipped.layers[layer + 1:])
    alpha = A.gradient(above, activation, 6).mean(axis=(2, 3))
    expected = np.maximum(np.einsum("nc,nchw->nhw", alpha, activation), 0)
    cam = A.grad_cam(shipped, images, layer, 6)
    np.testing.assert_allclose(cam, expected, rtol=1e-12, atol=1e-15)
    assert cam.min() >= 0 and cam.max() > 0


@pytest.mark.parametrize("make", [alexnet_like, resnet_like])
def test_grad_cam_is_nonnegative_and_guided_grad_cam_is_the_product(make, images):
    net = make()
    layer = A.last_spatial_layer(net)
    cam = A.grad_cam(net, images, layer, [0, 1, 2, 3])
    assert cam.min() >= 0
    guided = A.compute("guided_backprop", net, images, [0, 1, 2, 3])
    factor = images.shape[2] // cam.shape[1]
    if factor * cam.shape[1] == images.shape[2]:       # whole scale: nearest is a repeat
        up = cam.repeat(factor, axis=1).repeat(factor, axis=2)
        np.testing.assert_allclose(A.guided_grad_cam(net, images, layer, [0, 1, 2, 3]),
                                   guided * up[:, None], rtol=1e-12, atol=1e-15)


def test_the_way_back_stops_at_a_layer_of_a_graph_as_of_a_chain(images):
    """A chain written as a Graph gives the same signal at every layer's output."""
    chain = alexnet_like()
    graph = nn.Graph([(name, layer, ("input",) if i == 0 else (chain.names[i - 1],))
                      for i, (name, layer) in enumerate(zip(chain.names, chain.layers))],
                     input_shape=chain.input_shape)
    trace_chain, trace_graph = chain.trace(images), graph.trace(images)
    seed = np.random.default_rng(4).standard_normal(trace_chain.outputs[-1].shape)
    for stop in (2, 7, 12):
        np.testing.assert_allclose(graph.backward(seed, trace_graph, stop=stop),
                                   chain.backward(seed, trace_chain, stop=stop),
                                   rtol=1e-13, atol=1e-15)


def test_the_way_back_to_a_layer_the_start_does_not_read_is_zero(images):
    net = resnet_like()
    trace = net.trace(images)
    start = net.index("b2_down")        # the shortcut reads block 1, not block 2's branch
    signal = np.ones_like(trace.outputs[start])
    assert not net.backward(signal, trace, start=start, stop="b2_relu1").any()
    assert net.backward(signal, trace, start=start, stop="b1_add").any()
    with pytest.raises(ValueError, match="stop must be a layer below start"):
        net.backward(signal, trace, start=start, stop="b2_down")


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("target, error, words", [
    (10, ValueError, r"target must be a class index in \[0, 10\)"),
    (-1, ValueError, r"in \[0, 10\)"),
    (1.0, TypeError, "target must be a class index"),
    ([1, 2], TypeError, r"one int per image \(4\)"),
    ("3", TypeError, "target must be"),
])
def test_a_bad_target_is_refused_before_any_work(shipped, images, target, error, words):
    for name in ("gradient", "integrated_gradients", "smoothgrad"):
        with pytest.raises(error, match=words):
            A.compute(name, shipped, images, target)


def test_bad_arguments_are_refused(shipped, images):
    with pytest.raises(ValueError, match="method must be one of"):
        A.integrated_gradients(shipped, images, 0, method="simpson")
    with pytest.raises(ValueError, match="steps must be"):
        A.integrated_gradients(shipped, images, 0, steps=0)
    with pytest.raises(ValueError, match="baseline must have the images' shape"):
        A.integrated_gradients(shipped, images, 0, baseline=np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match=r"noise must be an array \(S,\) \+ x.shape"):
        A.smoothgrad(shipped, images, 0, noise=np.zeros(images.shape))
    with pytest.raises(ValueError, match="sigma must be"):
        A.smoothgrad(shipped, images, 0, sigma=-1)
    with pytest.raises(ValueError, match="Grad-CAM needs a layer with feature maps"):
        A.grad_cam(shipped, images, "8", 0)            # the flatten: (N, 1568)
    with pytest.raises(ValueError, match="layer must come before the logits"):
        A.grad_cam(shipped, images, -1, 0)
    with pytest.raises(ValueError, match="method must be one of"):
        A.compute("saliency", shipped, images, 0)
    with pytest.raises(TypeError, match="net must be a minideconv network"):
        A.gradient(object(), images, 0)


def test_a_network_without_class_logits_is_refused(images):
    rng = np.random.default_rng(0)
    fully_convolutional = nn.Sequential(nn.Conv2d(rng.standard_normal((2, 3, 3, 3))),
                                        nn.ReLU(), input_shape=(3, 32, 32))
    with pytest.raises(ValueError, match=r"must be \(N, classes\)"):
        A.gradient(fully_convolutional, images, 0)
