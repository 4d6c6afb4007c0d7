"""from_torch for any fx-traceable module: torchvision's AlexNet, VGG-16, VGG-16-BN,
ResNet-18 and a two-branch concat network (tests/support/torchvision_layouts.py)
become ``nn.Graph``s whose logits and projections (all three rules, every node — or for
VGG every conv, pool and the logits) equal an independent torch reference
(tests/support/torch_reference.py: autograd, rule ReLUs as autograd Functions, and
Captum where its module hooks apply) to 1e-10 in float64.  Also: the naming rule, the
forms of ReLU, flatten and sum fx records, in-place aliasing, errors that name the node,
to_torch round trips, save/load and receptive fields through residual blocks.

Each model is built once per module (VGG-16 holds 134M float64 weights, about 1 GB).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: interop tests skipped")
pytest.importorskip("captum", reason="Captum is not installed: interop tests skipped")

from support import torchvision_layouts as layouts  # noqa: E402
from support.torch_reference import RULES, TorchReference, strongest_unit  # noqa: E402

from minideconv import nn, visualize  # noqa: E402
from minideconv.interop.torch import compare, crosscheck, from_torch, to_torch  # noqa: E402

pytestmark = [pytest.mark.torch,   # Captum says it hooks the ReLUs, every call
              pytest.mark.filterwarnings("ignore::UserWarning:captum")]
tnn = torch.nn
F = torch.nn.functional
TOLERANCE = 1e-10

#: layer types whose outputs are projected in the big networks (plus the logits)
REPRESENTATIVE = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Add,
                  nn.Concat)
BIG = ("vgg16", "vgg16_bn")


def rel_error(ours, reference):
    scale = float(np.max(np.abs(reference)))
    diff = float(np.max(np.abs(ours - reference)))
    return diff / scale if scale > 0 else diff


class Case:
    """One layout: the torch model, its conversion, two images and the reference."""

    def __init__(self, name):
        self.name = name
        self.model, self.shape = layouts.build(name)
        self.net = from_torch(self.model, input_shape=self.shape)
        self.x = np.random.default_rng(7).standard_normal((2,) + self.shape)
        self.ref = TorchReference(self.model)
        if name in BIG:
            self.nodes = [n for n, layer in zip(self.net.names, self.net.layers)
                          if isinstance(layer, REPRESENTATIVE)] + [self.net.names[-1]]
        else:
            self.nodes = list(self.net.names)
        self._units = {}

    def unit(self, name):
        """The reference's strongest unit of image 0 at node ``name``."""
        if name not in self._units:
            self._units[name] = strongest_unit(self.ref.activation(self.x, name))
        return self._units[name]

    def ours(self, name, rule):
        unit = self.unit(name)
        position = unit[1:] if len(unit) == 3 else None
        return visualize.project(self.net, self.x, name, unit[0], position=position,
                                 rule=rule)


SMALL = [name for name in layouts.LAYOUTS if name not in BIG]
_BUILT = {}      # the small layouts, built once for the whole module


def get_case(name):
    if name in BIG:                       # about 1 GB each: built when asked, then dropped
        return Case(name)
    if name not in _BUILT:
        _BUILT[name] = Case(name)
    return _BUILT[name]


@pytest.fixture(scope="module", params=list(layouts.LAYOUTS))
def case(request):
    return get_case(request.param)


@pytest.fixture(scope="module", params=SMALL)
def small_case(request):
    return get_case(request.param)


@pytest.fixture(scope="module")
def resnet():
    return get_case("resnet18")


# --------------------------------------------------------------------------- the layouts

def test_logits_equal_torch(case):
    with torch.no_grad():
        expected = case.model(torch.from_numpy(case.x)).numpy()
    assert isinstance(case.net, nn.Graph)
    assert rel_error(case.net(case.x), expected) <= TOLERANCE
    # every node's activation, too (each the value when it was computed)
    trace = case.net.trace(case.x)
    for name in case.nodes:
        ours = trace.outputs[case.net.index(name)]
        assert rel_error(ours, case.ref.activation(case.x, name)) <= TOLERANCE, name


