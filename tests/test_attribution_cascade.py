"""minideconv.attribution.cascade: the sanity cascade of any method — the same draws and
the same forward passes as ``visualize.sanity.randomization_test(where="network")``, a
method that ignores the weights stays at similarity 1, the gradient's falls, and the
redrawing is seeded."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from minideconv import data  # noqa: E402
from minideconv.attribution import cascade  # noqa: E402
from minideconv.attribution import targets as T  # noqa: E402
from minideconv.visualize import sanity  # noqa: E402


def gradient(net, images, targets):
    """∂z_t/∂x: the seed e_t at the logits passed down under the gradient's rule."""
    trace, index, targets = T.traced_logits(net, images, targets)
    return T.backward_from_logits(net, trace, index, targets)


def image_itself(net, images, targets):
    """A "map" that never looks at the network: the image."""
    return images.copy()


def coarse_gradient(net, images, targets):
    """A coarse (N, 8, 8) map: |∂z_t/∂x| summed over channels and 4 × 4 blocks."""
    g = np.abs(gradient(net, images, targets)).sum(axis=1)
    n, h, w = g.shape
    return g.reshape(n, h // 4, 4, w // 4, 4).sum(axis=(2, 4))


@pytest.fixture(scope="module")
def shipped():
    net = data.load_model()
    image = data.load_image("test:17")
    label = int(data.load_dataset("test", 18)[1][17])
    return net, image, label


@pytest.fixture(scope="module")
def result(shipped):
    net, image, label = shipped
    return cascade.family_cascade(net, image, label, {"gradient": gradient,
                                                      "image": image_itself,
                                                      "coarse": coarse_gradient}, seed=0)


def test_steps_and_step_zero(shipped, result):
    net, _, _ = shipped
    below = sanity.weight_layers(net)
    assert result.steps == ("trained",) + tuple(net.describe(i) for i in below)
    assert result.randomized == tuple(below[:k] for k in range(len(below) + 1))
    assert result.names == ("gradient", "image", "coarse")
    for name in result.names:
        for metric in cascade.METRICS:
            assert getattr(result, metric)[name][0] == 1.0
    assert result.maps["gradient"].shape == (len(below) + 1, 3, 32, 32)
    assert result.maps["coarse"].shape == (len(below) + 1, 8, 8)
    assert not result.maps["gradient"].flags.writeable


def test_a_method_that_ignores_the_weights_stays_at_one(result):
    np.testing.assert_array_equal(result.spearman["image"], 1.0)
    np.testing.assert_array_equal(result.spearman_abs["image"], 1.0)
    np.testing.assert_allclose(result.ssim["image"], 1.0, atol=1e-12)


def test_the_gradient_changes_with_the_weights(result):
    # measured on test:17: ρ = −0.09 with the top layer redrawn, −0.01 with all of them
    assert np.all(np.abs(result.spearman["gradient"][1:]) < 0.5)
    assert result.ssim["gradient"][-1] < 0.2
    assert result.spearman_abs["gradient"][-1] < result.spearman_abs["gradient"][1]
    assert result.spearman["coarse"][-1] < 0.9
    assert result.logits[0] > 0 and np.all(result.logits[1:] != result.logits[0])


def test_same_draws_and_forward_passes_as_sanity(shipped, result):
    """sanity.randomization_test of the logit under backprop, where="network", seeds
    the activation z itself: its maps are z⁽ᵏ⁾ · ∂z⁽ᵏ⁾/∂x, ours ∂z⁽ᵏ⁾/∂x."""
    net, image, label = shipped
    theirs = sanity.randomization_test(net, image, net.output_layer(), label,
                                       rule="backprop", mode="cascade", where="network",
                                       seed=0)
    assert theirs.steps == result.steps
    np.testing.assert_allclose(result.logits, theirs.activations, rtol=1e-5)
    for k in range(len(result.steps)):
        ours = result.maps["gradient"][k] * result.logits[k]
        scale = np.abs(theirs.maps[k]).max()
        assert np.abs(ours - theirs.maps[k]).max() / scale < 1e-4       # float32
    # |map| ranks do not see the positive scale |z|: the same numbers
    np.testing.assert_allclose(result.spearman_abs["gradient"], theirs.spearman_abs,
                               atol=1e-6)


def test_redrawing_is_seeded(shipped, result):
    net, image, label = shipped
    again = cascade.family_cascade(net, image, label, {"gradient": gradient}, seed=0)
    np.testing.assert_array_equal(again.maps["gradient"], result.maps["gradient"])
    np.testing.assert_array_equal(again.spearman["gradient"], result.spearman["gradient"])
    other = cascade.family_cascade(net, image, label, {"gradient": gradient}, seed=1)
    np.testing.assert_array_equal(other.maps["gradient"][0], result.maps["gradient"][0])
    assert not np.allclose(other.maps["gradient"][1], result.maps["gradient"][1])
    assert other.seed == 1
    # step k is the network sanity.randomize gives for the k topmost layers
    chosen = result.randomized[2]
    by_hand = gradient(sanity.randomize(net, chosen, seed=0), image[None], [label])[0]
    np.testing.assert_array_equal(by_hand, result.maps["gradient"][2])


def test_the_network_and_the_image_are_left_alone(shipped):
    net, image, label = shipped
    weights = [a.copy() for layer in net.layers for a in layer.params().values()]
    kept = image.copy()

    def scribbler(net, images, targets):      # a method that writes into its input
        images[:] = 0
        return images + 1.0

    cascade.family_cascade(net, image, label, {"scribbler": scribbler})
    np.testing.assert_array_equal(image, kept)
    after = [a for layer in net.layers for a in layer.params().values()]
    assert all(np.array_equal(a, b) for a, b in zip(weights, after))


def test_comparable_map():
    coarse = np.arange(4.0).reshape(2, 2)
    up = cascade.comparable_map(coarse, (4, 4))
    assert up.shape == (1, 4, 4) and up[0, 0, 0] == 0.0 and up[0, -1, -1] == 3.0
    full = np.ones((3, 4, 4))
    assert cascade.comparable_map(full, (4, 4)).shape == (3, 4, 4)
    with pytest.raises(ValueError, match="must have the image's size"):
        cascade.comparable_map(full, (5, 4))
    with pytest.raises(ValueError, match=r"\(C, H, W\) in input space or \(h, w\)"):
        cascade.comparable_map(np.ones(3), (4, 4))


def test_errors(shipped):
    net, image, label = shipped
    with pytest.raises(ValueError, match="must be one image"):
        cascade.family_cascade(net, np.stack([image, image]), label, {"g": gradient})
    with pytest.raises(TypeError, match="methods must be a non-empty dict"):
        cascade.family_cascade(net, image, label, {})
    with pytest.raises(ValueError, match="target must be a class index in"):
        cascade.family_cascade(net, image, 10, {"g": gradient})
    with pytest.raises(ValueError, match="must return one map per image"):
        cascade.family_cascade(net, image, label, {"g": lambda n, x, t: x[0]})
    with pytest.raises(ValueError, match="name must be one of the methods"):
        cascade.family_cascade(net, image, label, {"g": gradient}).curves("h")


def test_figure(shipped, result):
    from minideconv import plots
    _, image, _ = shipped
    fig = plots.family_cascade_figure(result, image)
    steps = len(result.steps)
    tiles = [ax for ax in fig.axes if ax.get_images()]
    assert len(tiles) == 1 + len(result.names) * steps      # the image and every map
    curves = [ax for ax in fig.axes if ax.get_lines()]
    assert len(curves) == 3 and all(len(ax.get_xticks()) == steps for ax in curves)
    import matplotlib.pyplot as plt
    plt.close(fig)
