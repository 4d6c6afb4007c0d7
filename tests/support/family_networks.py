"""The networks the attribution methods are checked on, beside the shipped one: a small
AlexNet-like stack and a small ResNet-like graph, float64, seeded He-initialised weights.

Both take 3×32×32 images (the drawn dataset's size) and end in 10 logits, so every method
runs on them and on ``minideconv.data.load_model()`` alike."""

from __future__ import annotations

import numpy as np

from minideconv import nn


def _weights(rng, dtype):
    def he(*shape, gain=1.0):
        return (rng.standard_normal(shape) * gain * np.sqrt(2.0 / np.prod(shape[1:]))
                ).astype(dtype)

    def small(n):
        return (0.1 * rng.standard_normal(n)).astype(dtype)
    return he, small


def alexnet_like(seed=0, dtype=np.float64) -> nn.Sequential:
    """AlexNet's pattern at 32×32: a strided 5×5 conv, overlapping 3×3/2 max-pools, three
    3×3 convs, an average pool, and a two-layer head with dropout (the identity at
    inference)::

        conv 5×5/1 p2 3→8, ReLU, max 3×3/2            32 → 32 → 15
        conv 3×3 p1 8→12, ReLU, max 3×3/2              15 → 7
        conv 3×3 p1 12→16, ReLU, conv 3×3 p1 16→16, ReLU, avg 2×2/1   7 → 6
        flatten, linear 576→32, ReLU, dropout, linear 32→10
    """
    rng = np.random.default_rng(seed)
    he, small = _weights(rng, dtype)
    return nn.Sequential(
        nn.Conv2d(he(8, 3, 5, 5), small(8), padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(he(12, 8, 3, 3), small(12), padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(he(16, 12, 3, 3), small(16), padding=1), nn.ReLU(),
        nn.Conv2d(he(16, 16, 3, 3), small(16), padding=1), nn.ReLU(),
        nn.AvgPool2d(2, 1), nn.Flatten(),
        nn.Linear(he(32, 576), small(32)), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(he(10, 32), small(10)),
        input_shape=(3, 32, 32))


def _batch_norm(rng, channels, dtype):
    return nn.BatchNorm2d((1 + 0.2 * rng.standard_normal(channels)).astype(dtype),
                          (0.1 * rng.standard_normal(channels)).astype(dtype),
                          (0.1 * rng.standard_normal(channels)).astype(dtype),
                          rng.uniform(0.5, 1.5, channels).astype(dtype))


def resnet_like(seed=0, dtype=np.float64, batch_norm=False) -> nn.Graph:
    """A ResNet's stem and two basic blocks at 32×32, the second with a strided 1×1
    projection on its shortcut, then global average pooling and a linear head::

        stem:    conv 3×3 p1 3→8 [BN], ReLU, max 2×2/2                 32 → 16
        block 1: conv 3×3 8→8 [BN], ReLU, conv 3×3 8→8 [BN]; + stem; ReLU
        block 2: conv 3×3/2 8→12 [BN], ReLU, conv 3×3 12→12 [BN];
                 + conv 1×1/2 8→12 [BN] of block 1's output; ReLU        16 → 8
        head:    adaptive avg 1×1, flatten, linear 12→10

    ``batch_norm=True`` puts a BatchNorm2d (random running statistics) after every conv,
    as torchvision's BasicBlock has; without it the convolutions keep their biases."""
    rng = np.random.default_rng(seed)
    he, small = _weights(rng, dtype)
    nodes = []

    def conv(name, source, c_in, c_out, k, stride=1):
        nodes.append((name, nn.Conv2d(he(c_out, c_in, k, k),
                                      None if batch_norm else small(c_out),
                                      stride=stride, padding=k // 2), (source,)))
        if batch_norm:
            nodes.append((name + "_bn", _batch_norm(rng, c_out, dtype), (name,)))
            return name + "_bn"
        return name

    def relu(name, source):
        nodes.append((name, nn.ReLU(), (source,)))
        return name

    out = relu("stem_relu", conv("stem", "input", 3, 8, 3))
    nodes.append(("stem_pool", nn.MaxPool2d(2, 2), (out,)))
    branch = conv("b1_conv2", relu("b1_relu1", conv("b1_conv1", "stem_pool", 8, 8, 3)),
                  8, 8, 3)
    nodes.append(("b1_add", nn.Add(), (branch, "stem_pool")))
    block1 = relu("b1_relu2", "b1_add")
    branch = conv("b2_conv2", relu("b2_relu1", conv("b2_conv1", block1, 8, 12, 3, 2)),
                  12, 12, 3)
    shortcut = conv("b2_down", block1, 8, 12, 1, 2)
    nodes.append(("b2_add", nn.Add(), (branch, shortcut)))
    out = relu("b2_relu2", "b2_add")
    nodes += [("pool", nn.AdaptiveAvgPool2d(1), (out,)), ("flatten", nn.Flatten(), ("pool",)),
              ("fc", nn.Linear(he(10, 12), small(10)), ("flatten",))]
    return nn.Graph(nodes, input_shape=(3, 32, 32))