@pytest.mark.parametrize("rule", RULES)
def test_projections_equal_the_torch_reference(case, rule):
    errors = {name: rel_error(case.ours(name, rule),
                              case.ref.project(case.x, name, case.unit(name), rule))
              for name in case.nodes}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE, f"{case.name} {rule}: {worst} {errors[worst]:.2e}"


@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_projections_equal_captum_where_its_hooks_apply(case, rule):
    """Captum hooks nn.ReLU modules: AlexNet and VGG (every ReLU a module called once);
    ResNet reuses its ReLUs and the concat network's are functions, so they are checked
    through to_torch, which gives one ReLU module per ReLU."""
    if case.ref.captum_applies():
        ref, net, x = case.ref, case.net, case.x
    else:
        assert case.name in ("resnet18", "concat")
        model = to_torch(case.net)
        ref, net, x = TorchReference(model), from_torch(model, case.shape), case.x
        assert ref.captum_applies()
    names = [n for n in case.nodes if ref.is_module(n)]
    names = names[::max(1, len(names) // 6)] + [names[-1]]   # a few across the depth
    for name in names:
        unit = strongest_unit(ref.activation(x, name))
        ours = visualize.project(net, x, name, unit[0],
                                 position=unit[1:] if len(unit) == 3 else None, rule=rule)
        assert rel_error(ours, ref.captum_project(x, name, unit, rule)) <= TOLERANCE, name


EXPECTED_NAMES = {
    "alexnet": [f"features.{i}" for i in range(13)] + ["avgpool", "flatten"]
    + [f"classifier.{i}" for i in range(7)],
    "concat": ["stem", "relu", "branch3", "relu_1", "branch5a", "relu_2", "branch5b",
               "relu_3", "cat", "pool", "drop", "view", "head"],
}


def test_names_are_the_qualified_names(case):
    net = case.net
    assert net.names == case.ref.names        # the reference resolves the same names
    if case.name in EXPECTED_NAMES:
        assert net.names == EXPECTED_NAMES[case.name]
    kinds = [type(layer).__name__ for layer in net.layers]
    counts = {"alexnet": dict(Dropout=2, AdaptiveAvgPool2d=1, ReLU=7, Flatten=1),
              "vgg16": dict(Conv2d=13, MaxPool2d=5, Dropout=2, Linear=3),
              "vgg16_bn": dict(Conv2d=13, BatchNorm2d=13, ReLU=15),
              "resnet18": dict(Add=8, BatchNorm2d=20, ReLU=17, Conv2d=20),
              "concat": dict(Concat=1, AvgPool2d=1, Flatten=1, ReLU=4)}[case.name]
    assert {k: kinds.count(k) for k in counts} == counts
    if case.name == "resnet18":
        assert net.names[:5] == ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1"]
        assert net.index("layer1.0.conv1") == 4
        # the block's self.relu runs twice: two layers, the second "<name>_1"
        first, second = net.index("layer1.0.relu"), net.index("layer1.0.relu_1")
        assert net.names[second - 1] == "add" and first < second
        assert net.inputs_of(net.index("add")) == (net.index("layer1.0.bn2"),
                                                   net.index("maxpool"))
        assert net.names[-3:] == ["avgpool", "flatten", "fc"]
        assert "layer2.0.downsample.0" in net.names
        assert net.describe(4) == "layer 4 'layer1.0.conv1' (Conv2d)"


def test_layer_minus_one_is_the_output(small_case):
    case = small_case
    net, x = case.net, case.x
    assert net.index(-1) == len(net.layers) - 1
    np.testing.assert_array_equal(net.trace(x).outputs[-1], net(x))
    ours = visualize.project(net, x, -1, 3, rule="guided")
    np.testing.assert_array_equal(ours, visualize.project(net, x, net.names[-1], 3,
                                                          rule="guided"))
    assert rel_error(ours, case.ref.project(x, net.names[-1], (3,), "guided")) <= TOLERANCE


def test_to_torch_round_trips(small_case):
    case = small_case
    net = case.net
    model = to_torch(net)
    assert isinstance(model, torch.fx.GraphModule) and not model.training
    relus = [m for m in model.modules() if isinstance(m, tnn.ReLU)]
    assert len(relus) == sum(isinstance(layer, nn.ReLU) for layer in net.layers)
    assert len({id(m) for m in relus}) == len(relus) and not any(m.inplace for m in relus)
    back = from_torch(model, case.shape)
    assert back.names == net.names
    assert [node.inputs for node in back.nodes] == [node.inputs for node in net.nodes]
    for a, b in zip(net.layers, back.layers):
        assert type(a) is type(b) and a.config() == b.config()
        for key, value in a.params().items():
            np.testing.assert_array_equal(value, b.params()[key])
    with torch.no_grad():
        np.testing.assert_array_equal(model(torch.from_numpy(case.x)).numpy(),
                                      case.model(torch.from_numpy(case.x)).numpy())


@pytest.mark.parametrize("name", ["concat", "resnet18"])
def test_crosscheck_reports_every_node(name):
    case = get_case(name)
    report = crosscheck(case.model, case.x)
    assert report.passed, str(report)
    assert [c.name for c in report.layers] == [case.net.describe(i)
                                               for i in range(len(case.net.layers))]
    assert all(set(c.projections) == set(RULES) for c in report.layers)
    assert all(c.unpool_variant is None for c in report.layers)
    # a minideconv graph goes through to_torch; layers may be given by name
    some = ["layer1.0.relu_1", "add_3", -1] if case.name == "resnet18" else ["cat", -1]
    report = crosscheck(case.net, case.x[:1], layers=some)
    assert report.passed and len(report.layers) == len(some), str(report)
    assert case.net.names[report.layers[-1].index] == case.net.names[-1]


def test_save_and_load_round_trip(resnet, tmp_path):
    case = resnet
    path = tmp_path / "resnet18.npz"
    case.net.save(path)
    loaded = nn.load(path)
    assert isinstance(loaded, nn.Graph) and loaded.names == case.net.names
    assert loaded.input_shape == case.shape
    np.testing.assert_array_equal(loaded(case.x), case.net(case.x))
    np.testing.assert_array_equal(
        visualize.project(loaded, case.x, "layer2.0.relu_1", 5, rule="deconvnet"),
        visualize.project(case.net, case.x, "layer2.0.relu_1", 5, rule="deconvnet"))


def _linearised(model):
    """A copy whose every unit is a positive sum of its window: weights 1, ReLUs the
    identity, max pools average pools of the same windows (BatchNorm keeps a positive
    scale).  A unit's gradient is then nonzero exactly on its receptive field."""
    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, (tnn.Conv2d, tnn.Linear)):
            with torch.no_grad():
                module.weight.fill_(1.0)
        parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
        leaf = name.rpartition(".")[2]
        if isinstance(module, tnn.ReLU):
            setattr(parent, leaf, tnn.Identity())
        elif isinstance(module, tnn.MaxPool2d):
            setattr(parent, leaf, tnn.AvgPool2d(module.kernel_size, module.stride,
                                                module.padding))
    return model


@pytest.mark.parametrize("node, position", [("layer1.0.relu_1", (3, 4)), ("add_2", (2, 1)),
                                            ("layer2.1.conv1", (0, 3)),
                                            ("layer3.0.relu_1", (1, 1))])
def test_receptive_field_through_residual_blocks(resnet, node, position):
    """The input pixels a unit depends on (the gradient's support, on a linearised copy
    where nothing cancels) fill exactly net.receptive_field(node)'s window, clipped to
    the image — the longest path through the blocks sets it; with random weights and
    ReLUs the support lies inside it."""
    case = resnet
    height, width = case.shape[1:]
    r0, r1, c0, c1 = case.net.receptive_field(node).window(position)
    window = np.zeros((height, width), bool)
    window[max(r0, 0):min(r1, height), max(c0, 0):min(c1, width)] = True
    for model, exact in ((_linearised(case.model), True), (case.model, False)):
        ref = TorchReference(model)
        channel = 1
        grad = ref.project(case.x[:1], node, (channel,) + position, "backprop")
        support = np.abs(grad[0]).sum(axis=0) > 0
        assert support.any() and not (support & ~window).any()
        if exact:
            np.testing.assert_array_equal(support, window)


# --------------------------------------------------------------------------- small modules

def check_against_reference(model, shape, seed=0):
    """Logits and every node's projection (three rules) equal the reference."""
    model = model.double().eval()
    net = from_torch(model, input_shape=shape)
    x = np.random.default_rng(seed).standard_normal((2,) + tuple(shape))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert rel_error(net(x), expected) <= TOLERANCE
    ref = TorchReference(model)
    for name in net.names:
        unit = strongest_unit(ref.activation(x, name))
        for rule in RULES:
            ours = visualize.project(net, x, name, unit[0],
                                     position=unit[1:] if len(unit) == 3 else None,
                                     rule=rule)
            assert rel_error(ours, ref.project(x, name, unit, rule)) <= TOLERANCE, \
                (name, rule)
    return net


class Reluses(tnn.Module):
    """Every form of ReLU fx records, and one ReLU module called twice."""

    def __init__(self, in_place):
        super().__init__()
        self.conv1 = tnn.Conv2d(2, 4, 3, padding=1)
        self.act = tnn.ReLU(inplace=in_place)
        self.conv2 = tnn.Conv2d(4, 4, 3, padding=1)
        self.conv3 = tnn.Conv2d(4, 3, 1)

    def forward(self, x):
        x = self.act(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = torch.relu(x)
        x = self.conv3(x).relu()
        x = F.relu(x, inplace=True)
        x = torch.relu_(x)
        x = x.relu_()
        return self.act(x)                   # the module again


@pytest.mark.parametrize("in_place", [False, True])
def test_every_form_of_relu(in_place):
    torch.manual_seed(0)
    net = check_against_reference(Reluses(in_place), (2, 6, 5))
    assert [type(layer).__name__ for layer in net.layers].count("ReLU") == 8
    assert net.names[1] == "act" and net.names[-1] == "act_1"
    assert "relu" in net.names and "relu_" in net.names          # fx node names
    # to_torch: one fresh non-in-place module per ReLU, the names kept
    model = to_torch(net)
    assert from_torch(model).names == net.names
    assert model.get_submodule("act") is not model.get_submodule("act_1")


class InPlaceAlias(tnn.Module):
    """In-place ops overwrite values that are read again afterwards: in torch z + y is
    2 relu(conv x) and s + y is 3 relu(conv x) + relu(conv x); so in the conversion."""

    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(2, 3, 3)
        self.relu = tnn.ReLU(inplace=True)
        self.head = tnn.Conv2d(3, 2, 1)

    def forward(self, x):
        y = self.conv(x)
        z = self.relu(y)          # in place: y holds relu(conv x) from here on
        s = z + y
        s.add_(z)                 # in place: s holds 3 relu(conv x) from here on
        return self.head(s + y)


def test_in_place_ops_alias_their_input():
    torch.manual_seed(1)
    net = check_against_reference(InPlaceAlias(), (2, 7, 7))
    relu, add, add_ = net.index("relu"), net.index("add"), net.index("add_")
    assert net.inputs_of(add) == (relu, relu)           # y was overwritten by the ReLU
    assert net.inputs_of(add_) == (add, relu)
    assert net.inputs_of(net.index("add_1")) == (add_, relu)   # s after its add_


class Flattens(tnn.Module):
    def __init__(self, form):
        super().__init__()
        self.form = form
        self.conv = tnn.Conv2d(2, 3, 3)
        self.flatten = tnn.Flatten()
        self.fc = tnn.Linear(3 * 4 * 4, 5)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = {"module": lambda: self.flatten(x),
             "torch.flatten": lambda: torch.flatten(x, 1),
             "method": lambda: x.flatten(1),
             "view": lambda: x.view(x.size(0), -1),
             "reshape": lambda: x.reshape(x.size(0), -1),
             "shape[0]": lambda: x.view(x.shape[0], -1),
             "torch.reshape": lambda: torch.reshape(x, (x.size(0), -1))}[self.form]()
        return self.fc(x)


@pytest.mark.parametrize("form", ["module", "torch.flatten", "method", "view", "reshape",
                                  "shape[0]", "torch.reshape"])
def test_flatten_forms(form):
    torch.manual_seed(2)
    net = check_against_reference(Flattens(form), (2, 6, 6))
    assert [type(layer).__name__ for layer in net.layers] == ["Conv2d", "ReLU", "Flatten",
                                                              "Linear"]
    assert not any(name.startswith(("size", "getattr", "getitem")) for name in net.names)


class Sums(tnn.Module):
    def __init__(self, form):
        super().__init__()
        self.form = form
        self.a = tnn.Conv2d(2, 3, 3, padding=1)
        self.b = tnn.Conv2d(2, 3, 1)
        self.pool = tnn.MaxPool2d(2)

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        if self.form == "+":
            s = a + b
        elif self.form == "torch.add":
            s = torch.add(a, b)
        elif self.form == "method":
            s = a.add(b)
        elif self.form == "+=":
            a += b
            s = a
        else:
            s = a.add_(b)
        return torch.cat([self.pool(torch.relu(s)), F.max_pool2d(b, 2)], dim=1)


@pytest.mark.parametrize("form", ["+", "torch.add", "method", "+=", "add_"])
def test_sum_forms_and_concat(form):
    torch.manual_seed(3)
    net = check_against_reference(Sums(form), (2, 6, 6))
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds.count("Add") == 1 and kinds[-1] == "Concat" and kinds.count("MaxPool2d") == 2


def test_an_adaptive_pool_and_avg_pool_functional():
    class Pools(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(2, 3, 3)
            self.bn = tnn.BatchNorm2d(3, affine=False)

        def forward(self, x):
            x = F.avg_pool2d(self.bn(self.conv(x)), 3, stride=2, padding=1, ceil_mode=True,
                             count_include_pad=False)
            x = F.dropout(x, 0.3, self.training)
            return F.adaptive_avg_pool2d(x, (5, 2))

    torch.manual_seed(4)
    model = Pools()
    with torch.no_grad():
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.running_mean.normal_()
    net = check_against_reference(model, (2, 9, 8))
    assert [type(layer).__name__ for layer in net.layers] == [
        "Conv2d", "BatchNorm2d", "AvgPool2d", "Dropout", "AdaptiveAvgPool2d"]


# --------------------------------------------------------------------------- errors

class Holder(tnn.Module):
    def __init__(self, body):
        super().__init__()
        self.conv = tnn.Conv2d(2, 3, 3)
        self.act2 = tnn.Softplus()
        self.body = body

    def forward(self, x):
        return self.body(self, self.conv(x))


@pytest.mark.parametrize("body, message", [
    (lambda m, x: torch.exp(x), r"node 'exp' \(call_function torch\.exp\) is "
                                r"not supported; minideconv converts Conv2d"),
    (lambda m, x: m.act2(x), r"node 'act2' \(call_module Softplus 'act2'\) is not supported"),
    (lambda m, x: x - 2, r"node 'sub' \(call_function operator\.sub\)"),
    (lambda m, x: x.exp(), r"node 'exp' \(call_method Tensor\.exp\)"),
    (lambda m, x: torch.cat([x, x], dim=0), r"node 'cat' .*channels only \(dim=1\)"),
    (lambda m, x: F.dropout(x, 0.5), r"node 'dropout' .*training=True"),
    (lambda m, x: x.view(-1, 12), r"node 'view' .*x\.view\(x\.size\(0\), -1\)"),
    (lambda m, x: torch.add(x, x, alpha=2), r"node 'add' .*alpha=2"),
    (lambda m, x: x + torch.ones(3), r"node 'add' .*not one value per channel"),
    (lambda m, x: torch.flatten(x), r"node 'flatten' .*start_dim=0"),
    (lambda m, x: F.max_pool2d(x, 2, return_indices=True)[0],
     r"node .max_pool2d_with_indices. \(call_function torch.nn.functional.max_pool2d_with_ind"),
])
def test_unsupported_operations_name_their_node(body, message):
    with pytest.raises(ValueError, match=message):
        from_torch(Holder(body).double().eval())


def test_unused_unsupported_operations_are_dropped():
    def body(m, x):
        torch.exp(x)                               # computed, never used
        return torch.relu(x)
    net = from_torch(Holder(body).double().eval())
    assert net.names == ["conv", "relu"]


def test_modules_fx_cannot_trace():
    class Branchy(tnn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x          # control flow on a tensor value

    with pytest.raises(ValueError, match="symbolic_trace cannot trace Branchy"):
        from_torch(Branchy())

    class TwoInputs(tnn.Module):
        def forward(self, x, y):
            return x + y

    with pytest.raises(ValueError, match="one input"):
        from_torch(TwoInputs())
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_torch("resnet18")


def test_compare_detects_a_wrong_graph():
    """A report that cannot fail is worthless: perturb one weight on the torch side."""
    model, shape = layouts.build("concat")
    net = from_torch(model, shape)
    x = np.random.default_rng(5).standard_normal((1,) + shape)
    bad = copy.deepcopy(model)
    with torch.no_grad():
        bad.branch5b.weight[0, 0, 0, 0] += 1e-6
    report = compare(net, bad, x)
    assert not report.passed and report.worst > 1e-9
    by_name = {net.names[c.index]: c for c in report.layers}
    # the branch left alone agrees to float64 round-off (two libraries need not add in
    # the same order: bit for bit in one environment, 4.5e-16 apart in another); the
    # perturbed one does not
    assert by_name["branch3"].forward.rel < 1e-13
    assert by_name["branch5b"].forward.rel > 1e-9
    with pytest.raises(ValueError, match="no counterpart"):
        compare(net.with_layers(net.layers), layouts.build("resnet18")[0], x)



def test_to_torch_of_a_hand_built_graph():
    """Names that cannot be module paths are sanitised (and read back so); a sum of three
    inputs is one Sum module; crosscheck maps the names through, in float64 and float32."""
    rng = np.random.default_rng(6)

    def w(*shape):
        return rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))

    graph = nn.Graph([
        ("stem", nn.Conv2d(w(3, 2, 3, 3), w(3), padding=1), ("input",)),
        ("stem.relu", nn.ReLU(), ("stem",)),             # "stem" is a layer: no children
        ("forward", nn.Conv2d(w(3, 3, 1, 1)), ("stem.relu",)),   # an nn.Module attribute
        ("a-b", nn.ReLU(), ("forward",)),
        ("block.sum", nn.Add(), ("a-b", "stem.relu", "stem")),
        ("0", nn.MaxPool2d(2), ("block.sum",)),
        ("1", nn.AvgPool2d(2), ("block.sum",)),
        ("cat", nn.Concat(), ("0", "1")),
    ], input_shape=(2, 6, 6))
    model = to_torch(graph)
    assert model.minideconv_paths["stem.relu"] == "stem_relu"
    assert model.minideconv_paths["a-b"] == "a_b"
    assert model.minideconv_paths["forward"] != "forward"
    back = from_torch(model, (2, 6, 6))
    assert back.names == [model.minideconv_paths[name] for name in graph.names]
    assert back.names[4] == "block.sum" and back.inputs_of(4) == (3, 1, 0)
    x = rng.standard_normal((2, 2, 6, 6))
    np.testing.assert_array_equal(back(x), graph(x))
    report = crosscheck(graph, x)
    assert report.passed and [c.name for c in report.layers][1] == "layer 1 'stem.relu' (ReLU)"
    report = crosscheck(graph, x.astype(np.float32))
    assert report.dtype == "float32" and report.tolerance == 1e-4 and report.passed


# --------------------------------------------------------------------------- container names

def hooked_outputs(model, x):
    """What a forward hook on every named module sees, per call: {name: [outputs]}."""
    seen, handles = {}, []
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(
                lambda m, args, out, name=name: seen.setdefault(name, []).append(
                    out.detach().clone())))
    try:
        with torch.no_grad():
            model(torch.from_numpy(x))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def test_every_module_name_is_the_output_a_forward_hook_sees(small_case):
    case = small_case
    outputs = case.net.trace(case.x).outputs
    seen = hooked_outputs(case.model, case.x)
    containers = {name for name, m in case.model.named_modules() if name and len(m._modules)}
    assert containers <= set(case.net.aliases)
    assert containers or case.name == "concat"       # its branches are leaves
    for name, calls in seen.items():
        for k, hooked in enumerate(calls):
            called = name if k == 0 else f"{name}_{k}"       # the k-th call after the first
            i = case.net.index(called)
            assert rel_error(outputs[i], hooked.numpy()) <= 1e-13, (called, case.name)
    if case.name == "resnet18":
        assert case.net.aliases["layer2"] == case.net.aliases["layer2.1"] == \
            "layer2.1.relu_1"
        assert case.net.aliases["layer2.0.downsample"] == "layer2.0.downsample.1"


def test_a_container_projects_like_the_gradient_of_its_hooked_output(resnet):
    case = resnet
    x = torch.from_numpy(case.x[:1]).requires_grad_()
    kept = {}
    handle = case.model.layer3.register_forward_hook(lambda m, args, out: kept.update(out=out))
    try:
        case.model(x)
    finally:
        handle.remove()
    channel = 5
    plane = kept["out"][0, channel]
    h, w = divmod(int(plane.argmax()), plane.shape[1])
    plane[h, w].backward()
    ours = visualize.project(case.net, case.x[:1], "layer3", channel, rule="backprop",
                             seed_value="one")
    assert rel_error(ours[0], x.grad[0].numpy()) <= TOLERANCE


def test_nested_sequentials_name_their_last_layer():
    from collections import OrderedDict
    model = tnn.Sequential(OrderedDict(
        features=tnn.Sequential(tnn.Conv2d(3, 4, 3), tnn.ReLU(),
                                tnn.Sequential(tnn.Conv2d(4, 4, 3), tnn.ReLU())),
        pool=tnn.MaxPool2d(2))).double().eval()
    net = from_torch(model, input_shape=(3, 10, 10))
    assert isinstance(net, nn.Sequential)
    assert net.aliases == {"features": "features.2.1", "features.2": "features.2.1"}
    x = np.random.default_rng(3).standard_normal((1, 3, 10, 10))
    seen = hooked_outputs(model, x)
    outputs = net.trace(x).outputs
    for name in ("features", "features.2", "pool"):
        assert rel_error(outputs[net.index(name)], seen[name][0].numpy()) <= 1e-13


def test_aliases_survive_files_and_copies(resnet, tmp_path):
    net = resnet.net
    net.save(tmp_path / "net.npz")
    loaded = nn.load(tmp_path / "net.npz")
    assert loaded.aliases == net.aliases == net.astype(np.float32).aliases
    assert loaded.index("layer4") == net.index("layer4.1.relu_1")


def test_an_unknown_name_lists_the_nearest(resnet):
    with pytest.raises(ValueError, match=r"no layer named 'layer2\.1\.relu1' \(the nearest: "
                                         r"'layer2\.1\.relu_1'"):
        resnet.net.index("layer2.1.relu1")
