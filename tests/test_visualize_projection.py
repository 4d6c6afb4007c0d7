"""minideconv.visualize: the three projection rules, top-k patches, occlusion maps."""

from __future__ import annotations

import numpy as np
import pytest

from minideconv.visualize import (TopPatches, channel_maxima, occlusion_map, project,
                                  strongest, top_k_patches, window_patch)

from support.networks import small_net


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def activation_at(net, x, layer, channel, position):
    out = net.trace(x[None], upto=layer).outputs[layer][0, channel]
    return out if position is None else out[position]


def numerical_gradient(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = eps
        grad[idx] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


# --------------------------------------------------------------------------- rules

@pytest.mark.parametrize("layer, channel, position", [
    (0, 2, (4, 4)),      # a convolution's output (before its ReLU)
    (2, 1, (2, 3)),      # after an overlapping max-pool
    (4, 2, "max"),       # deeper, after the second ReLU: its strongest unit
    (6, 5, None),        # a class score of the linear layer
])
def test_backprop_rule_is_activation_times_gradient(rng, layer, channel, position):
    """rule='backprop' returns a · ∂a/∂x, checked by central finite differences (float64)."""
    net = small_net(rng, biases=0.1)
    x = rng.standard_normal((3, 9, 9))
    if position == "max":
        activation = net.trace(x[None], upto=layer).outputs[layer]
        position = tuple(int(v) for v in strongest(activation, channel)[0][0])
    a = activation_at(net, x, layer, channel, position)
    assert abs(a) > 1e-3
    gradient = numerical_gradient(lambda z: activation_at(net, z, layer, channel, position),
                                  x)
    result = project(net, x, layer, channel, position, rule="backprop")
    assert result.shape == x.shape
    assert np.allclose(result, a * gradient, atol=1e-7, rtol=1e-5)
    assert np.abs(result).max() > 1e-3


def test_backprop_on_the_shipped_model_matches_directional_derivatives(rng):
    """Same check on the trained network (float64 copy), along random directions v:
    ⟨project, v⟩ = a · (a(x + εv) − a(x − εv)) / 2ε."""
    from minideconv.data import load_dataset, load_model
    net = load_model().astype(np.float64)
    x = load_dataset("test", n=1)[0][0].astype(np.float64)
    for layer, channel in [(4, 3), (7, 10)]:
        positions, values = strongest(net.trace(x[None], upto=layer).outputs[layer], channel)
        position, a = tuple(positions[0]), values[0]
        result = project(net, x, layer, channel, position, rule="backprop")
        for _ in range(3):
            v = rng.standard_normal(x.shape)
            eps = 1e-5
            slope = (activation_at(net, x + eps * v, layer, channel, position)
                     - activation_at(net, x - eps * v, layer, channel, position)) / (2 * eps)
            assert np.sum(result * v) == pytest.approx(a * slope, rel=1e-5, abs=1e-8)


def test_guided_equals_deconvnet_where_every_relu_input_is_positive(rng):
    """A large positive bias keeps every ReLU input > 0: the mask [x > 0] is all ones."""
    net = small_net(rng, biases=20.0)
    net.layers[3].bias[:] = 1000.0
    x = rng.uniform(-1, 1, (2, 3, 9, 9))
    trace = net.trace(x)
    assert all((trace.outputs[i - 1] > 0).all() for i in (1, 4))    # ReLU inputs
    guided = project(net, x, 4, 2, rule="guided")
    assert np.array_equal(guided, project(net, x, 4, 2, rule="deconvnet"))
    # …but not backprop: the signals going down have both signs
    assert not np.allclose(guided, project(net, x, 4, 2, rule="backprop"))


def test_guided_equals_backprop_where_every_signal_is_positive(rng):
    """With weights ≥ 0, the signal from a positive activation stays ≥ 0 on its way down,
    so max(r, 0) = r and the guided rule is the backprop rule."""
    net = small_net(rng, biases=-0.6, weight_sign=1)
    x = rng.uniform(-1, 1, (2, 3, 9, 9))
    trace = net.trace(x)
    assert (trace.outputs[0] <= 0).any()           # some ReLU inputs are negative
    guided = project(net, x, 4, 2, rule="guided")
    assert np.abs(guided).max() > 0
    assert np.array_equal(guided, project(net, x, 4, 2, rule="backprop"))
    # …but not the deconvnet, which ignores the forward mask
    assert not np.allclose(guided, project(net, x, 4, 2, rule="deconvnet"))


def test_project_is_linear_in_the_chosen_activation(rng):
    """Scale convention: the projection is proportional to the activation's value —
    scaling the input scales the deconvnet projection (bias-free net) by c²."""
    net = small_net(rng, biases=0.0)
    x = rng.standard_normal((3, 9, 9))
    p1 = project(net, x, 4, 1, (1, 1))
    p2 = project(net, 2 * x, 4, 1, (1, 1))
    assert np.allclose(p2, 4 * p1)


def test_project_shapes_and_batches(rng):
    net = small_net(rng, biases=0.1)
    x = rng.standard_normal((4, 3, 9, 9))
    batch = project(net, x, 2, 1)
    assert batch.shape == x.shape
    for n in range(4):   # each image gets its own maximum
        assert np.allclose(batch[n], project(net, x[n], 2, 1))
    assert project(net, x[0], -1, 0).shape == (3, 9, 9)   # negative index = last layer


def test_projection_lives_in_the_receptive_field(rng):
    """Every pixel outside the unit's receptive field gets exactly zero."""
    net = small_net(rng, biases=0.1)
    x = rng.standard_normal((3, 9, 9))
    for layer, position in [(2, (0, 0)), (2, (3, 2)), (4, (2, 1))]:
        p = project(net, x, layer, 0, position, rule="backprop")
        r0, r1, c0, c1 = net.receptive_field(layer).window(position)
        outside = p.copy()
        outside[:, max(r0, 0):r1, max(c0, 0):c1] = 0
        assert not outside.any()


# --------------------------------------------------------------------------- top-k

def test_one_seed_and_one_strongest_unit(rng):
    """``seed`` keeps one activation per image (per-image positions, or one (h, w) for
    all) and zeroes the rest; ``strongest_unit`` is image 0's first maximum over every
    channel — the lowest such channel, then ``strongest``'s position in it."""
    from minideconv.visualize import seed, strongest_unit
    a = rng.standard_normal((3, 4, 5, 6))
    positions = np.array([[0, 1], [4, 5], [2, 2]])
    signal = seed(a, 2, positions)
    for n, (h, w) in enumerate(positions):
        assert signal[n, 2, h, w] == a[n, 2, h, w]
        assert np.count_nonzero(signal[n]) == 1
    np.testing.assert_array_equal(seed(a, 1, (3, 4)), seed(a, 1, np.tile([3, 4], (3, 1))))
    flat = rng.standard_normal((2, 7))
    np.testing.assert_array_equal(seed(flat, 3, None), np.where(np.arange(7) == 3, flat, 0))

    a[0, 1, 2, 3] = a[0, 3, 0, 0] = a.max() + 1          # a tie: channel 1 comes first
    channel, h, w = strongest_unit(a)
    assert (channel, h, w) == (1, 2, 3)
    assert channel == int(a[0].reshape(4, -1).max(axis=1).argmax())
    assert (h, w) == tuple(int(v) for v in strongest(a, channel)[0][0])
    assert strongest_unit(flat) == (int(flat[0].argmax()),)


def test_top_k_patches(rng):
    net = small_net(rng, biases=0.1)
    images = rng.standard_normal((12, 3, 9, 9))
    top = top_k_patches(net, images, 2, 3, k=5)
    assert isinstance(top, TopPatches)
    field = net.receptive_field(2)
    assert top.patches.shape == top.projections.shape == (5, 3) + field.size
    assert np.all(np.diff(top.values) <= 0) and len(set(top.indices.tolist())) == 5
    maxima = net.trace(images, upto=2).outputs[2][:, 3].max(axis=(1, 2))
    assert np.allclose(top.values, np.sort(maxima)[::-1][:5])
    for i in range(5):
        image = images[top.indices[i]]
        assert np.array_equal(top.patches[i], window_patch(image, top.windows[i]))
        full = project(net, image, 2, 3, tuple(top.positions[i]))
        assert np.allclose(top.projections[i], window_patch(full, top.windows[i]))
        assert np.allclose(np.abs(top.projections[i]).sum(), np.abs(full).sum())


def test_top_k_after_flatten_uses_whole_images(rng):
    net = small_net(rng, biases=0.1)
    images = rng.standard_normal((4, 3, 9, 9))
    top = top_k_patches(net, images, 6, 0, k=2)
    assert top.patches.shape == (2, 3, 9, 9)
    assert np.array_equal(top.patches, images[top.indices])


def test_channel_maxima_of_several_layers_in_one_pass(rng):
    """Every feature's per-image maximum, position and value, against a brute-force scan
    of the whole activation — for a conv layer, a pool layer and a (N, F) layer, over
    batches smaller than the image count."""
    net = small_net(rng, biases=0.1)
    images = rng.standard_normal((7, 3, 9, 9))
    found = channel_maxima(net, images, [4, 2, 6], batch_size=3)
    assert sorted(found) == [2, 4, 6]
    outputs = net.trace(images).outputs
    for layer in (2, 4):
        positions, values = found[layer]
        activation = outputs[layer]
        assert positions.shape == activation.shape[:2] + (2,)
        for n in range(len(images)):
            for c in range(activation.shape[1]):
                plane = activation[n, c]
                h, w = np.unravel_index(np.argmax(plane), plane.shape)
                assert (positions[n, c] == (h, w)).all() and values[n, c] == plane[h, w]
    # after Flatten: the outputs themselves (batches of 3 may round the GEMM differently)
    np.testing.assert_allclose(found[6][1], outputs[6], rtol=1e-12, atol=1e-12)
    assert not found[6][0].any()


def test_top_k_patches_with_precomputed_maxima_is_the_same(rng):
    net = small_net(rng, biases=0.1)
    images = rng.standard_normal((12, 3, 9, 9))
    maxima = channel_maxima(net, images, [2])[2]
    for channel in range(4):
        plain = top_k_patches(net, images, 2, channel, k=5)
        shared = top_k_patches(net, images, 2, channel, k=5, maxima=maxima)
        for field in ("values", "indices", "positions", "windows", "patches", "projections"):
            assert np.array_equal(getattr(plain, field), getattr(shared, field)), field
    with pytest.raises(ValueError, match="maxima must be channel_maxima"):
        top_k_patches(net, images[:6], 2, 0, k=5, maxima=maxima)
    with pytest.raises(ValueError, match="channel must be in"):
        top_k_patches(net, images, 2, 4, k=5, maxima=maxima)


def test_crop_pads_outside_the_image():
    image = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4) + 1
    patch = window_patch(image, (-1, 2, 2, 6))
    assert patch.shape == (2, 3, 4)
    assert not patch[:, 0].any() and not patch[:, :, 2:].any()
    assert np.array_equal(patch[:, 1:, :2], image[:, :2, 2:])


