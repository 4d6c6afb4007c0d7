"""A torch model exported with ``torch.onnx.export`` and read back with ``from_onnx``, for
the ONNX import tests of every family of networks.

``export(model, shape, directory, **options)`` exports the float32 model on images of
``shape`` and returns ``dict(model, shape, x, path, proto, net)``; ``in_float64(exported)``
gives (net, x, model) in float64 for the comparisons with torch, and puts the model back
in float32 afterwards (the fixtures share it across tests).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch

from minideconv.interop import onnx as md_onnx
from minideconv.interop.onnx import from_onnx

N_IMAGES = 2


def export(model, shape, directory, **options):
    """The float32 ``model`` exported to ``directory/model.onnx`` on N_IMAGES images of
    ``shape`` (C, H, W), and ``from_onnx`` of the file (read once, weights and all)."""
    model = model.float()
    x = np.random.default_rng(0).standard_normal((N_IMAGES,) + shape).astype(np.float32)
    path = directory / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(x),), str(path), input_names=["x"],
                          **options)
    proto = md_onnx.load_model(path)
    return dict(model=model, shape=shape, x=x, path=path, proto=proto,
                net=from_onnx(proto, input_shape=shape))


@contextlib.contextmanager
def in_float64(exported):
    """``(net, x, model)`` of an ``export`` in float64 (the file's float32 weights, cast)."""
    try:
        yield (exported["net"].astype(np.float64), exported["x"].astype(np.float64),
               exported["model"].double())
    finally:
        exported["model"].float()
