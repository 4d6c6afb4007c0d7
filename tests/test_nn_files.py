"""minideconv.nn's network files: save and load round trips, and the errors of a damaged
file, each naming the layer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minideconv import nn

from support.networks import small_net


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_save_load_round_trip(tmp_path, rng):
    net = small_net(rng, np.float32)
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = nn.load(path)
    assert np.array_equal(loaded.layers[0].weight, net.layers[0].weight)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    assert np.array_equal(loaded(x), net(x))
    assert [type(a) for a in loaded.layers] == [type(b) for b in net.layers]
    assert loaded.input_shape == (3, 9, 9)
    with np.load(path, allow_pickle=False) as npz:        # plain arrays only
        assert json.loads(str(npz["architecture"]))["layers"][2]["type"] == "MaxPool2d"


def _rewrite(path, out, **changes):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(out, **arrays)


def test_load_errors_name_the_layer(tmp_path, rng):
    net = small_net(rng, np.float32)
    path = tmp_path / "net.npz"
    net.save(path)

    bad = tmp_path / "bad_shape.npz"
    _rewrite(path, bad, **{"layers.3.weight": np.zeros((5, 7, 3, 3), np.float32)})
    with pytest.raises(ValueError, match=r"layer 3 \(Conv2d\)"):
        nn.load(bad)

    bad_bias = tmp_path / "bad_bias.npz"
    _rewrite(path, bad_bias, **{"layers.0.bias": np.zeros(9, np.float32)})
    with pytest.raises(ValueError, match=r"layer 0 \(Conv2d\).*bias"):
        nn.load(bad_bias)

    missing = tmp_path / "missing.npz"
    _rewrite(path, missing, **{"layers.6.weight": None})
    with pytest.raises(ValueError, match=r"layer 6 \(Linear\).*missing"):
        nn.load(missing)

    with pytest.raises(FileNotFoundError, match="no network file"):
        nn.load(tmp_path / "nowhere.npz")
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(ValueError, match="not a minideconv network"):
        nn.load(text)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, architecture=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a minideconv network"):
        nn.load(pickled)