# --------------------------------------------------------------------------- occlusion

def test_occlusion_map(rng):
    net = small_net(rng, biases=0.1)
    x = rng.standard_normal((3, 9, 9))
    scores = occlusion_map(net, x, 2, patch=3, stride=2)
    assert scores.shape == (5, 5)
    assert np.all((scores >= 0) & (scores <= 1))
    # compare one cell with the occluded image computed by hand
    occluded = x.copy()
    occluded[:, 2:5, 4:7] = x.mean(axis=(1, 2))[:, None, None]   # cell (1, 2): rows 2·1 + 0…
    logits = net(occluded[None])[0]
    assert scores[1, 2] == pytest.approx(np.exp(logits[2]) / np.exp(logits).sum())
    # a square of the image's own constant value changes nothing
    flat = np.full((3, 9, 9), 0.3)
    logits = net(flat[None])[0]
    assert np.allclose(occlusion_map(net, flat, 1, patch=4, stride=3, fill=0.3,
                                     output="logit"), logits[1])
    # a feature map's total activation as the target
    feature = occlusion_map(net, x, (4, 1), patch=3, stride=3)
    assert feature.shape == (3, 3) and (feature >= 0).all()


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs, error, message", [
    (dict(layer=7), ValueError, r"layer must be an index in \[-7, 7\)"),
    (dict(layer=-8), ValueError, "layer must be an index in"),
    (dict(layer=1.0), TypeError, "layer must be an index in"),
    (dict(channel=4), ValueError, r"channel must be in \[0, 4\).*layer 1 \(ReLU\)"),
    (dict(channel="1"), TypeError, "channel must be an int"),
    (dict(position=(9, 0)), ValueError, "position must lie in the 9x9 feature map"),
    (dict(position=(1,)), TypeError, "position must be None or a pair"),
    (dict(layer=6, channel=0, position=(0, 0)), ValueError, "position must be None"),
    (dict(rule="saliency"), ValueError, "rule must be one of"),
])
def test_project_errors(rng, kwargs, error, message):
    net = small_net(rng, biases=0.0)
    args = dict(layer=1, channel=0, position=None, rule="deconvnet") | kwargs
    with pytest.raises(error, match=message):
        project(net, rng.standard_normal((3, 9, 9)), **args)


def test_input_errors(rng, tmp_path):
    net = small_net(rng, biases=0.0)
    with pytest.raises(FileNotFoundError, match="image file not found"):
        project(net, str(tmp_path / "missing.png"), 1, 0)
    with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
        project(net, np.zeros((3, 9, 9), np.int64), 1, 0)
    with pytest.raises(ValueError, match="x must be an image"):
        project(net, np.zeros((9, 9)), 1, 0)
    with pytest.raises(ValueError, match=r"k must be in \[1, 3\]"):
        top_k_patches(net, np.zeros((3, 3, 9, 9)), 1, 0, k=4)
    with pytest.raises(ValueError, match="patch must be in"):
        occlusion_map(net, np.zeros((3, 9, 9)), 0, patch=10)
    with pytest.raises(ValueError, match=r"target must be in \[0, 6\) \(a class index\)"):
        occlusion_map(net, np.zeros((3, 9, 9)), 6)
    with pytest.raises(TypeError, match="net must be a minideconv.nn.Sequential"):
        project(lambda x: x, np.zeros((3, 9, 9)), 0, 0)
