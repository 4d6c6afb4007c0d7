"""LRP (``minideconv.attribution.lrp``) against zennit 0.5.1, and the properties that hold
without it: each rule's conservation, LRP-0 = input × gradient on ReLU networks, the batch
norm merge keeping the outputs, and the refusals.

zennit runs on ``to_torch`` of the same network (``support.zennit_reference``), float64;
the spec's tolerance is max|ours − zennit| / max|zennit| ≤ 1e-6 (measured: ~1e-15)."""

from __future__ import annotations

import numpy as np
import pytest

import minideconv.attribution as A
from minideconv import data, nn
from minideconv.attribution import lrp_rules
from minideconv.attribution.canonize import merge_batch_norms
from minideconv.attribution.lrp import Composite
from minideconv.attribution.targets import logit_seed
from support import family_networks

TOLERANCE = 1e-6
NAMED = ["epsilon_plus_flat", "epsilon_alpha2_beta1_flat", "epsilon_plus",
         "epsilon_alpha2_beta1"]


def relative_error(ours, ref):
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def network(name):
    if name == "shipped":
        return data.load_model().astype(np.float64)
    if name == "alexnet_like":
        return family_networks.alexnet_like()
    return family_networks.resnet_like(batch_norm=name == "resnet_like_bn")


NETWORKS = ["shipped", "alexnet_like", "resnet_like", "resnet_like_bn"]


@pytest.fixture(scope="module")
def images():
    return data.load_dataset("test", 3)[0].astype(np.float64)


@pytest.fixture(scope="module")
def z():
    from support.zennit_reference import import_zennit
    return import_zennit()


def reference(z, name, net, x, targets, composite):
    from support.zennit_reference import residual_model, zennit_composite, zennit_lrp
    from minideconv.interop.torch import to_torch
    model = residual_model(z, net) if isinstance(net, nn.Graph) else to_torch(net)
    return zennit_lrp(z, model, x, targets, zennit_composite(z, composite,
                                                            batch_norm=name.endswith("bn")))


# ------------------------------------------------------------------ against zennit

@pytest.mark.parametrize("composite", NAMED)
@pytest.mark.parametrize("name", NETWORKS)
def test_equals_zennit_on_a_batch_with_a_target_per_image(z, images, name, composite):
    net = network(name)
    targets = [1, 4, 7]
    ours = A.lrp(net, images, targets, composite=composite)
    assert ours.shape == images.shape
    assert relative_error(ours, reference(z, name, net, images, targets, composite)) \
        <= TOLERANCE


@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_alpha2_beta1_flat"])
@pytest.mark.parametrize("name", NETWORKS)
def test_equals_zennit_on_one_image_with_an_int_target(z, images, name, composite):
    net = network(name)
    ours = A.lrp(net, images[1], 3, composite=composite)
    assert ours.shape == images[1].shape
    ref = reference(z, name, net, images[1:2], [3], composite)[0]
    assert relative_error(ours, ref) <= TOLERANCE


@pytest.mark.parametrize("composite", ["epsilon_plus", "epsilon_alpha2_beta1"])
@pytest.mark.parametrize("name", ["alexnet_like", "resnet_like_bn"])
def test_equals_zennit_with_negative_inputs_at_a_zplus_or_alpha_beta_first_layer(
        z, images, name, composite):
    """Centred images: x⁻ pairs with W⁻ (z⁺) and with W⁺ (αβ's negative part)."""
    net, x = network(name), images - 0.5
    ours = A.lrp(net, x, [0, 5, 9], composite=composite)
    assert relative_error(ours, reference(z, name, net, x, [0, 5, 9], composite)) \
        <= TOLERANCE


@pytest.mark.parametrize("name", ["alexnet_like", "resnet_like"])
def test_an_epsilon_composite_equals_zennits_epsilon_everywhere(z, images, name):
    """A hand-made Composite against zennit's LayerMapComposite of the same rules."""
    from support.zennit_reference import residual_model, zennit_lrp
    from minideconv.interop.torch import to_torch
    net = network(name)
    r, t = z.rules, z.types
    zennit_epsilon = z.composites.LayerMapComposite([
        (t.Activation, r.Pass()), (z.layer.Sum, r.Norm()), (t.AvgPool, r.Norm()),
        (t.Linear, r.Epsilon(epsilon=1e-3))])
    model = residual_model(z, net) if isinstance(net, nn.Graph) else to_torch(net)
    ref = zennit_lrp(z, model, images, [2, 2, 8], zennit_epsilon)
    ours = A.lrp(net, images, [2, 2, 8], Composite("epsilon", "epsilon", "epsilon",
                                                   epsilon=1e-3))
    assert relative_error(ours, ref) <= TOLERANCE


