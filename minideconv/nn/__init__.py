"""Layers and networks, with a forward pass that remembers the way back.

Every layer is a map ``y = f(x)`` on NCHW arrays (``Linear`` on (N, features)).  Its
``forward(x)`` returns ``(y, record)``: ``record`` holds exactly what the way back needs —

=================  ============================  ==========================================
layer              record                        backward(r) — the signal passed down
=================  ============================  ==========================================
Conv2d             the input x                   Wᵀ r = conv_transpose2d(r, W)
ReLU               the input x                   D(x > 0) r, or the deconvnet / guided rule
MaxPool2d          the switches s, input size    P(s)ᵀ r = max_unpool2d(r, s)
AvgPool2d          the input size                Aᵀ r: each value spread over its window
AdaptiveAvgPool2d  the input size                Aᵀ r, the windows set by the sizes
AdaptiveMaxPool2d  the switches s, input size    P(s)ᵀ r = adaptive_max_unpool2d(r, s)
BatchNorm2d        the input x (weight grads)    s · r, the same per-channel scale
Dropout, Identity  nothing                       r (dropout is the identity at inference)
Flatten            the input shape               r reshaped back
Linear             the input x                   r W  (the transpose of x ↦ x Wᵀ)
ConvTranspose2d    the input x (weight grads)    W r = conv2d(r, W): the convolution it transposes
Upsample           the input size                Aᵀ r: each value back to the pixels it read
Pad                nothing                       Pᵀ r: the centre, each border cell added to its source
Add                the number of inputs          (r, r, …): the signal copied to each input
Concat             each input's channel count    r split into each input's channels
=================  ============================  ==========================================

With ``rule="backprop"`` the chain of ``backward`` calls is the chain rule, so it
computes gradients (``minideconv.train`` uses it); with ``"deconvnet"`` or ``"guided"``
only the ReLU steps change (``minideconv.visualize``).  The layers with weights also
give their weight gradients, ``param_grads(r, record)``.

Layers are joined into a network in one of two ways, with one interface
(``network.Network``): ``Sequential`` (each layer reads the previous one) and ``Graph``
(each layer reads any earlier ones — residual sums, concatenations; the way back adds the
signals where a value fanned out).  Layers are addressed by index or by ``net.names``.

=============  =========================================================================
``layers``     the one-input layers above, but for pooling
``pooling``    ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d``
``combine``    ``Add`` and ``Concat``, the layers that join branches
``resampling`` ``ConvTranspose2d``, ``Upsample`` and ``Pad``, the layers that enlarge an image
``network``    ``Network`` and ``Trace``: indices and names, shapes, receptive fields
``sequential`` ``Sequential``
``graph``      ``Graph`` and ``Node``
``files``      ``load`` (and ``save``, which is ``Network.save``): .npz files of plain
               arrays and a JSON architecture
=============  =========================================================================
"""

from .combine import Add, Concat
from .files import GRAPH_FORMAT, LAYER_TYPES, SEQUENTIAL_FORMAT, load, save
from .graph import Graph, Node
from .layers import BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Layer, Linear, ReLU
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AdaptivePool, AvgPool2d, MaxPool2d
from .resampling import ConvTranspose2d, Pad, Upsample
from .network import NETWORK_INPUT, Network, Trace
from .sequential import Sequential

__all__ = [
    "Layer", "Conv2d", "ReLU", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d",
    "Dropout", "Identity", "Flatten", "Linear", "Add", "Concat", "LAYER_TYPES",
    "ConvTranspose2d", "Upsample", "Pad", "AdaptiveMaxPool2d", "AdaptivePool",
    "Network", "Trace", "NETWORK_INPUT", "Sequential", "Graph", "Node", "save", "load",
    "SEQUENTIAL_FORMAT", "GRAPH_FORMAT",
]
