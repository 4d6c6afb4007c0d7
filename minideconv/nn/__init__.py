"""Layers and networks, with a forward pass that remembers the way back.

Every layer is a map ``y = f(x)`` on NCHW arrays (``Linear`` on (N, features)).  Its
``forward(x)`` returns ``(y, record)``: ``record`` holds exactly what the way back needs —

=================  ============================  ==========================================
layer              record                        backward(r) — the signal passed down
=================  ============================  ==========================================
Conv2d             the input x                   Wᵀ r = conv_transpose2d(r, W)
ReLU               the input x                   D(x > 0) r, or the deconvnet / guided rule
ClippedReLU,       the input x                   f′(x) r, or the deconvnet rect_α(r) / the
LeakyReLU, PReLU                                 guided f′(x)·rect_α(r) (``minideconv.rules``)
SiLU, GELU, ELU,   the input x                   f′(x) r under every rule (smooth: not a
Sigmoid, Tanh,                                   rectifier)
Hardswish,
Hardsigmoid
MaxPool2d          the switches s, input size    P(s)ᵀ r = max_unpool2d(r, s)
AvgPool2d          the input size                Aᵀ r: each value spread over its window
AdaptiveAvgPool2d  the input size                Aᵀ r, the windows set by the sizes
AdaptiveMaxPool2d  the switches s, input size    P(s)ᵀ r = adaptive_max_unpool2d(r, s)
BatchNorm2d        the input x (weight grads)    s · r, the same per-channel scale
Dropout, Identity  nothing                       r (dropout is the identity at inference)
Flatten            the input shape               r reshaped back
Linear             the input x                   r W  (the transpose of x ↦ x Wᵀ)
Softmax            its output p                  p ⊙ (r − ⟨p, r⟩) = (diag(p) − p pᵀ) r
LocalResponseNorm  the input a                   Jᵀ r, its exact Jacobian
ChannelShuffle     nothing                       Pᵀ r: the channels put back in place
ConvTranspose2d    the input x (weight grads)    conv2d(r, W): the convolution it transposes
Upsample           the input size                Aᵀ r: each value back to the pixels read
Pad                nothing                       Pᵀ r: border cells added to their sources
Add                the number of inputs          (r, r, …): the signal copied to each input
Concat             each input's channel count    r split into each input's channels
Mul                both inputs a, b              (r ⊙ b, r ⊙ a), summed where broadcast
ChannelAffine      the input x (weight grads)    s · r, the per-channel (or single) scale
ChannelLayerNorm   x̂ and 1/σ at each position    (1/σ)(γr − mean_c γr − x̂ mean_c(γr x̂))
GroupNorm          x̂ and 1/σ of each group       the same, the means over each group
=================  ============================  ==========================================

With ``rule="backprop"`` the chain of ``backward`` calls is the chain rule, so it
computes gradients (``minideconv.train`` uses it); with ``"deconvnet"`` or ``"guided"``
only the rectifier steps change (``minideconv.visualize``).  The layers with weights also
give their weight gradients, ``param_grads(r, record)``.

Layers are joined into a network in one of two ways, with one interface
(``network.Network``): ``Sequential`` (each layer reads the previous one) and ``Graph``
(each layer reads any earlier ones — residual sums, concatenations; the way back adds the
signals where a value fanned out).  Layers are addressed by index or by ``net.names``.

=================  ========================================================================
``layers``         the one-input layers above, but for pooling and the activations
``activations``    the rectifiers beside ReLU (``ClippedReLU``, ``LeakyReLU``, ``PReLU``)
                   and the smooth activations
``pooling``        ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d``
``channel_maps``   ``Softmax``, ``LocalResponseNorm``, ``ChannelShuffle``: maps across the
                   channels at each position
``combine``        ``Add`` and ``Concat``, the layers that join branches
``products``       ``Mul`` (a ⊙ b, a gate broadcast) and ``ChannelAffine`` (s·x + t)
``normalization``  ``ChannelLayerNorm`` and ``GroupNorm``: each image's own statistics
``resampling``     ``ConvTranspose2d``, ``Upsample`` and ``Pad``, the layers that enlarge
                   an image
``network``        ``Network`` and ``Trace``: indices and names, shapes, receptive fields
``sequential``     ``Sequential``
``graph``          ``Graph`` and ``Node``
``files``          ``load`` (and ``save``, which is ``Network.save``): .npz files of plain
                   arrays and a JSON architecture
=================  ========================================================================
"""

from .activations import (ELU, GELU, RECTIFIER_LAYERS, ClippedReLU, Hardsigmoid,
                          Hardswish, LeakyReLU, PReLU, Rectifier, Sigmoid, SiLU,
                          SmoothActivation, Tanh)
from .channel_maps import ChannelShuffle, LocalResponseNorm, Softmax
from .combine import Add, Concat
from .files import GRAPH_FORMAT, LAYER_TYPES, SEQUENTIAL_FORMAT, load, save
from .graph import Graph, Node
from .layers import BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Layer, Linear, ReLU
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AdaptivePool, AvgPool2d, MaxPool2d
from .resampling import ConvTranspose2d, Pad, Upsample
from .network import NETWORK_INPUT, Network, Trace
from .normalization import ChannelLayerNorm, GroupNorm
from .products import ChannelAffine, Mul
from .sequential import Sequential

__all__ = [
    "Layer", "Conv2d", "ReLU", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d",
    "Dropout", "Identity", "Flatten", "Linear", "Add", "Concat", "Softmax",
    "LocalResponseNorm", "ChannelShuffle", "Mul", "ChannelAffine", "ChannelLayerNorm",
    "GroupNorm", "LAYER_TYPES",
    "ConvTranspose2d", "Upsample", "Pad", "AdaptiveMaxPool2d", "AdaptivePool",
    "Network", "Trace", "NETWORK_INPUT", "Sequential", "Graph", "Node", "save", "load",
    "SEQUENTIAL_FORMAT", "GRAPH_FORMAT", "Rectifier", "ClippedReLU", "LeakyReLU", "PReLU",
    "RECTIFIER_LAYERS", "SmoothActivation", "SiLU", "GELU", "ELU", "Sigmoid", "Tanh",
    "Hardswish", "Hardsigmoid",
]