def test_a_plain_add_is_not_zennits_sum(z, images):
    """Without zennit's ``Sum`` at the joins, zennit copies R to both branches (the
    gradient of ``+``): far from the Sum/Norm split followed here."""
    from support.zennit_reference import zennit_composite, zennit_lrp
    from minideconv.interop.torch import to_torch
    net = network("resnet_like")
    ref = zennit_lrp(z, to_torch(net), images, [1, 4, 7],
                     zennit_composite(z, "epsilon_plus_flat"))
    assert relative_error(A.lrp(net, images, [1, 4, 7]), ref) > 1e-2


def test_a_deliberate_mistake_fails_the_comparison(z, images, monkeypatch):
    """ZPlus without b⁺ in its denominator: the zennit comparison must catch it."""
    def zplus_without_bias(x, R, affine, stabilizer=1e-6):
        W, xp, xn = affine.weight, lrp_rules.positive(x), lrp_rules.negative(x)
        Wp, Wn = lrp_rules.positive(W), lrp_rules.negative(W)
        s = R / lrp_rules.stabilize(affine.apply(xp, Wp) + affine.apply(xn, Wn), stabilizer)
        return xp * affine.transpose(s, Wp) + xn * affine.transpose(s, Wn)
    net = network("alexnet_like")
    ref = reference(z, "alexnet_like", net, images, [1, 4, 7], "epsilon_plus_flat")
    monkeypatch.setattr(lrp_rules, "zplus_rule", zplus_without_bias)
    assert relative_error(A.lrp(net, images, [1, 4, 7]), ref) > 1e-3


# ------------------------------------------------------------------ properties

def test_lrp_zero_is_input_times_gradient_on_relu_networks(images):
    """ε → 0 everywhere: the seed 1 = z_t / z_t makes R / z the gradient over z_t at every
    layer, so R_in = x ⊙ ∂z_t/∂x / z_t (Captum's seed, z_t, gives x ⊙ ∂z_t/∂x)."""
    lrp_zero = Composite("epsilon", "epsilon", "epsilon", epsilon=1e-100,
                         stabilizer=1e-100)
    for name in NETWORKS:
        net = network(name)
        trace = net.trace(images, upto=net.output_layer())
        seed = logit_seed(trace.outputs[-1], np.array([1, 4, 7]))
        logit = trace.outputs[-1][np.arange(3), [1, 4, 7]][:, None, None, None]
        expected = images * net.backward(seed, trace) / logit
        assert relative_error(A.lrp(net, images, [1, 4, 7], lrp_zero), expected) < 1e-12


def bias_free(net):
    return net.with_layers([type(layer)(layer.weight, None, **layer.config())
                            if isinstance(layer, nn.Conv2d) else
                            nn.Linear(layer.weight) if isinstance(layer, nn.Linear) else
                            layer for layer in net.layers])


EPSILON_FLAT = Composite("flat", "epsilon", "epsilon")
EPSILON = Composite("epsilon", "epsilon", "epsilon")


@pytest.mark.parametrize("name, composite", [
    (name, composite) for name in ["shipped", "alexnet_like", "resnet_like"]
    for composite in [EPSILON, EPSILON_FLAT]] + [
    (name, composite) for name in ["shipped", "alexnet_like"]
    for composite in ["epsilon_plus_flat", "epsilon_plus"]])
def test_bias_free_networks_conserve_the_seed(images, name, composite):
    """Without biases the ε, flat, z⁺, norm and sum rules keep Σ R (the seed, 1) up to
    the stabilisers.  (Not z⁺ on the residual network: a branch's conv output enters the
    sum before any ReLU, so a unit with no positive contribution — z⁺ = 0 — can get
    relevance, which z⁺ cannot pass down: 5% of image 1's is lost there.)"""
    relevance = A.lrp(bias_free(network(name)), images, [1, 4, 7], composite)
    np.testing.assert_allclose(relevance.sum(axis=(1, 2, 3)), 1, rtol=1e-4)


