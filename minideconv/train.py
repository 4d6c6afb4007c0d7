"""Training the embedded network from scratch with minideconv's own operators.

* loss: softmax cross-entropy.  For logits z (N, K) and labels t,

      L = −(1/N) Σ_n log softmax(z_n)[t_n],      ∂L/∂z = (softmax(z) − onehot(t)) / N

* gradients: ``Sequential.backward`` with ``rule="backprop"`` carries ∂L/∂y down the
  chain (conv_transpose2d at convolutions, max_unpool2d at pools, the ReLU mask), and at
  every layer with weights ``param_grads`` turns the signal into ∂L/∂W — for a
  convolution that is ``conv2d_weight_grad``, the correlation of its input with ∂L/∂y.
* optimiser: SGD with momentum and weight decay λ (not on biases):

      v ← μ v − η (∂L/∂W + λ W),     W ← W + v

  with the learning rate η following a cosine from η₀ down to 0 over the run.
* centred inputs: images lie in [0, 1], and SGD on raw inputs with mean 0.5 stalls
  (every first-layer weight gradient shares a large common component).  ``fit`` trains on
  x − m (m = 0.5) instead, and keeps the network a function of the raw x by moving the
  shift into the first convolution's bias — exact, because that convolution has no padding:

      W (x − m) + b = W x + (b − m Σ_{c,i,j} W[o, c, i, j])
"""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from . import nn
from .models import build_model

DEFAULTS = dict(epochs=3, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4, seed=0,
                n_train=20000)


def softmax_cross_entropy(logits, labels):
    """``(loss, ∂loss/∂logits)`` for logits (N, K) and integer labels (N,)."""
    shifted = logits - logits.max(axis=1, keepdims=True)        # exp cannot overflow
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    loss = -log_probs[np.arange(n), labels].mean()
    grad = np.exp(log_probs)
    grad[np.arange(n), labels] -= 1.0
    return float(loss), grad / n


def loss_and_grads(net: nn.Sequential, images, labels):
    """``(loss, grads)``: grads[i] is layer i's ``{name: ∂L/∂weight}``."""
    trace = net.trace(images)
    loss, grad = softmax_cross_entropy(trace.outputs[-1], labels)
    grads = [{} for _ in net.layers]
    for i in range(len(net.layers) - 1, -1, -1):
        layer, record = net.layers[i], trace.records[i]
        grads[i] = layer.param_grads(grad, record)
        if i > 0:       # the input image needs no gradient
            grad = layer.backward(grad, record, rule="backprop")
    return loss, grads


class SGD:
    """SGD with momentum μ and weight decay λ on the weights (not on biases)."""

    def __init__(self, net, lr=0.05, momentum=0.9, weight_decay=5e-4):
        self.net, self.lr, self.momentum, self.weight_decay = net, lr, momentum, weight_decay
        self.velocity = [{k: np.zeros_like(v) for k, v in layer.params().items()}
                         for layer in net.layers]

    def step(self, grads):
        for layer, layer_grads, layer_velocity in zip(self.net.layers, grads, self.velocity):
            for name, g in layer_grads.items():
                w = getattr(layer, name)
                if name == "weight" and self.weight_decay:
                    g = g + self.weight_decay * w
                v = layer_velocity[name]
                v *= self.momentum
                v -= self.lr * g.astype(w.dtype)
                w += v          # in place: the layer keeps the same array


def shift_input(net, shift):
    """Change the first convolution's bias so that ``net(x − shift)`` afterwards equals
    ``net(x)`` before: b ← b + shift · Σ_{c,i,j} W[o, c, i, j]."""
    first = net.layers[0]
    if not (isinstance(first, nn.Conv2d) and first.padding == (0, 0)
            and first.bias is not None):
        raise ValueError("input_shift needs a first Conv2d with a bias and no padding "
                         "(pass input_shift=0 otherwise)")
    first.bias += np.float32(shift) * first.weight.sum(axis=(1, 2, 3)).astype(first.bias.dtype)


def predict(net, images, batch_size=500):
    """Class indices argmax(net(x)) for (N, 3, H, W) images, in batches."""
    return np.concatenate([net(images[i:i + batch_size]).argmax(axis=1)
                           for i in range(0, len(images), batch_size)])


def accuracy(net, images, labels, batch_size=500) -> float:
    return float((predict(net, images, batch_size) == labels).mean())


def fit(net, images, labels, epochs=8, batch_size=64, lr=0.05, momentum=0.9,
        weight_decay=5e-4, seed=0, input_shift=0.5, progress=True):
    """Train ``net`` in place on raw images; returns the mean loss of each epoch.

    Internally the network sees ``images − input_shift`` (module docstring)."""
    rng = np.random.default_rng(seed)
    shift = np.float32(input_shift)
    if shift:
        shift_input(net, shift)       # now net(x − shift) = the old net(x)
    optimiser = SGD(net, lr, momentum, weight_decay)
    steps_per_epoch = len(images) // batch_size
    total = epochs * steps_per_epoch
    history = []
    bar = tqdm(total=total, desc="training", unit="batch", disable=not progress)
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        losses = []
        for b in range(steps_per_epoch):
            optimiser.lr = lr * 0.5 * (1 + np.cos(np.pi * step / total))
            idx = order[b * batch_size:(b + 1) * batch_size]
            loss, grads = loss_and_grads(net, images[idx] - shift, labels[idx])
            optimiser.step(grads)
            losses.append(loss)
            step += 1
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses[-50:]):.3f}")
        history.append(float(np.mean(losses)))
    bar.close()
    if shift:
        shift_input(net, -shift)      # back to a network of the raw images
    return history


def train_default(out=None, epochs=DEFAULTS["epochs"], seed=DEFAULTS["seed"],
                  n_train=DEFAULTS["n_train"], progress=True, log=print):
    """Train the shipped network on ``load_dataset("train")`` and report its test accuracy.

    Returns ``(net, test_accuracy, seconds)``; writes the weights to ``out`` if given."""
    from .data import load_dataset

    images, labels = load_dataset("train", n=n_train)
    test_images, test_labels = load_dataset("test")
    net = build_model(seed)
    start = time.perf_counter()
    history = fit(net, images, labels, epochs=epochs, batch_size=DEFAULTS["batch_size"],
                  lr=DEFAULTS["lr"], momentum=DEFAULTS["momentum"],
                  weight_decay=DEFAULTS["weight_decay"], seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    acc = accuracy(net, test_images, test_labels)
    log(f"loss per epoch: {', '.join(f'{h:.3f}' for h in history)}")
    log(f"test accuracy: {acc:.2%} on {len(test_labels)} images; training took "
        f"{seconds:.0f} s")
    if out is not None:
        net.save(out)
        log(f"weights written to {out}")
    return net, acc, seconds
