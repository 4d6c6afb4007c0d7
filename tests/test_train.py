"""minideconv.train: the loss and its gradients, the input shift, and a few SGD steps on
the drawn dataset."""

from __future__ import annotations

import numpy as np
import pytest

from minideconv import train

from support.networks import small_net


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_loss_gradients_match_finite_differences(rng):
    net = small_net(rng)
    x = rng.standard_normal((4, 3, 9, 9))
    labels = np.array([0, 3, 5, 1])
    _, grads = train.loss_and_grads(net, x, labels)
    eps = 1e-6
    for i, layer in enumerate(net.layers):
        for name, grad in grads[i].items():
            weight = getattr(layer, name)
            for _ in range(3):
                idx = tuple(int(rng.integers(s)) for s in weight.shape)
                old = weight[idx]
                weight[idx] = old + eps
                plus = train.softmax_cross_entropy(net(x), labels)[0]
                weight[idx] = old - eps
                minus = train.softmax_cross_entropy(net(x), labels)[0]
                weight[idx] = old
                assert grad[idx] == pytest.approx((plus - minus) / (2 * eps), abs=1e-7), \
                    (i, name, idx)


def test_softmax_cross_entropy():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    loss, grad = train.softmax_cross_entropy(logits, np.array([0, 2]))
    assert loss == pytest.approx(np.log(3) / 2)
    assert np.allclose(grad.sum(axis=1), 0)
    assert np.allclose(grad[1], np.array([1, 1, -2]) / 3 / 2)


def test_shift_input_is_exact(rng):
    net = train.build_model(seed=3)
    x = rng.uniform(0, 1, (2, 3, 32, 32)).astype(np.float32)
    before = net(x)
    train.shift_input(net, 0.5)
    assert np.allclose(net(x - np.float32(0.5)), before, atol=1e-4)
    train.shift_input(net, -0.5)
    assert np.allclose(net(x), before, atol=1e-4)


def test_training_a_few_steps_lowers_the_loss():
    from minideconv.data import load_dataset
    images, labels = load_dataset("train", n=128)
    net = train.build_model(seed=0)

    def loss():
        return train.softmax_cross_entropy(net(images), labels)[0]

    start = loss()
    history = train.fit(net, images, labels, epochs=2, batch_size=32, lr=0.05, seed=0,
                        progress=False)            # 8 SGD steps
    assert len(history) == 2 and history[1] < history[0]
    assert loss() < start - 0.03
