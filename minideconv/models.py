"""The built-in architectures: the shipped network's, and seeded random-weight stacks.

* ``build_model`` — the small ZF-like network that ``minideconv.train`` trains on the drawn
  dataset and ships as ``minideconv/data/model.npz``.
* ``builtin_model`` — networks with no downloads: ZFNet's and VGG's layer patterns at
  reduced width with seeded He-initialised weights, and the shipped trained network;
  ``minideconv crosscheck`` checks them against PyTorch.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from . import checks, nn

BUILTIN = ("zfnet", "vgg", "embedded")


def build_model(seed: int = 0, num_classes: int = 10) -> nn.Sequential:
    """A small ZF-like network for 3×32×32 images, He-initialised (std = √(2 / fan_in)):

    conv 5×5 3→16 (no padding) → ReLU → max-pool 3×3/2 (pad 1)    32×32 → 28×28 → 14×14
    conv 3×3 16→32 (pad 1) → ReLU → max-pool 3×3/2 (pad 1)        14×14 → 7×7
    conv 3×3 32→32 (pad 1) → ReLU → flatten → linear 1568→classes

    The first convolution has no padding so that shifting the input by a constant is
    exactly a change of its bias (see ``fit``).  Its weights start 10× smaller than He's
    rule: with a short training run the learned oriented, coloured edges would otherwise
    stay buried under the random initial pattern (the filters still grow to their size).
    """
    rng = np.random.default_rng(seed)

    def he(*shape, gain=1.0):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * gain * np.sqrt(2.0 / fan_in)).astype(np.float32)

    def zeros(n):
        return np.zeros(n, np.float32)

    return nn.Sequential(
        nn.Conv2d(he(16, 3, 5, 5, gain=0.1), zeros(16), padding=0), nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(he(32, 16, 3, 3), zeros(32), padding=1), nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(he(32, 32, 3, 3), zeros(32), padding=1), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(he(num_classes, 32 * 7 * 7, gain=0.5), zeros(num_classes)),
        input_shape=(3, 32, 32),
    )


def builtin_model(name: str, seed: int = 0) -> Tuple[nn.Sequential, Tuple[int, int, int]]:
    """Seeded random-weight feature stacks (no downloads) and the embedded trained model.

    ``"zfnet"``: ZFNet's layer pattern (7×7/2 conv, 3×3/2 overlapping pools, 5×5/2 conv,
    three 3×3 convs, a linear head) at reduced width, 3×64×64 input; ``"vgg"``: three VGG
    blocks (two 3×3 convs and a 2×2/2 pool each) at reduced width, 3×32×32 input;
    ``"embedded"``: ``minideconv.data.load_model()``.  Returns (net, input_shape)."""
    name = checks.check_choice(name, "name", BUILTIN)
    if name == "embedded":
        from .data import load_model
        net = load_model()
        return net, net.input_shape
    rng = np.random.default_rng(seed)

    def conv(c_in, c_out, k, **kw):  # He initialisation keeps activations O(1)
        w = rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / (c_in * k * k))
        return nn.Conv2d(w, 0.1 * rng.standard_normal(c_out), **kw)

    if name == "zfnet":
        layers = [conv(3, 12, 7, stride=2, padding=1), nn.ReLU(),
                  nn.MaxPool2d(3, 2, padding=1),
                  conv(12, 24, 5, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),
                  conv(24, 32, 3, padding=1), nn.ReLU(),
                  conv(32, 32, 3, padding=1), nn.ReLU(),
                  conv(32, 24, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
                  nn.Flatten()]
        shape = (3, 64, 64)
        features = int(np.prod(nn.Sequential(*layers).layer_shapes(shape)[-1]))
        layers.append(nn.Linear(rng.standard_normal((10, features)) / np.sqrt(features)))
        return nn.Sequential(*layers, input_shape=shape), shape
    layers, c_in = [], 3                    # "vgg"
    for width in (8, 16, 32):
        layers += [conv(c_in, width, 3, padding=1), nn.ReLU(),
                   conv(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2)]
        c_in = width
    return nn.Sequential(*layers, input_shape=(3, 32, 32)), (3, 32, 32)
