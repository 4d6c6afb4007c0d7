"""Batch norms merged into the convolutions before them, so that LRP sees one affine map.

A BatchNorm2d at inference is y = s ⊙ x + t per channel (``BatchNorm2d.scale_and_shift``).
After a convolution z = W * x + b it gives

    s ⊙ (W * x + b) + t = (s W) * x + (s b + t),

one convolution with weights W′ = s W (each output channel's filter scaled) and bias
b′ = s b + t.  LRP's rules are not invariant under splitting an affine map in two (a rule
at the convolution would see z, not y), so the merge comes first — zennit's
``SequentialMergeBatchNorm`` canonizer does the same for torch models.
"""

from __future__ import annotations

from ..nn import NETWORK_INPUT, BatchNorm2d, Conv2d, Graph, Identity, Network

__all__ = ["merge_batch_norms"]


def merged_convolution(conv: Conv2d, batch_norm: BatchNorm2d) -> Conv2d:
    """The convolution W′ = s W, b′ = s b + t that computes batch_norm(conv(x)), with
    (s, t) the batch norm's per-channel scale and shift (b = 0 for a conv without bias)."""
    scale, shift = batch_norm.scale_and_shift()
    weight = conv.weight * scale[:, None, None, None]
    bias = shift if conv.bias is None else conv.bias * scale + shift
    return Conv2d.from_config(conv.config(), {"weight": weight.astype(conv.weight.dtype),
                                              "bias": bias.astype(conv.weight.dtype)})


def merge_batch_norms(net: Network) -> Network:
    """A new network computing the same outputs as ``net``, each BatchNorm2d merged into
    the Conv2d it reads (``merged_convolution``) and left in place as an ``Identity``
    (names, indices and aliases unchanged).  ``net`` is not modified.

    Refused (ValueError naming the batch norm): a batch norm that does not read a Conv2d's
    output, or whose Conv2d's output is also read by another layer (that reader needs
    the unnormalised z, which would no longer exist)."""
    layers = list(net.layers)
    for i, layer in enumerate(net.layers):
        if not isinstance(layer, BatchNorm2d):
            continue
        (j,) = net.inputs_of(i)
        if j == NETWORK_INPUT or not isinstance(net.layers[j], Conv2d):
            below = "the network's input" if j == NETWORK_INPUT else net.describe(j)
            raise ValueError(f"{net.describe(i)} reads {below}, not a Conv2d: only a batch "
                             f"norm right after a convolution can be merged into it")
        readers = net.consumers_of(j) if isinstance(net, Graph) else (i,)
        if tuple(readers) != (i,):
            others = ", ".join(net.describe(k) for k in readers if k != i)
            raise ValueError(f"{net.describe(i)} cannot be merged into {net.describe(j)}: "
                             f"that convolution's output is also read by {others}")
        layers[j] = merged_convolution(net.layers[j], layer)
        layers[i] = Identity()
    return net.with_layers(layers)
