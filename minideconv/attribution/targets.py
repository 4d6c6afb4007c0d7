"""What every attribution method shares: the images, the class each map explains, the
seed at its logit, and the way down from it.

Every method of this package explains one *logit* z_t(x) — the network's output before a
closing softmax (``Network.output_layer``), of class t — for each image.  Its seed is the
one-hot signal e_t at the logits (1 at z_t, 0 elsewhere, one t per image), so that
passing it down the chain of transposes under the gradient's rule gives

    net.backward(e_t, trace, rule="backprop") = ∂z_t/∂x,

and under another rule (deconvnet, guided) that rule's map of the same unit.  Stopping
the way down at a layer A (``stop=``) gives ∂z_t/∂A, Grad-CAM's gradient.

Here: ``as_batch`` (the images as (N, C, H, W), and whether one image was given),
``check_targets`` (one class per image), ``logit_seed``, ``traced_logits`` and
``backward_from_logits``, which every method calls.
"""

from __future__ import annotations

import numpy as np

from .. import checks
from ..nn import Network
from ..visualize.projection import as_images

__all__ = ["check_network", "as_batch", "check_targets", "logit_seed", "traced_logits",
           "backward_from_logits", "logits_of", "targets_for"]


def check_network(net) -> Network:
    """``net`` must be a minideconv network (``Sequential`` or ``Graph``)."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a minideconv network (nn.Sequential or nn.Graph; "
                        f"from_torch converts a torch model), got {type(net).__name__}")
    return net


def as_batch(x, name="x"):
    """``(images, single)``: x as a float (N, C, H, W) array — an image (C, H, W), a batch,
    a sample name or a file path (``minideconv.data.load_image``) — and whether a single
    image was given (then every method returns one map, not a batch of one).  x itself is
    never written to."""
    return as_images(x, name)


def check_targets(target, count: int, classes: int) -> np.ndarray:
    """``target`` as an int64 array of ``count`` class indices in [0, ``classes``): one int
    for every image, or a sequence (list, tuple, 1-d integer array) of one int per image."""
    if checks.is_int(target):
        values = np.full(count, int(target), np.int64)
    elif isinstance(target, (list, tuple, np.ndarray)):
        values = np.asarray(target)
        if values.ndim != 1 or len(values) != count or \
                not all(checks.is_int(t) for t in values.tolist()):
            raise TypeError(f"target must be an int or one int per image ({count}), got "
                            f"{target!r}")
        values = values.astype(np.int64)
    else:
        raise TypeError(f"target must be a class index (an int) or one int per image, got "
                        f"{type(target).__name__}")
    bad = values[(values < 0) | (values >= classes)]
    if bad.size:
        raise ValueError(f"target must be a class index in [0, {classes}) (the network has "
                         f"{classes} logits), got {int(bad[0])}")
    return values


def targets_for(net: Network, images, target) -> np.ndarray:
    """``check_targets`` for these images, the number of classes read off the network's
    shapes (no forward pass): before a method runs many images, a bad target fails at
    once.  The logits must be (N, classes) (``traced_logits``)."""
    check_network(net)
    shape = net.layer_shapes(images.shape[1:])[net.output_layer()]
    if len(shape) != 1:
        raise ValueError(f"the attribution methods explain a class logit: the network's "
                         f"output ({net.describe(net.output_layer())}) must be (N, "
                         f"classes), got (N,) + {shape}")
    return check_targets(target, len(images), shape[0])


def logits_of(net: Network, images) -> np.ndarray:
    """The logits (N, classes) of the images: the output of ``net.output_layer()``."""
    outputs = net.forward_outputs(images, [net.output_layer()])
    return outputs[net.output_layer()]


def logit_seed(logits, targets) -> np.ndarray:
    """e_t: zeros of the logits' shape with 1 at [n, targets[n]] for every image n."""
    seed = np.zeros_like(logits)
    seed[np.arange(len(logits)), targets] = 1
    return seed


def traced_logits(net: Network, images, target):
    """One forward pass that remembers the way back (``net.trace``) up to the logits, and
    the checked targets: ``(trace, logits_index, targets)``.  The logits must be
    (N, classes): a network whose output keeps spatial axes has no class logit to explain."""
    check_network(net)
    logits_index = net.output_layer()
    trace = net.trace(images, upto=logits_index)
    logits = trace.outputs[logits_index]
    if logits.ndim != 2:
        raise ValueError(f"the attribution methods explain a class logit: the network's "
                         f"output ({net.describe(logits_index)}) must be (N, classes), got "
                         f"shape {logits.shape}")
    return trace, logits_index, check_targets(target, len(images), logits.shape[1])


def backward_from_logits(net: Network, trace, logits_index, targets, rule="backprop",
                         stop=None):
    """Seed e_t at the logits and pass it down under ``rule``: to the input (∂z_t/∂x for
    "backprop"), or to the output of layer ``stop`` (∂z_t/∂A)."""
    seed = logit_seed(trace.outputs[logits_index], targets)
    return net.backward(seed, trace, start=logits_index, rule=rule, stop=stop)
