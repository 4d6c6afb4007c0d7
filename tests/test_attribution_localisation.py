"""minideconv.attribution.localisation: the ground-truth measures on maps and masks made
by hand (exact values), the deletion curve of an affine network computed by hand, the
table against the functions, and Quantus's pointing game and relevance mass on the same
arrays (when Quantus is installed)."""

from __future__ import annotations

import numpy as np
import pytest

from minideconv import data, nn
from minideconv.attribution import localisation as loc
from minideconv.attribution import targets as T
from minideconv.ops import upsample_bilinear2d


def gradient(net, images, targets):
    """∂z_t/∂x: the seed e_t at the logits passed down under the gradient's rule."""
    trace, index, targets = T.traced_logits(net, images, targets)
    return T.backward_from_logits(net, trace, index, targets)


def affine_net(seed=0, size=4, classes=3):
    """z = W vec(x) + b: the deletion curve of a linear logit is a sum of known terms."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((classes, 3 * size * size))
    bias = rng.standard_normal(classes)
    return nn.Sequential(nn.Flatten(), nn.Linear(weight, bias),
                         input_shape=(3, size, size)), weight, bias


# --------------------------------------------------------------------------- heatmap

def test_heatmap_of_input_space_and_coarse_maps():
    rng = np.random.default_rng(1)
    maps = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    heat = loc.heatmap(maps, (5, 6))
    assert heat.dtype == np.float64 and heat.shape == (2, 5, 6)
    np.testing.assert_allclose(heat, np.abs(maps.astype(np.float64)).sum(axis=1))
    positive = loc.heatmap(maps, (5, 6), reduce="positive")
    np.testing.assert_allclose(positive, np.maximum(maps.astype(np.float64).sum(1), 0))
    coarse = rng.random((2, 3, 3))
    up = loc.heatmap(coarse, (6, 6))
    assert up.shape == (2, 6, 6)
    np.testing.assert_array_equal(up, upsample_bilinear2d(coarse[:, None], size=(6, 6))[:, 0])
    # bilinear, align_corners=False: the corner pixel is the corner value
    assert up[0, 0, 0] == coarse[0, 0, 0]
    np.testing.assert_array_equal(loc.heatmap(coarse, (3, 3)), coarse)   # already full size
    assert not np.shares_memory(loc.heatmap(coarse, (3, 3)), coarse)
    with pytest.raises(ValueError, match="must have the image's size"):
        loc.heatmap(maps, (4, 6))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) input-space maps or \(N, h, w\)"):
        loc.heatmap(maps[0, 0], (5, 6))
    with pytest.raises(ValueError, match="reduce must be one of"):
        loc.heatmap(maps, (5, 6), reduce="signed")


# --------------------------------------------------------------------------- the measures

def _square_mask(n=1, size=8, r0=2, r1=5, c0=3, c1=6):
    masks = np.zeros((n, size, size), bool)
    masks[:, r0:r1, c0:c1] = True
    return masks


def test_pointing_game_hits_inside_and_misses_outside():
    masks = _square_mask(3)
    heat = np.zeros((3, 8, 8))
    heat[0, 3, 4] = 1.0           # inside the mask: a hit
    heat[1, 7, 0] = 1.0           # far outside: a miss
    heat[2, 3, 4] = heat[2, 0, 0] = 2.0  # a tie: the first in scan order (0, 0) — a miss
    np.testing.assert_array_equal(loc.pointing_game(heat, masks), [1.0, 0.0, 0.0])
    # the tolerance: (1, 3) is 1 px above the mask's top row 2
    heat = np.zeros((1, 8, 8))
    heat[0, 1, 3] = 1.0
    assert loc.pointing_game(heat, masks[:1]).tolist() == [0.0]
    assert loc.pointing_game(heat, masks[:1], tolerance=1).tolist() == [1.0]
    heat = np.zeros((1, 8, 8))
    heat[0, 0, 1] = 1.0            # nearest mask pixel (2, 3): √8 ≈ 2.83 px away
    assert loc.pointing_game(heat, masks[:1], tolerance=2.8).tolist() == [0.0]
    assert loc.pointing_game(heat, masks[:1], tolerance=2.9).tolist() == [1.0]


def test_pointing_game_constant_map_and_empty_mask():
    masks = _square_mask(2)
    masks[1] = True              # the whole image is the object
    zero = np.zeros((2, 8, 8))
    np.testing.assert_array_equal(loc.pointing_game(zero, masks), [0.0, 0.0])
    empty = np.zeros((1, 8, 8), bool)
    heat = np.random.default_rng(0).random((1, 8, 8))
    assert np.isnan(loc.pointing_game(heat, empty)[0])
    with pytest.raises(ValueError, match="tolerance must be a number of pixels"):
        loc.pointing_game(heat, masks[:1], tolerance=-1)
    with pytest.raises(ValueError, match="heat must be finite and ≥ 0"):
        loc.pointing_game(-heat, masks[:1])
    with pytest.raises(TypeError, match="masks must be a bool array"):
        loc.pointing_game(heat, masks[:1].astype(int))


def test_relevance_mass_exact_values():
    masks = _square_mask(3)                       # 9 of 64 pixels
    heat = np.ones((3, 8, 8))                     # uniform: the mask's share, 9 / 64
    heat[1] = 0.0
    heat[1, 3, 4], heat[1, 0, 0] = 3.0, 1.0       # 3 of 4 on the object
    heat[2] = 0.0                                 # nothing to place: NaN
    mass = loc.relevance_mass(heat, masks)
    assert mass[0] == pytest.approx(9 / 64, abs=1e-15)
    assert mass[1] == pytest.approx(0.75, abs=1e-15)
    assert np.isnan(mass[2])


def test_deletion_order_breaks_ties_in_scan_order():
    heat = np.array([[[0.0, 2.0], [2.0, 1.0]]])
    assert loc.deletion_order(heat).tolist() == [[1, 2, 3, 0]]
    assert loc.deletion_order(np.zeros((1, 2, 2))).tolist() == [[0, 1, 2, 3]]


@pytest.mark.parametrize("baseline", ["mean", "zero"])
def test_deletion_curve_of_an_affine_network_by_hand(baseline):
    """z_t(x⁽ᵏ⁾) = z_t(x) − Σ over the removed pixels p and channels c of
    W[t, c, p] (x[c, p] − b[c, p]): the curve summed term by term."""
    net, weight, bias = affine_net()
    rng = np.random.default_rng(3)
    images = rng.random((3, 3, 4, 4))
    targets = np.array([2, 0, 1])
    heat = rng.random((3, 4, 4))
    fractions, logits = loc.deletion_curve(net, images, targets, heat, steps=5,
                                           baseline=baseline, batch_size=4)
    counts = [0, 3, 6, 10, 13, 16]               # round(k · 16 / 5)
    np.testing.assert_array_equal(fractions, np.array(counts) / 16)
    assert logits.shape == (3, 6)
    for i in range(3):
        w = weight[targets[i]].reshape(3, 16)
        x = images[i].reshape(3, 16)
        b = x.mean(axis=1, keepdims=True) if baseline == "mean" else np.zeros((3, 1))
        order = np.argsort(-heat[i].ravel(), kind="stable")
        z0 = float(weight[targets[i]] @ images[i].ravel() + bias[targets[i]])
        for k, count in enumerate(counts):
            removed = order[:count]
            expected = z0 - float(np.sum(w[:, removed] * (x[:, removed] - b)))
            assert logits[i, k] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # the last step is the baseline image for every map
    _, other = loc.deletion_curve(net, images, targets, rng.random((3, 4, 4)), steps=5,
                                  baseline=baseline)
    np.testing.assert_allclose(other[:, -1], logits[:, -1], rtol=1e-12)
    np.testing.assert_allclose(other[:, 0], logits[:, 0], rtol=1e-12)


def test_deletion_curve_leaves_its_inputs_and_takes_an_array_baseline():
    net, weight, bias = affine_net()
    rng = np.random.default_rng(4)
    images = rng.random((2, 3, 4, 4))
    kept = images.copy()
    blurred = np.full_like(images, 0.5)
    fractions, logits = loc.deletion_curve(net, images, 1, rng.random((2, 4, 4)), steps=2,
                                           baseline=blurred)
    np.testing.assert_array_equal(images, kept)
    end = weight[1] @ blurred[0].ravel() + bias[1]
    assert logits[0, -1] == pytest.approx(end, rel=1e-12)
    with pytest.raises(ValueError, match="baseline must be 'mean', 'zero' or an array"):
        loc.deletion_curve(net, images, 1, rng.random((2, 4, 4)), baseline=blurred[:1])
    with pytest.raises(ValueError, match="heat must be one heatmap per image"):
        loc.deletion_curve(net, images, 1, rng.random((2, 3, 4)))


def test_deletion_auc_trapezoid():
    fractions = np.array([0.0, 0.25, 0.5, 1.0])
    logits = np.array([[2.0, 2.0, 2.0, 2.0],      # never falls: 1
                       [4.0, 3.0, 2.0, 0.0],      # falls linearly to 0: 0.5
                       [-1.0, 0.0, 0.0, 0.0]])    # not favoured at the start: NaN
    auc = loc.deletion_auc(fractions, logits)
    assert auc[0] == pytest.approx(1.0) and auc[1] == pytest.approx(0.5)
    assert np.isnan(auc[2])
    raw = loc.deletion_auc(fractions, logits, normalise=False)
    assert raw[1] == pytest.approx(0.25 * 3.5 + 0.25 * 2.5 + 0.5 * 1.0)
    with pytest.raises(ValueError, match="must match"):
        loc.deletion_auc(fractions[:3], logits)


# --------------------------------------------------------------------------- baselines

def test_centre_and_random_maps():
    centre = loc.centre_map(2, (5, 7))
    assert centre.shape == (2, 5, 7)
    assert np.unravel_index(centre[0].argmax(), (5, 7)) == (2, 3)
    assert centre[0, 2, 3] == 1.0 and centre[0, 0, 0] == pytest.approx(
        np.exp(-(2 ** 2 + 3 ** 2) / (2 * (5 / 4) ** 2)))
    even = loc.centre_map(1, (32, 32))[0]
    assert np.unravel_index(even.argmax(), even.shape) == (15, 15)   # first of four ties
    assert even[15, 15] == even[16, 16]
    a, b = loc.random_map(3, (4, 4), seed=1), loc.random_map(3, (4, 4), seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, loc.random_map(3, (4, 4), seed=2))
    assert a.min() >= 0 and a.max() < 1


# --------------------------------------------------------------------------- the table

def test_table_rows_agree_with_the_functions():
    net, weight, bias = affine_net(size=8)
    rng = np.random.default_rng(5)
    images = rng.random((5, 3, 8, 8))
    labels = np.array([0, 1, 2, 0, 1])
    masks = _square_mask(5)

    def peaked(net, images, targets):          # a map that points inside the mask
        maps = np.zeros_like(images)
        maps[:, :, 3, 4] = 1.0
        return maps

    def zero(net, images, targets):
        return np.zeros(images.shape[:1] + (2, 2))   # coarse, all zero

    table = loc.localisation_table(net, images, labels, masks,
                                   {"gradient": gradient, "peaked": peaked, "zero": zero},
                                   steps=4, batch_size=2)
    assert table.names == ("gradient", "peaked", "zero", "centre", "random")
    assert table.pointing["peaked"].tolist() == [1.0] * 5
    assert table.pointing["zero"].tolist() == [0.0] * 5 and table.zero_maps["zero"] == 5
    assert np.all(np.isnan(table.mass["zero"])) and table.zero_maps["gradient"] == 0
    heat = loc.heatmap(gradient(net, images, labels), (8, 8))
    # the gradient of an affine logit is its weight row: the table computed the same
    np.testing.assert_allclose(heat[0], np.abs(weight[0].reshape(3, 8, 8)).sum(0))
    np.testing.assert_array_equal(table.pointing["gradient"],
                                  loc.pointing_game(heat, masks))
    np.testing.assert_array_equal(table.mass["gradient"], loc.relevance_mass(heat, masks))
    fractions, logits = loc.deletion_curve(net, images, labels, heat, steps=4)
    np.testing.assert_allclose(table.auc["gradient"], loc.deletion_auc(fractions, logits),
                               rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(table.mass["centre"],
                                  loc.relevance_mass(loc.centre_map(5, (8, 8)), masks))
    assert table.mean("pointing")["peaked"] == 1.0
    text = str(table)
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method"))
    assert [line.split()[0] for line in lines[header + 1:]] == list(table.names)
    assert "pointing %" in lines[header] and "deletion AUC" in lines[header]
    row = lines[header + 2].split()           # "peaked": 100 % pointing, no zero maps
    assert row[1] == "100.0" and row[-1] == "0"
    assert len({len(line) for line in lines[header:]}) == 1     # aligned columns
    undefined = sum(int(np.isnan(table.auc[name]).sum()) for name in table.names)
    assert undefined > 0       # this affine net gives some images a negative logit
    assert f"{undefined} curves starting at a logit ≤ 0 left out" in text
    assert "R = Σ_c |map_c|" in text


def test_table_errors():
    net, _, _ = affine_net(size=8)
    images = np.zeros((2, 3, 8, 8))
    with pytest.raises(ValueError, match="is the name of a baseline row"):
        loc.localisation_table(net, images, [0, 1], _square_mask(2),
                               {"centre": gradient})
    with pytest.raises(ValueError, match="masks must be bool"):
        loc.localisation_table(net, images, [0, 1], _square_mask(1), {"g": gradient})
    with pytest.raises(TypeError, match="methods must be a dict"):
        loc.localisation_table(net, images, [0, 1], _square_mask(2), [gradient])


def test_table_on_the_shipped_network_beats_random():
    """The gradient of the shipped network points at the drawn objects more often, and puts
    more of its mass on them, than a random map (whose mass is the masks' share)."""
    net = data.load_model()
    images, labels, masks = data.load_dataset("test", 40, masks=True)
    table = loc.localisation_table(net, images, labels, masks, {"gradient": gradient})
    pointing, mass = table.mean("pointing"), table.mean("mass")
    assert pointing["gradient"] > pointing["random"] + 0.15
    assert mass["gradient"] > mass["random"] + 0.05
    assert mass["random"] == pytest.approx(masks.mean(), abs=0.02)
    assert table.mean("auc")["gradient"] < table.mean("auc")["random"]


# --------------------------------------------------------------------------- Quantus

def import_quantus():
    """Quantus, skipping the test without it.  ``import quantus`` imports zennit when
    zennit is installed, and zennit's ``__init__`` imports torchvision, which may be
    absent: zennit is then imported first with its stand-in
    (``support.zennit_reference.import_zennit``)."""
    from importlib.util import find_spec
    if find_spec("quantus") is None:
        pytest.skip("quantus is not installed (pip install --no-deps quantus==0.6.0, "
                    "then pandas and opencv-python-headless)")
    if find_spec("zennit") is not None:
        from tests.support.zennit_reference import import_zennit
        import_zennit()
    import quantus
    return quantus


def test_same_numbers_as_quantus():
    """Quantus 0.6.0's PointingGame and RelevanceMassAccuracy on the same heatmaps and
    masks (maps without ties: Quantus hits when any tied maximum is on the mask)."""
    quantus = import_quantus()
    rng = np.random.default_rng(6)
    _, _, masks = data.load_dataset("test", 30, masks=True)
    heat = rng.random((30, 32, 32)) * (1 + 3 * masks)       # more mass on the objects
    heat[::4] = rng.random((8, 32, 32))                      # and some maps that miss
    x = np.zeros((30, 3, 32, 32), np.float32)
    y = np.zeros(30, np.int64)
    a, s = heat[:, None].astype(np.float32), masks[:, None].astype(np.float32)
    theirs = quantus.PointingGame(disable_warnings=True)(
        model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s)
    ours = loc.pointing_game(heat.astype(np.float32), masks)
    np.testing.assert_array_equal(np.asarray(theirs, dtype=float), ours)
    assert 0 < ours.mean() < 1
    theirs = quantus.RelevanceMassAccuracy(disable_warnings=True)(
        model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s)
    np.testing.assert_allclose(np.asarray(theirs, dtype=float),
                               loc.relevance_mass(heat, masks), rtol=1e-6)
