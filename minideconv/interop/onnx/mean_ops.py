"""The ONNX averages over (H, W): ReduceMean, and the gather chain of an adaptive pool.

``ReduceMean`` over axes (2, 3) is an ``AdaptiveAvgPool2d(1)`` (then a ``Flatten`` if
keepdims=0).  For an adaptive average pool whose windows all have one length
(e.g. 1×1 → 7×7), PyTorch's exporter writes four nodes instead::

    Transpose(perm 2,3,0,1) → GatherND(window indices) → Transpose(perm 4,5,0,1,2,3)
        → ReduceMean(the two window axes)

The first three are kept as ``PendingPool`` steps; the ReduceMean that ends the chain
checks that the indices are exactly the pool's windows and adds one
``AdaptiveAvgPool2d(output size)``.  A Transpose of a constant is evaluated.

Each translation is ``f(reader, node, attrs)`` with ``reader`` the
``reader.GraphReader``; ``OPERATIONS`` maps op_type to it.
"""

from __future__ import annotations

import numpy as np

from ... import nn
from ...geometry import adaptive_windows
from .values import Activation, PendingPool


def reduce_mean(reader, node, attrs):
    """ReduceMean over (H, W) → AdaptiveAvgPool2d(1) (and Flatten if keepdims=0), or
    the end of a gather chain → AdaptiveAvgPool2d(output size)."""
    value = reader.value(node, 0)
    axes = reader.axes(node, attrs, 1)
    keepdims = attrs.get("keepdims", 1)
    if isinstance(value, PendingPool) and value.stage == "gathered, N C first":
        if sorted(a % 6 for a in axes) != [3, 5] or keepdims:
            reader.fail(node, "ends a gather chain by averaging other axes than the "
                              "two window axes")
        return _adaptive_from_gather(reader, node, value)
    x = reader.activation(node, 0, ndim=4)
    if axes is None or sorted(a % 4 for a in axes) != [2, 3]:
        reader.fail(node, f"averages over axes {axes}; minideconv reads the mean over "
                          f"(H, W) only")
    if keepdims:
        return reader.add_layer(node, nn.AdaptiveAvgPool2d(1), [x])
    pooled = reader.add_layer(node, nn.AdaptiveAvgPool2d(1), [x])
    reader.tensor_of[pooled.node] = None     # (N, C, 1, 1): no ONNX tensor holds it
    reader.add_layer(node, nn.Flatten(), [pooled])


def transpose(reader, node, attrs):
    """Transpose: of a constant, evaluated; of an activation, a step of the gather
    chain (``layouts.transpose``, the op's translation, hands these here and reads
    the NHWC ones itself)."""
    value = reader.value(node, 0)
    perm = list(attrs.get("perm", []))
    name = node.name or node.output[0]
    if isinstance(value, Activation) and perm == [2, 3, 0, 1] and \
            len(value.shape) == 3:
        return reader.set_value(node, PendingPool("H W first", value, [name]))
    if isinstance(value, PendingPool) and value.stage == "gathered" and \
            perm == [4, 5, 0, 1, 2, 3]:
        return reader.set_value(node, PendingPool("gathered, N C first", value.source,
                                                  value.names + [name], value.indices))
    if isinstance(value, np.ndarray):
        return reader.set_value(node, np.transpose(value, perm or None))
    reader.fail(node, f"perm={perm}: minideconv reads a Transpose only as part of the "
                      f"Transpose → GatherND → Transpose → ReduceMean chain of an "
                      f"adaptive average pool")


def gather_nd(reader, node, attrs):
    """GatherND: the window indices of the gather chain (read nowhere else)."""
    value = reader.value(node, 0)
    indices = reader.constant(node, 1, "indices")
    if not (isinstance(value, PendingPool) and value.stage == "H W first") or \
            attrs.get("batch_dims", 0) != 0 or indices.ndim != 5 or \
            indices.shape[-1] != 2:
        reader.fail(node, "is read only inside the Transpose → GatherND → Transpose → "
                          "ReduceMean chain of an adaptive average pool")
    reader.set_value(node, PendingPool("gathered", value.source, value.names +
                                       [node.name or node.output[0]], indices))


def _adaptive_from_gather(reader, node, pending):
    """y[n, c, i, j] = mean over (a, b) of x[n, c, idx[i, a, j, b]]: an adaptive
    average pool when idx lists exactly its windows (all of one length per axis)."""
    (h, w), idx = pending.source.shape[1:], pending.indices
    out_h, k_h, out_w, k_w, _ = idx.shape
    rows, cols = adaptive_windows(h, out_h), adaptive_windows(w, out_w)
    expected = np.zeros_like(idx)
    if all(r.stop - r.start == k_h for r in rows) and \
            all(c.stop - c.start == k_w for c in cols):
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                expected[i, :, j, :, 0] = (r.start + np.arange(k_h))[:, None]
                expected[i, :, j, :, 1] = (c.start + np.arange(k_w))[None, :]
        if np.array_equal(expected, idx):
            return reader.add_layer(node, nn.AdaptiveAvgPool2d((out_h, out_w)),
                                    [pending.source])
    reader.fail(node, f"the gather chain {pending.names} averages windows that are not "
                      f"those of an adaptive average pool of ({h}, {w}) to "
                      f"({out_h}, {out_w})")


OPERATIONS = {"ReduceMean": reduce_mean, "Transpose": transpose, "GatherND": gather_nd}