@pytest.fixture
def conv_case():
    rng = np.random.default_rng(3)
    layer = nn.Conv2d(rng.standard_normal((5, 4, 3, 3)), rng.standard_normal(5),
                      stride=2, padding=1)
    x = rng.standard_normal((2, 4, 9, 9))
    R = rng.standard_normal(layer(x).shape)
    return layer, x, R, lrp_rules.AffineMap(layer, x.shape)


def test_each_rule_conserves_what_its_denominator_says(conv_case):
    """Σ R_in = Σ R · (the part of z the inputs made) / stab(z), rule by rule."""
    layer, x, R, affine = conv_case
    stab = lrp_rules.stabilize
    z = layer(x)
    bias = layer.bias[:, None, None]
    assert np.isclose(lrp_rules.epsilon_rule(x, R, affine).sum(),
                      (R * (z - bias) / stab(z)).sum(), rtol=1e-12)
    xp, xn, Wp, Wn = (np.maximum(x, 0), np.minimum(x, 0), np.maximum(layer.weight, 0),
                      np.minimum(layer.weight, 0))
    zp = affine.apply(xp, Wp) + affine.apply(xn, Wn)
    zn = affine.apply(xp, Wn) + affine.apply(xn, Wp)
    bp, bn = np.maximum(bias, 0), np.minimum(bias, 0)
    assert np.isclose(lrp_rules.zplus_rule(x, R, affine).sum(),
                      (R * zp / stab(zp + bp)).sum(), rtol=1e-12)
    assert np.isclose(lrp_rules.alpha_beta_rule(x, R, affine).sum(),
                      (2 * R * zp / stab(zp + bp) - R * zn / stab(zn + bn)).sum(),
                      rtol=1e-12)
    count = affine.apply(np.ones_like(x), np.ones_like(layer.weight))
    assert np.isclose(lrp_rules.flat_rule(x, R, affine).sum(),
                      (R * count / stab(count)).sum(), rtol=1e-12)


def test_flat_spreads_evenly_and_skips_the_padding():
    layer = nn.Conv2d(np.full((1, 1, 3, 3), -7.0), padding=1)
    x = np.zeros((1, 1, 3, 3))
    R = np.zeros((1, 1, 3, 3))
    R[0, 0, 0, 0] = 1.0                     # a corner unit reads 4 pixels, not 9
    out = lrp_rules.flat_rule(x, R, lrp_rules.AffineMap(layer, x.shape))
    expected = np.zeros((3, 3))
    expected[:2, :2] = 1 / (4 + 1e-6)
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-14)


def test_the_sum_rule_splits_in_proportion():
    a, b = np.array([[1.0, -2.0, 0.0]]), np.array([[3.0, 1.0, 0.0]])
    R = np.array([[4.0, 2.0, 5.0]])
    ra, rb = lrp_rules.sum_rule((a, b), a + b, R)
    np.testing.assert_allclose(ra + rb, R * (a + b) / lrp_rules.stabilize(a + b))
    np.testing.assert_allclose(ra[0, :2], [1.0, 4.0], rtol=1e-5)
    assert ra[0, 2] == rb[0, 2] == 0        # z = 0: sign +1, nothing divides by zero


def test_stabilize_keeps_the_sign_and_lifts_zero():
    z = np.array([-2.0, 0.0, 3.0], np.float32)
    out = lrp_rules.stabilize(z, 0.5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [-2.5, 0.5, 3.5])


# ------------------------------------------------------------------ the interface

def test_batch_single_and_target_forms_agree_and_x_is_kept(images):
    net = network("alexnet_like")
    before = images.copy()
    batch = A.lrp(net, images, 6)
    assert np.array_equal(images, before)
    np.testing.assert_array_equal(batch, A.lrp(net, images, [6, 6, 6]))
    np.testing.assert_allclose(A.lrp(net, images[2], 6), batch[2], rtol=1e-12, atol=1e-15)


def test_merge_batch_norms_keeps_the_outputs_and_the_network(images):
    net = network("resnet_like_bn")
    weights = {i: layer.weight.copy() for i, layer in enumerate(net.layers)
               if isinstance(layer, nn.Conv2d)}
    merged = merge_batch_norms(net)
    assert not any(isinstance(layer, nn.BatchNorm2d) for layer in merged.layers)
    assert sum(isinstance(layer, nn.BatchNorm2d) for layer in net.layers) == 6
    assert merged.names == net.names
    np.testing.assert_allclose(merged(images), net(images), rtol=1e-12, atol=1e-12)
    for i, w in weights.items():
        assert np.array_equal(net.layers[i].weight, w) and net.layers[i].bias is None


