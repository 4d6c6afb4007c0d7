"""from_torch / to_torch of the channel maps: Softmax, LocalResponseNorm and
ChannelShuffle as modules, functions and methods, ShuffleNet's hand-written channel
shuffle (view → transpose → contiguous → view) and torch.cat of one tensor — forward and
the three rules' projections against PyTorch (``crosscheck``: Captum for a Sequential,
autograd with rule ReLUs for a Graph) to 1e-10 in float64; the refusals."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: interop tests skipped")
pytest.importorskip("captum", reason="Captum is not installed: interop tests skipped")

from minideconv import nn  # noqa: E402
from minideconv.interop.torch import crosscheck, from_torch, to_torch  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("ignore::UserWarning:captum")]
tnn = torch.nn
F = torch.nn.functional


def shuffle_by_hand(x, groups, permute=False):
    """ShuffleNet's channel shuffle as its code writes it."""
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    x = x.permute(0, 2, 1, 3, 4) if permute else torch.transpose(x, 1, 2).contiguous()
    return x.reshape(batch, -1, height, width)


class Functional(tnn.Module):
    """Every function and method form, and a one-tensor cat (DenseNet's first layer)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = tnn.Conv2d(3, 12, 3, padding=1)
        self.conv2 = tnn.Conv2d(12, 12, 1, groups=3)
        self.fc = tnn.Linear(12, 5)

    def forward(self, x):
        x = F.local_response_norm(torch.relu(self.conv(x)), 4, alpha=0.2, beta=0.7, k=1.5)
        x = shuffle_by_hand(x, 3)
        x = torch.relu(self.conv2(torch.cat([x], 1)))
        x = F.channel_shuffle(shuffle_by_hand(x, 4, permute=True), 2)
        x = F.softmax(x, dim=1) + torch.softmax(x, 1)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1)).softmax(-1)


def sequential():
    torch.manual_seed(1)
    return tnn.Sequential(tnn.Conv2d(3, 8, 3, padding=1), tnn.ReLU(),
                          tnn.LocalResponseNorm(3, 0.1, 0.75, 2.0), tnn.MaxPool2d(2),
                          tnn.ChannelShuffle(2), tnn.Conv2d(8, 6, 3), tnn.ReLU(),
                          tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(6, 4),
                          tnn.Softmax(dim=1)).double().eval()


@pytest.fixture
def x():
    return np.random.default_rng(5).normal(size=(2, 3, 8, 8))


def test_a_sequential_of_the_modules_converts_both_ways_and_projects_as_torch(x):
    model = sequential()
    net = from_torch(model, input_shape=(3, 8, 8))
    assert [type(layer) for layer in net.layers][-1] is nn.Softmax
    assert net.output_layer() == len(net.layers) - 2
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(net(x) - expected)) <= 1e-10
    report = crosscheck(model, x)
    assert report.passed, str(report)
    back = to_torch(net)
    assert [type(m) for m in back] == [type(m) for m in model]
    with torch.no_grad():
        assert np.max(np.abs(back(torch.from_numpy(x)).numpy() - expected)) <= 1e-10


def test_the_functions_methods_and_the_hand_written_shuffle_are_layers(x):
    model = Functional().double().eval()
    net = from_torch(model, input_shape=(3, 8, 8))
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds.count("ChannelShuffle") == 3 and kinds.count("Softmax") == 3
    assert kinds.count("LocalResponseNorm") == 1 and kinds.count("Identity") == 1
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(net(x) - expected)) <= 1e-10 * np.max(np.abs(expected))
    report = crosscheck(model, x, layers=[net.output_layer(), "conv2", "local_response_norm"])
    assert report.passed, str(report)


class Refused(tnn.Module):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def forward(self, x):
        return self.step(x)


@pytest.mark.parametrize("step, message", [
    (lambda x: F.softmax(x, dim=2), "softmax over dim=2"),
    (lambda x: x.view(x.size(0), 2, 2, x.size(2), x.size(3)).transpose(1, 3).contiguous()
     .view(x.size(0), -1, x.size(2), x.size(3)), "channel shuffle"),
    (lambda x: x.view(x.size(0), 2, 2, x.size(2), x.size(3)).permute(0, 1, 2, 4, 3)
     .reshape(x.size(0), -1, x.size(2), x.size(3)), "channel shuffle"),
    (lambda x: x.view(x.size(0), 2, 2, x.size(2), x.size(3)).sum(1), "a flatten"),
    (lambda x: F.softmax(x, dim=1, dtype=torch.float32), "dtype"),
])
def test_other_softmaxes_and_reshapes_are_refused_in_one_line(step, message):
    with pytest.raises(ValueError, match=message):
        from_torch(Refused(step), input_shape=(4, 3, 3))


def test_a_softmax_along_the_width_is_refused_by_the_graphs_shapes():
    with pytest.raises(ValueError, match="dim=-1"):
        from_torch(Refused(lambda x: x.softmax(-1)), input_shape=(4, 3, 3))


def test_to_torch_refuses_what_torch_has_no_module_for():
    onnx_window = nn.Sequential(nn.LocalResponseNorm(4, before=1), input_shape=(4, 3, 3))
    with pytest.raises(ValueError, match="ONNX's window"):
        to_torch(onnx_window)
    four_pads = nn.Sequential(nn.Conv2d(np.ones((2, 4, 3, 3)), padding=(0, 1, 1, 0)),
                              input_shape=(4, 5, 5))
    with pytest.raises(ValueError, match="pads"):
        to_torch(four_pads)
