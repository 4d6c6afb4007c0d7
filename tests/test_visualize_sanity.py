"""minideconv.visualize.sanity: model randomization and the switch swap, against independent
computations — a tiny network written out by hand in NumPy loops (forward, switches,
the three ReLU rules, the transposed convolutions), the documented law of the redrawn
weights, SciPy's rank correlation on the receptive field, and ``visualize.project``."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr

from minideconv import nn
from minideconv.visualize import sanity
from minideconv.visualize import project, strongest

RULES = ("deconvnet", "guided", "backprop")


# --------------------------------------------------------------------------- a tiny network

def tiny_net(seed=3, dead_channel=False):
    """conv 3×3 (1 → 2) → ReLU → pool 2×2/2 → conv 2×2 (2 → 3) → ReLU on 1×8×8, float64.
    ``dead_channel``: channel 2 of the top layer has a bias so negative that it is off."""
    rng = np.random.default_rng(seed)
    b2 = rng.standard_normal(3) * 0.1
    if dead_channel:
        b2[2] = -1e6
    return nn.Sequential(
        nn.Conv2d(rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2) * 0.1),
        nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(rng.standard_normal((3, 2, 2, 2)), b2), nn.ReLU(),
        input_shape=(1, 8, 8))


def conv_by_hand(x, w, b):
    """Cross-correlation, stride 1, no padding, one image (C, H, W)."""
    k = w.shape[2]
    out = np.zeros((w.shape[0], x.shape[1] - k + 1, x.shape[2] - k + 1))
    for o, i, j in np.ndindex(out.shape):
        out[o, i, j] = np.sum(w[o] * x[:, i:i + k, j:j + k]) + b[o]
    return out


def conv_transpose_by_hand(r, w, in_hw):
    """The transpose of ``conv_by_hand``: every output value spreads back over its window."""
    k = w.shape[2]
    x = np.zeros((w.shape[1],) + tuple(in_hw))
    for o, i, j in np.ndindex(r.shape):
        x[:, i:i + k, j:j + k] += w[o] * r[o, i, j]
    return x


def pool_by_hand(x):
    """2×2/2 max-pool with the (row, col) of each window's first maximum."""
    c, h, w = x.shape
    out = np.zeros((c, h // 2, w // 2))
    where = np.zeros((c, h // 2, w // 2, 2), int)
    for ch, i, j in np.ndindex(out.shape):
        window = x[ch, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
        a, b = np.unravel_index(np.argmax(window), window.shape)
        out[ch, i, j], where[ch, i, j] = window[a, b], (2 * i + a, 2 * j + b)
    return out, where


def unpool_by_hand(r, where, in_hw):
    x = np.zeros((r.shape[0],) + tuple(in_hw))
    for ch, i, j in np.ndindex(r.shape):
        x[ch, where[ch, i, j, 0], where[ch, i, j, 1]] += r[ch, i, j]
    return x


def relu_rule_by_hand(g, x, rule):
    return {"backprop": g * (x > 0), "deconvnet": np.maximum(g, 0),
            "guided": np.maximum(g, 0) * (x > 0)}[rule]


def forward_by_hand(w1, b1, w2, b2, image):
    z1 = conv_by_hand(image, w1, b1)
    p1, where = pool_by_hand(np.maximum(z1, 0))
    z2 = conv_by_hand(p1, w2, b2)
    return dict(z1=z1, where=where, p1=p1, z2=z2, a2=np.maximum(z2, 0))


def backward_by_hand(w1, w2, forward, channel, position, rule, value):
    r = np.zeros_like(forward["a2"])
    r[(channel,) + tuple(position)] = value
    r = relu_rule_by_hand(r, forward["z2"], rule)
    r = conv_transpose_by_hand(r, w2, forward["p1"].shape[1:])
    r = unpool_by_hand(r, forward["where"], forward["z1"].shape[1:])
    r = relu_rule_by_hand(r, forward["z1"], rule)
    return conv_transpose_by_hand(r, w1, (8, 8))


def redrawn(net, seed, indices):
    """{index: (weight, bias)}: the module docstring's law written out — weight, then bias,
    from default_rng((RNG_TAG, seed, index)), i.i.d. normal with the trained array's std."""
    out = {}
    for i in indices:
        rng = np.random.default_rng((sanity.RNG_TAG, seed, i))
        layer = net.layers[i]
        w = layer.weight.std() * rng.standard_normal(layer.weight.shape)
        b = layer.bias.std() * rng.standard_normal(layer.bias.shape)
        out[i] = (w, b)
    return out


@pytest.fixture
def image():
    return np.random.default_rng(11).standard_normal((1, 8, 8))


def top_unit(net, image, channel=0):
    positions, _ = strongest(net.trace(image[None]).outputs[4], channel)
    return tuple(int(v) for v in positions[0])


# --------------------------------------------------------------------------- exactness

@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("mode", sanity.MODES)
@pytest.mark.parametrize("where", sanity.WHERE)
def test_step_zero_is_the_trained_projection_exactly(rule, mode, where, image):
    net = tiny_net()
    result = sanity.randomization_test(net, image, 4, 1, rule=rule, mode=mode, where=where)
    assert result.steps[0] == "trained" and result.randomized[0] == ()
    np.testing.assert_array_equal(result.maps[0], project(net, image, 4, 1, rule=rule))
    own = sanity.similarity(result.maps[0], result.maps[0], result.window)
    for name in ("spearman", "spearman_abs", "ssim"):
        assert getattr(result, name)[0] == 1 == pytest.approx(getattr(own, name), abs=1e-12)


@pytest.mark.parametrize("rule", RULES)
def test_switch_swap_with_itself_is_project_exactly(rule, image):
    net = tiny_net()
    other = image.copy()  # equal, but not the same object
    for position in (None, (1, 0)):
        expected = project(net, image, 4, 2, position=position, rule=rule)
        np.testing.assert_array_equal(sanity.switch_swap(net, image, image, 4, 2, rule,
                                                         position), expected)
        np.testing.assert_array_equal(sanity.switch_swap(net, image, other, 4, 2, rule,
                                                         position), expected)


def test_on_the_shipped_network_step_zero_and_the_swap_are_project():
    from minideconv.data import load_dataset, load_model
    net = load_model()
    images, _ = load_dataset("test", n=2)
    result = sanity.randomization_test(net, images[0], 7, 5, rule="guided")
    expected = project(net, images[0], 7, 5, rule="guided")
    np.testing.assert_array_equal(result.maps[0], expected)
    np.testing.assert_array_equal(
        sanity.switch_swap(net, images[0], images[0], 7, 5, "guided"), expected)
    assert result.steps == ("trained", "layer 6 (Conv2d)", "layer 3 (Conv2d)",
                            "layer 0 (Conv2d)")
    field = net.receptive_field(7).window(result.position)
    assert result.window == (max(field[0], 0), min(field[1], 32), max(field[2], 0),
                             min(field[3], 32))


# --------------------------------------------------------------------------- by hand

@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("mode", sanity.MODES)
def test_backward_randomization_is_the_trained_trace_with_redrawn_transposes(rule, mode,
                                                                             image):
    """where="backward": the forward pass (switches, masks, the activation's value) is the
    trained one, computed by hand; only the matrices of the way back are the redrawn ones."""
    net = tiny_net()
    seed, channel = 5, 1
    w1, b1, w2, b2 = (net.layers[0].weight, net.layers[0].bias, net.layers[3].weight,
                      net.layers[3].bias)
    forward = forward_by_hand(w1, b1, w2, b2, image[0][None])
    position = top_unit(net, image, channel)
    value = forward["a2"][(channel,) + position]
    assert value > 0
    result = sanity.randomization_test(net, image, 4, channel, rule=rule, mode=mode,
                                       where="backward", seed=seed)
    draws = redrawn(net, seed, (3, 0))
    if mode == "cascade":
        weights = [(w1, w2), (w1, draws[3][0]), (draws[0][0], draws[3][0])]
        assert result.randomized == ((), (3,), (3, 0))
    else:
        weights = [(w1, w2), (w1, draws[3][0]), (draws[0][0], w2)]
        assert result.randomized == ((), (3,), (0,))
    assert result.position == position
    np.testing.assert_allclose(result.activations, value, rtol=1e-14)
    for k, (v1, v2) in enumerate(weights):
        expected = backward_by_hand(v1, v2, forward, channel, position, rule, value)
        np.testing.assert_allclose(result.maps[k], expected, rtol=1e-12,
                                   atol=1e-12, err_msg=f"step {k}")


@pytest.mark.parametrize("rule", RULES)
def test_network_randomization_reruns_the_forward_pass_with_the_redrawn_weights(rule,
                                                                                image):
    """where="network": the forward pass by hand with the redrawn weights and biases (new
    switches, masks and activation), then the way back through the same weights."""
    net = tiny_net()
    seed, channel = 2, 0
    position = top_unit(net, image, channel)
    result = sanity.randomization_test(net, image, 4, channel, rule=rule, where="network",
                                       seed=seed)
    draws = redrawn(net, seed, (3, 0))
    trained = (net.layers[0].weight, net.layers[0].bias)
    for k, (first, second) in enumerate([(trained, (net.layers[3].weight,
                                                    net.layers[3].bias)),
                                         (trained, draws[3]), (draws[0], draws[3])]):
        forward = forward_by_hand(*first, *second, image[0][None])
        value = forward["a2"][(channel,) + position]
        assert result.activations[k] == pytest.approx(value, rel=1e-12, abs=1e-12)
        expected = backward_by_hand(first[0], second[0], forward, channel, position, rule,
                                    value)
        np.testing.assert_allclose(result.maps[k], expected, rtol=1e-12, atol=1e-12)


def test_network_randomization_with_backprop_is_the_random_networks_gradient(image):
    """With rule="backprop" and where="network", each step is a · ∂a/∂x of the randomized
    network (torch autograd with the documented weights)."""
    torch = pytest.importorskip("torch")
    net = tiny_net()
    result = sanity.randomization_test(net, image, 4, 0, rule="backprop", where="network",
                                       seed=9)
    draws = redrawn(net, 9, (3, 0))
    for k, chosen in enumerate(result.randomized):
        params = {i: draws[i] if i in chosen else (net.layers[i].weight, net.layers[i].bias)
                  for i in (0, 3)}
        x = torch.tensor(image[None], requires_grad=True)
        t = {i: [torch.tensor(a) for a in params[i]] for i in params}
        y = torch.relu(torch.nn.functional.conv2d(x, *t[0]))
        y = torch.nn.functional.max_pool2d(y, 2)
        y = torch.relu(torch.nn.functional.conv2d(y, *t[3]))
        a = y[(0, 0) + result.position]
        a.backward()
        expected = (a.detach() * x.grad)[0].numpy()
        np.testing.assert_allclose(result.maps[k], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rule", RULES)
def test_switch_swap_uses_the_other_images_switches_and_masks(rule, image):
    net = tiny_net()
    other = np.random.default_rng(12).standard_normal((1, 8, 8))
    w1, b1, w2, b2 = (net.layers[0].weight, net.layers[0].bias, net.layers[3].weight,
                      net.layers[3].bias)
    own = forward_by_hand(w1, b1, w2, b2, image)
    theirs = forward_by_hand(w1, b1, w2, b2, other)
    position = top_unit(net, image, 1)
    value = own["a2"][(1,) + position]
    expected = backward_by_hand(w1, w2, theirs, 1, position, rule, value)
    swapped = sanity.switch_swap(net, image, other, 4, 1, rule)
    np.testing.assert_allclose(swapped, expected, rtol=1e-12, atol=1e-12)
    assert not np.allclose(swapped, project(net, image, 4, 1, rule=rule))
    # the docstring's claim: the other image's own projection of that unit, rescaled
    theirs_value = theirs["a2"][(1,) + position]
    if theirs_value > 0:
        np.testing.assert_allclose(
            swapped, project(net, other, 4, 1, position, rule) * value / theirs_value,
            rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- weights

def test_randomize_draws_as_documented_and_leaves_the_rest():
    net = tiny_net()
    before = {i: (layer.weight.copy(), layer.bias.copy()) for i, layer in
              enumerate(net.layers) if layer.params()}
    copy = sanity.randomize(net, [3], seed=4)
    (w, b), = redrawn(net, 4, (3,)).values()
    np.testing.assert_array_equal(copy.layers[3].weight, w)
    np.testing.assert_array_equal(copy.layers[3].bias, b)
    assert copy.layers[0] is net.layers[0] and copy.layers[1] is net.layers[1]
    for i, (weight, bias) in before.items():  # the trained network is untouched
        np.testing.assert_array_equal(net.layers[i].weight, weight)
        np.testing.assert_array_equal(net.layers[i].bias, bias)
    assert sanity.weight_layers(net) == (3, 0) and sanity.weight_layers(net, 2) == (0,)


def test_randomize_keeps_each_layers_scale_shape_and_dtype():
    from minideconv import train
    from minideconv.data import load_model
    net = load_model()
    copy = sanity.randomize(net, sanity.weight_layers(net), seed=0)
    for i in sanity.weight_layers(net):
        old, new = net.layers[i], copy.layers[i]
        assert new.weight.shape == old.weight.shape and new.weight.dtype == old.weight.dtype
        assert new.config() == old.config()
        assert abs(new.weight.std() / old.weight.std() - 1) < 0.1
        assert abs(new.weight.mean()) < 0.1 * old.weight.std()
        # not the training's initial draw (default_rng((0, 0)) is default_rng(0))
        assert abs(np.corrcoef(new.weight.ravel(), old.weight.ravel())[0, 1]) < 0.1
    # ... which the trained first layer still correlates with (Pearson's r), as the
    # module docstring says, to half its last quoted digit
    quoted = re.search(r"whose trained weights\s+still correlate (\d+\.\d+) with it",
                       sanity.__doc__)
    assert quoted, "the module docstring does not quote the correlation"
    initial = train.build_model(seed=0).layers[0].weight
    measured = np.corrcoef(net.layers[0].weight.ravel(), initial.ravel())[0, 1]
    half_a_digit = 0.5 * 10.0 ** -len(quoted.group(1).split(".")[1])
    assert abs(measured - float(quoted.group(1))) <= half_a_digit, (measured, quoted.group(1))
    np.testing.assert_array_equal(np.random.default_rng((0, 0)).standard_normal(8),
                                  np.random.default_rng(0).standard_normal(8))


def test_the_same_seed_gives_the_same_numbers_and_another_seed_others(image):
    net = tiny_net()
    first = sanity.randomization_test(net, image, 4, 1, where="network", seed=1)
    again = sanity.randomization_test(net, image, 4, 1, where="network", seed=1)
    other = sanity.randomization_test(net, image, 4, 1, where="network", seed=2)
    for name in ("maps", "activations", "spearman", "spearman_abs", "ssim"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.allclose(first.maps[1:], other.maps[1:])
    assert not np.allclose(first.spearman[1:], other.spearman[1:])


def test_a_layer_gets_the_same_draw_in_the_cascade_and_alone(image):
    net = tiny_net()
    cascade = sanity.randomization_test(net, image, 4, 1, mode="cascade", seed=6)
    alone = sanity.randomization_test(net, image, 4, 1, mode="independent", seed=6)
    np.testing.assert_array_equal(cascade.maps[1], alone.maps[1])  # the top layer, alone
    assert alone.steps == ("trained", "layer 3 (Conv2d)", "layer 0 (Conv2d)")


def test_results_are_frozen_and_read_only(image):
    result = sanity.randomization_test(tiny_net(), image, 4, 1)
    with pytest.raises(Exception):
        result.spearman = None
    with pytest.raises(ValueError):
        result.maps[0, 0, 0, 0] = 1.0


# --------------------------------------------------------------------------- similarity

def test_a_zero_map_has_similarity_zero_not_nan(image):
    reference = np.random.default_rng(0).standard_normal((3, 9, 9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for a, b in ((reference, np.zeros_like(reference)),
                     (np.zeros_like(reference), reference),
                     (np.zeros_like(reference), np.zeros_like(reference))):
            assert sanity.similarity(a, b) == sanity.Similarity(0.0, 0.0, 0.0)
        # a unit that is off: the trained map itself is zero
        net = tiny_net(dead_channel=True)
        result = sanity.randomization_test(net, image, 4, 2, where="network")
    assert not np.any(result.maps[0])
    for name in ("spearman", "spearman_abs", "ssim"):
        np.testing.assert_array_equal(getattr(result, name), 0.0)


def test_similarity_is_computed_inside_the_receptive_field_only(image):
    """A map that differs from the trained one only outside the window scores 1."""
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((3, 12, 12))
    window = (2, 9, 3, 11)
    changed = reference.copy()
    changed[:, :2] = rng.standard_normal((3, 2, 12))
    changed[:, :, 11:] = 0.0
    inside = sanity.similarity(reference, changed, window)
    assert (inside.spearman, inside.spearman_abs, inside.ssim) == pytest.approx((1, 1, 1),
                                                                                abs=1e-12)
    whole = sanity.similarity(reference, changed)
    assert whole.spearman < 1 and whole.ssim < 1
    # a window past the border is clipped to the map
    assert sanity.similarity(reference, changed, (-5, 9, 3, 40)) == \
        sanity.similarity(reference, changed, (0, 9, 3, 12))


def test_the_reported_numbers_are_scipys_rank_correlation_on_the_window():
    from minideconv.data import load_dataset, load_model
    net = load_model()
    images, _ = load_dataset("test", n=3)
    result = sanity.randomization_test(net, images[2], 7, 9, rule="deconvnet")
    r0, r1, c0, c1 = result.window
    assert (r1 - r0, c1 - c0) != (32, 32)
    crop = result.maps[:, :, r0:r1, c0:c1].reshape(len(result.steps), -1)
    for k in range(len(result.steps)):
        assert result.spearman[k] == pytest.approx(spearmanr(crop[0], crop[k]).statistic)
        assert result.spearman_abs[k] == pytest.approx(
            spearmanr(np.abs(crop[0]), np.abs(crop[k])).statistic)
    assert np.all(result.spearman[1:] < 0.99)
    # SSIM as documented: scikit-image on the crops, each scaled to max |v| = 1
    from skimage.metrics import structural_similarity
    tiles = result.maps[:, :, r0:r1, c0:c1].astype(np.float64)
    for k in range(1, len(result.steps)):
        expected = structural_similarity(tiles[0] / np.abs(tiles[0]).max(),
                                         tiles[k] / np.abs(tiles[k]).max(),
                                         data_range=2.0, channel_axis=0, win_size=7)
        assert result.ssim[k] == pytest.approx(expected)


def test_ranks_share_ties_as_scipy_does():
    from scipy.stats import rankdata
    rng = np.random.default_rng(4)
    for values in (rng.standard_normal(50), rng.integers(0, 5, 60).astype(float),
                   np.r_[np.zeros(30), rng.standard_normal(20)], np.ones(7)):
        np.testing.assert_array_equal(sanity.ranks(values), rankdata(values) - 1)


def test_ssim_ignores_the_scale_of_a_map():
    reference = np.random.default_rng(2).standard_normal((3, 9, 9))
    assert sanity.similarity(reference, 1e-3 * reference).ssim == pytest.approx(1.0)
    unrelated = np.random.default_rng(3).standard_normal((3, 9, 9))
    assert abs(sanity.similarity(reference, unrelated).ssim) < 0.2


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs, error, words", [
    (dict(layer=1.5), TypeError, "layer"),
    (dict(layer=9), ValueError, "layer"),
    (dict(channel=3), ValueError, "channel"),
    (dict(channel="0"), TypeError, "channel"),
    (dict(mode="cumulative"), ValueError, "mode"),
    (dict(where="forward"), ValueError, "where"),
    (dict(rule="smoothgrad"), ValueError, "rule"),
    (dict(position=(5, 0)), ValueError, "position"),
    (dict(position=(0,)), TypeError, "position"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.0), TypeError, "seed"),
    (dict(image=np.zeros((1, 1, 8, 8))), ValueError, "image"),
    (dict(image=np.zeros((1, 9, 8))), ValueError, "image"),
    (dict(image=np.zeros((1, 8, 8), np.float32)), TypeError, "image"),
    (dict(image=np.zeros((1, 8, 8), int)), TypeError, "image"),
])
def test_randomization_test_names_the_bad_argument(kwargs, error, words, image):
    arguments = dict(net=tiny_net(), image=image, layer=4, channel=0)
    arguments.update(kwargs)
    with pytest.raises(error, match=words):
        sanity.randomization_test(**arguments)


def test_other_argument_errors(image):
    net = tiny_net()
    with pytest.raises(TypeError, match="net"):
        sanity.randomization_test("net", image, 4, 0)
    with pytest.raises(ValueError, match="other"):
        sanity.switch_swap(nn.Sequential(*net.layers), image, np.zeros((1, 9, 9)), 4, 0)
    with pytest.raises(ValueError, match="rule"):
        sanity.switch_swap(net, image, image, 4, 0, rule="gradient")
    with pytest.raises(ValueError, match="channel"):
        sanity.switch_swap(net, image, image, 4, 7)
    no_weights = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), *net.layers[3:])
    with pytest.raises(ValueError, match="layer"):
        sanity.randomization_test(no_weights, np.ones((2, 8, 8)), 1, 0)
    with pytest.raises(ValueError, match="layers"):
        sanity.randomize(net, [1])
    with pytest.raises(ValueError, match="other"):
        sanity.similarity(np.zeros((1, 3, 3)), np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match="window"):
        sanity.similarity(np.ones((1, 3, 3)), np.ones((1, 3, 3)), (5, 8, 0, 3))


# --------------------------------------------------------------------------- figures

def test_the_figures_draw_every_step(image):
    from minideconv import plots
    plots.setup()
    net = tiny_net()
    results = {rule: sanity.randomization_test(net, image, 4, 1, rule=rule) for rule in RULES}
    fig = plots.randomization_figure(results, image)
    assert len(fig.axes) >= 3 * (1 + len(results["deconvnet"].steps))
    plots.pyplot().close(fig)
    other = np.random.default_rng(12).standard_normal((1, 8, 8))
    swaps = {rule: (project(net, image, 4, 1, rule=rule),
                    sanity.switch_swap(net, image, other, 4, 1, rule)) for rule in RULES}
    fig = plots.switch_swap_figure(image, other, swaps, results["deconvnet"].window)
    plots.pyplot().close(fig)


# --------------------------------------------------------------------------- the mechanism

@pytest.mark.parametrize("rule", RULES)
def test_pasted_filters_against_the_network_by_hand(rule, image):
    """r₀ is what the hand-written way back brings to the first layer's output, z its
    forward output, W₀ᵀ r₀ the projection, and the agreement a loop over the units."""
    net = tiny_net()
    w1, b1, w2, b2 = (net.layers[0].weight, net.layers[0].bias, net.layers[3].weight,
                      net.layers[3].bias)
    forward = forward_by_hand(w1, b1, w2, b2, image)
    position = top_unit(net, image, 1)
    value = forward["a2"][(1,) + position]
    r = np.zeros_like(forward["a2"])
    r[(1,) + position] = value
    r = relu_rule_by_hand(r, forward["z2"], rule)
    r = conv_transpose_by_hand(r, w2, forward["p1"].shape[1:])
    r = unpool_by_hand(r, forward["where"], forward["z1"].shape[1:])
    r0 = relu_rule_by_hand(r, forward["z1"], rule)
    found = sanity.pasted_filters(net, image, 4, 1, rule, position)
    np.testing.assert_allclose(found.signal, r0, atol=1e-12)
    np.testing.assert_allclose(found.output, forward["z1"], atol=1e-12)
    np.testing.assert_allclose(conv_transpose_by_hand(found.signal, w1, (8, 8)),
                               project(net, image, 4, 1, position, rule), atol=1e-12)
    agree = total = 0.0
    for u in np.ndindex(r0.shape):
        total += abs(r0[u])
        if r0[u] != 0 and (r0[u] > 0) == (forward["z1"][u] > 0):
            agree += abs(r0[u])
    assert found.agreement == pytest.approx(agree / total, abs=1e-12)
    if rule == "guided":
        assert found.agreement == 1.0
    assert not found.signal.flags.writeable


def test_pasted_filters_checks_its_network(image):
    net = tiny_net()
    with pytest.raises(ValueError, match="above the first convolution"):
        sanity.pasted_filters(net, image, 0, 0)
    starts_with_relu = nn.Sequential(nn.ReLU(), *net.layers, input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="start with a Conv2d"):
        sanity.pasted_filters(starts_with_relu, image, 5, 0)


def test_without_max_pools_moves_the_stride_to_the_next_convolution():
    """The pool is gone; the next convolution, now of stride 2, computes the stride-1
    convolution of the same input sampled at every second row and column."""
    rng = np.random.default_rng(5)
    net = nn.Sequential(
        nn.Conv2d(rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)), nn.ReLU(),
        nn.MaxPool2d(3, 2, padding=1),
        nn.Conv2d(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), padding=1),
        nn.ReLU(), input_shape=(1, 10, 10))
    plain = sanity.without_max_pools(net)
    assert [type(layer).__name__ for layer in plain.layers] == \
        ["Conv2d", "ReLU", "Conv2d", "ReLU"]
    assert plain.layers[0] is net.layers[0] and tuple(plain.layers[2].stride) == (2, 2)
    x = rng.standard_normal((1, 1, 10, 10))
    below = net.trace(x).outputs[1]                     # the ReLU the pool read
    stride_one = nn.Sequential(net.layers[3], input_shape=below.shape[1:]).trace(below)
    np.testing.assert_allclose(plain.trace(x).outputs[2],
                               stride_one.outputs[0][:, :, ::2, ::2], atol=1e-12)
    assert tuple(plain.layer_shapes((1, 10, 10))[-1]) == \
        tuple(net.layer_shapes((1, 10, 10))[-1])
    with pytest.raises(ValueError, match="stride-1 Conv2d"):
        sanity.without_max_pools(tiny_net().with_layers(tiny_net().layers[:3]))
    with pytest.raises(ValueError, match=r"would be \(3, 3, 3\), not \(3, 2, 2\)"):
        sanity.without_max_pools(tiny_net())     # 2×2 kernel on 6×6 at stride 2: 3×3


def test_likeness_is_the_rank_correlation_with_the_centred_image():
    rng = np.random.default_rng(2)
    image, m = rng.uniform(0, 1, (3, 9, 9)), rng.standard_normal((3, 9, 9))
    window = (2, 7, 1, 6)
    patch = image[:, 2:7, 1:6]
    centred = patch - patch.mean(axis=(1, 2), keepdims=True)
    expected = spearmanr(centred.ravel(), m[:, 2:7, 1:6].ravel()).statistic
    assert sanity.likeness(image, m, window) == pytest.approx(expected, abs=1e-12)
    assert sanity.likeness(image, image - image.mean(axis=(1, 2), keepdims=True)) == \
        pytest.approx(1.0)
    assert sanity.likeness(image, np.zeros_like(m), window) == 0.0