def test_merge_batch_norms_of_a_sequential_conv_with_bias(images):
    rng = np.random.default_rng(1)
    bn = nn.BatchNorm2d(rng.uniform(0.5, 2, 4), rng.standard_normal(4),
                        rng.standard_normal(4), rng.uniform(0.5, 2, 4))
    net = nn.Sequential(nn.Conv2d(rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4),
                                  padding=1, stride=2), bn, nn.ReLU())
    np.testing.assert_allclose(merge_batch_norms(net)(images), net(images), rtol=1e-12,
                               atol=1e-12)


def test_a_batch_norm_not_after_a_conv_is_refused(images):
    rng = np.random.default_rng(1)
    bn = nn.BatchNorm2d(running_mean=np.zeros(3), running_var=np.ones(3))
    conv = nn.Conv2d(rng.standard_normal((3, 3, 3, 3)))
    net = nn.Sequential(conv, nn.ReLU(), bn, nn.Flatten(), names=["c", "r", "bn", "f"])
    with pytest.raises(ValueError,
                       match=r"'bn' \(BatchNorm2d\) reads .*ReLU.*not a Conv2d"):
        merge_batch_norms(net)
    graph = nn.Graph([("c", conv, ("input",)), ("bn", bn, ("c",)),
                      ("add", nn.Add(), ("bn", "c"))])
    with pytest.raises(ValueError, match=r"'bn' \(BatchNorm2d\).*also read by.*'add'"):
        A.lrp(graph, images, 0)


def test_a_layer_without_a_rule_is_refused(images):
    net = network("alexnet_like")
    layers = list(net.layers)
    layers[13] = nn.Softmax()               # the ReLU between the two Linears
    inside = net.with_layers(layers)
    with pytest.raises(ValueError, match=r"LRP has no rule here for layer 13 \(Softmax\)"):
        A.lrp(inside, images, 0)
    # a closing softmax is past the logits: LRP explains the logit before it
    closing = nn.Sequential(*net.layers, nn.Softmax())
    np.testing.assert_array_equal(A.lrp(closing, images, 2), A.lrp(net, images, 2))


def test_unknown_composites_and_rules_are_refused(images):
    net = network("alexnet_like")
    with pytest.raises(ValueError, match=r"composite must be one of \['epsilon_alpha2_"):
        A.lrp(net, images, 0, composite="epsilon_gamma_box")
    with pytest.raises(ValueError, match=r"Composite.conv must be one of"):
        Composite(None, "gamma", "epsilon")
    with pytest.raises(TypeError, match="minideconv network"):
        A.lrp(object(), images, 0)


def test_a_concat_and_an_adaptive_max_pool_equal_zennit(z, images):
    """Two branches joined by channels (R split back, the gradient) and an adaptive
    max-pool (R to its switches), neither of which zennit hooks."""
    rng = np.random.default_rng(5)
    net = nn.Graph([
        ("a", nn.Conv2d(rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4),
                        padding=1), ("input",)),
        ("a_relu", nn.ReLU(), ("a",)),
        ("b", nn.Conv2d(rng.standard_normal((5, 4, 1, 1)), rng.standard_normal(5)),
         ("a_relu",)),
        ("b_relu", nn.ReLU(), ("b",)),
        ("cat", nn.Concat(), ("a_relu", "b_relu")),
        ("pool", nn.AdaptiveMaxPool2d(3), ("cat",)),
        ("flatten", nn.Flatten(), ("pool",)),
        ("fc", nn.Linear(rng.standard_normal((6, 81)), rng.standard_normal(6)),
         ("flatten",))])
    for composite in ["epsilon_plus_flat", "epsilon_alpha2_beta1_flat"]:
        ours = A.lrp(net, images, [0, 3, 5], composite)
        assert relative_error(ours, reference(z, "concat", net, images, [0, 3, 5],
                                              composite)) <= TOLERANCE


def test_the_torchvision_stand_in_is_removed(z):
    import sys
    resnet = sys.modules.get("torchvision.models.resnet")
    assert resnet is None or getattr(resnet, "__file__", None) is not None
