"""from_torch on the networks people use today, in torchvision's layouts
(tests/support/modern_networks.py, random weights, float64): MobileNetV2 (ReLU6, depthwise
convolutions, inverted residuals), EfficientNet-B0 (SiLU, squeeze-and-excitation, in-place
residual adds), DenseNet-121 (``torch.cat`` of a one-tensor list), GoogLeNet (container
names), ConvNeXt-T (permute, LayerNorm, Linear on channels-last, GELU, layer scale) and
U-Nets decoding by ConvTranspose2d, nearest and bilinear upsampling.

Each must give torch's outputs (≤ 1e-10) and, under the three rules, projections at leaf
and container names equal to the independent torch reference of the rule table
(tests/support/torch_reference.py: an autograd Function at every rectifier, module or
function; autograd's derivative at every other operation) to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: interop tests skipped")

from support import modern_networks  # noqa: E402
from support.torch_reference import RULES, TorchReference, strongest_unit  # noqa: E402

from minideconv import visualize  # noqa: E402
from minideconv.interop.torch import from_torch  # noqa: E402

pytestmark = pytest.mark.torch
FORWARD_TOLERANCE = 1e-10
PROJECTION_TOLERANCE = 1e-6
N_LEAVES = 5          # leaves projected per network, spread from the input to the output
N_CONTAINERS = 3      # container modules projected per network


def rel_error(ours, reference):
    scale = float(np.max(np.abs(reference)))
    diff = float(np.max(np.abs(ours - reference)))
    return diff / scale if scale > 0 else diff


def _spread(names, count):
    """``count`` names spread evenly over ``names``, the last included."""
    if len(names) <= count:
        return list(names)
    picks = np.linspace(0, len(names) - 1, count).round().astype(int)
    return [names[i] for i in sorted(set(picks))]


class Case:
    """One layout: the torch model, its conversion, two images and the reference."""

    def __init__(self, name):
        self.model, self.shape = modern_networks.build(name)
        self.net = from_torch(self.model, input_shape=self.shape)
        self.x = np.random.default_rng(7).standard_normal((2,) + self.shape)
        self.ref = TorchReference(self.model)

    def torch_output(self):
        with torch.no_grad():
            return self.model(torch.from_numpy(self.x)).numpy()

    def hooked_outputs(self, names):
        """The output a forward hook on each module sees (the module's own value)."""
        seen, handles = {}, []
        modules = dict(self.model.named_modules())
        for name in names:
            def hook(module, inputs, output, name=name):
                seen.setdefault(name, output.detach().clone().numpy())
            handles.append(modules[name].register_forward_hook(hook))
        try:
            with torch.no_grad():
                self.model(torch.from_numpy(self.x))
        finally:
            for handle in handles:
                handle.remove()
        return seen

    def leaves(self):
        """Leaf nodes of the network that the reference also names, the logits last —
        those whose torch value is laid out as ours (not the (N, H, W, C) values inside
        a channels-last region)."""
        known = set(self.ref.names)
        trace = self.net.trace(self.x)
        same = [n for n in self.net.names if n in known and
                self.ref.activation(self.x, n).shape ==
                trace.outputs[self.net.index(n)].shape]
        return _spread(same, N_LEAVES)

    def containers(self):
        return _spread(sorted(self.net.aliases, key=self.net.index), N_CONTAINERS)

    def returned_node(self, container):
        """The reference's name of the fx node a container's call returns, found from
        torch alone: the last node whose module stack holds the container."""
        inside = [node for node in self.ref.traced.graph.nodes
                  if container in [path for path, _ in
                                   (node.meta.get("nn_module_stack") or {}).values()]]
        last = inside[-1]
        return last.target if last.op == "call_module" else last.name

    def ours(self, name, unit, rule):
        position = unit[1:] if len(unit) == 3 else None
        return visualize.project(self.net, self.x, name, unit[0], position=position,
                                 rule=rule)


_BUILT = {}


def get_case(name):
    if name not in _BUILT:
        _BUILT[name] = Case(name)
    return _BUILT[name]


@pytest.fixture(params=list(modern_networks.LAYOUTS))
def case(request):
    return get_case(request.param)


def test_outputs_equal_torch(case):
    expected = case.torch_output()
    ours = case.net(case.x)
    assert ours.shape == expected.shape
    assert rel_error(ours, expected) <= FORWARD_TOLERANCE


def test_every_container_name_is_the_value_its_forward_hook_sees(case):
    containers = sorted(case.net.aliases)
    assert containers, "no container names"
    hooked = case.hooked_outputs(containers)
    trace = case.net.trace(case.x)
    for name in containers:
        ours = trace.outputs[case.net.index(name)]
        assert rel_error(ours, hooked[name]) <= FORWARD_TOLERANCE, name


@pytest.mark.parametrize("rule", RULES)
def test_projections_at_leaves_equal_the_torch_reference(case, rule):
    for name in case.leaves():
        unit = strongest_unit(case.ref.activation(case.x, name))
        expected = case.ref.project(case.x, name, unit, rule)
        ours = case.ours(name, unit, rule)
        assert rel_error(ours, expected) <= PROJECTION_TOLERANCE, (name, rule)


@pytest.mark.parametrize("rule", RULES)
def test_projections_at_containers_equal_the_torch_reference(case, rule):
    hooked = case.hooked_outputs(case.containers())
    for name in case.containers():
        node = case.returned_node(name)
        assert rel_error(case.ref.activation(case.x, node), hooked[name]) == 0, name
        unit = strongest_unit(hooked[name])
        expected = case.ref.project(case.x, node, unit, rule)
        ours = case.ours(name, unit, rule)
        assert rel_error(ours, expected) <= PROJECTION_TOLERANCE, (name, rule)
