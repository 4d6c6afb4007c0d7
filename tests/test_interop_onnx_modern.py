"""from_onnx on today's networks (tests/support/modern_networks.py) as ``torch.onnx.export``
writes them, with both exporters (torch.export's, the default, and TorchScript's,
``dynamo=False``): the float32 import against onnxruntime node by node, the float64
import against torch's float64 model, and the logits' projection under the three rules —
the way back through every layer — against the torch reference of the rule table.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: interop tests skipped")
pytest.importorskip("onnx", reason="onnx is not installed: ONNX tests skipped")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: ONNX tests skipped")

from support import modern_networks, onnx_exports  # noqa: E402
from support.torch_reference import RULES, TorchReference, strongest_unit  # noqa: E402

from minideconv import visualize  # noqa: E402
from minideconv.interop.onnx import crosscheck_onnx  # noqa: E402

pytestmark = pytest.mark.torch
EXPORTERS = {"export": {}, "torchscript": dict(dynamo=False)}


def _rel(ours, reference):
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


@pytest.fixture(scope="module", params=[(layout, exporter)
                                        for layout in modern_networks.LAYOUTS
                                        for exporter in EXPORTERS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def exported(request, tmp_path_factory):
    layout, exporter = request.param
    options = EXPORTERS[exporter]
    if options.get("dynamo", True):
        pytest.importorskip("onnxscript")
    model, shape = modern_networks.build(layout)
    return onnx_exports.export(model, shape, tmp_path_factory.mktemp(layout), **options)


def test_forward_against_onnxruntime(exported):
    report = crosscheck_onnx(exported["proto"], exported["x"])
    assert report.nodes[-1].index == len(exported["net"].layers) - 1
    assert report.nodes[-1].rel <= 1e-5, str(report)
    assert report.passed, str(report)


def test_float64_forward_and_projections_equal_torch(exported):
    """The exporter may fold BatchNorm into the weights in float32: 1e-6, not 1e-10."""
    with onnx_exports.in_float64(exported) as (net, x, model):
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        assert _rel(net(x), expected) <= 1e-6
        ref = TorchReference(model)
        unit = strongest_unit(expected)
        for rule in RULES:
            position = unit[1:] if len(unit) == 3 else None
            ours = visualize.project(net, x, -1, unit[0], position=position, rule=rule)
            reference = ref.project(x, ref.names[-1], unit, rule)
            assert _rel(ours, reference) <= 1e-6, rule
