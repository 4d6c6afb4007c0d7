"""Every gradient method of ``minideconv.attribution`` equals Captum's on the shipped
network, a small AlexNet-like stack and a small ResNet-like graph (with and without
BatchNorm): float64, batched and single images, one target for all and one per image.

The tolerance is the spec's, max|ours − Captum| / max|Captum| ≤ 1e-6; the gradient,
Grad-CAM and guided Grad-CAM agree to ~1e-15.  Integrated gradients agree to ~1e-8
only, because Captum multiplies the gradients by its quadrature weights cast to float32
(``torch.tensor(step_sizes).float()``): with the weights rounded so, the same sum agrees
to ~1e-15 (``test_ig_differs_from_captum_only_by_its_float32_weights``)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

from minideconv import attribution as A                    # noqa: E402
from minideconv.data import load_dataset, load_model       # noqa: E402
from minideconv.interop.torch import to_torch              # noqa: E402
from tests.support.family_networks import alexnet_like, resnet_like   # noqa: E402

# Captum warns at every guided map that it hooks the ReLU modules
pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("ignore::UserWarning:captum")]

TOLERANCE = 1e-6
NETWORKS = {
    "shipped": lambda: load_model().astype(np.float64),
    "alexnet_like": alexnet_like,
    "resnet_like": resnet_like,
    "resnet_like_bn": lambda: resnet_like(batch_norm=True),
}
TARGETS = {"one_int": 3, "per_image": [1, 4, 7]}


@pytest.fixture(scope="module", params=list(NETWORKS))
def case(request):
    net = NETWORKS[request.param]()
    model = to_torch(net).double().eval()
    images = load_dataset("test", 3)[0].astype(np.float64)
    return net, model, images


def relative_error(ours, theirs):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    assert ours.shape == theirs.shape
    scale = np.abs(theirs).max()
    assert scale > 0, "the reference map is all zero: the comparison would show nothing"
    return np.abs(ours - theirs).max() / scale


def tensor(images):
    return torch.tensor(images, requires_grad=True)


def module_of(net, model, layer):
    return dict(model.named_modules())[net.names[layer]]


def captum_target(target):
    return target if isinstance(target, int) else list(target)


@pytest.mark.parametrize("target", list(TARGETS.values()), ids=list(TARGETS))
def test_gradient_and_input_x_gradient_equal_captum(case, target):
    net, model, images = case
    saliency = captum_attr.Saliency(model).attribute(tensor(images), target=target, abs=False)
    assert relative_error(A.gradient(net, images, target), saliency) < 1e-12
    ixg = captum_attr.InputXGradient(model).attribute(tensor(images), target=target)
    assert relative_error(A.input_x_gradient(net, images, target), ixg) < 1e-12


def test_a_single_image_gives_one_map_equal_to_captum(case):
    net, model, images = case
    ours = A.gradient(net, images[1], 5)
    theirs = captum_attr.Saliency(model).attribute(tensor(images[1:2]), target=5, abs=False)
    assert ours.shape == images[1].shape
    assert relative_error(ours, theirs[0]) < 1e-12
    cam = A.grad_cam(net, images[1], A.last_spatial_layer(net), 5)
    layer = module_of(net, model, A.last_spatial_layer(net))
    theirs = captum_attr.LayerGradCam(model, layer).attribute(
        tensor(images[1:2]), target=5, relu_attributions=True)
    assert cam.ndim == 2 and relative_error(cam, theirs[0, 0]) < 1e-12


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
@pytest.mark.parametrize("target", list(TARGETS.values()), ids=list(TARGETS))
def test_integrated_gradients_equal_captum(case, method, target):
    net, model, images = case
    baseline = np.full_like(images, 0.5)
    ours = A.integrated_gradients(net, images, target, baseline=baseline, steps=12,
                                  method=method)
    theirs = captum_attr.IntegratedGradients(model).attribute(
        tensor(images), baselines=torch.tensor(baseline), target=target, n_steps=12,
        method=method)
    assert relative_error(ours, theirs) < TOLERANCE


def test_ig_differs_from_captum_only_by_its_float32_weights(case):
    """Σ_k w_k ∂z/∂x(α_k x) by hand: with the weights rounded to float32 it is Captum's
    result to ~1e-15, with float64 weights it is ours."""
    from minideconv.attribution.integrated_gradients import path_points
    net, model, images = case
    targets = [0, 2, 9]
    alphas, weights = path_points(9, "gausslegendre")
    grads = np.stack([A.gradient(net, alpha * images, targets) for alpha in alphas])
    theirs = captum_attr.IntegratedGradients(model).attribute(
        tensor(images), target=targets, n_steps=9)
    rounded = weights.astype(np.float32).astype(np.float64)
    assert relative_error(images * np.tensordot(rounded, grads, axes=1), theirs) < 1e-12
    ours = A.integrated_gradients(net, images, targets, steps=9)
    assert relative_error(ours, images * np.tensordot(weights, grads, axes=1)) < 1e-12


def test_smoothgrad_with_captums_noise_equals_captum(case):
    net, model, images = case
    samples, stdev = 4, 0.1
    torch.manual_seed(7)
    theirs = captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(
        tensor(images), nt_type="smoothgrad", nt_samples=samples, stdevs=stdev,
        target=[2, 0, 6], abs=False)
    # Captum's draw, repeated: torch.normal over (N·S, C, H, W), image n's samples in
    # rows n·S … n·S + S − 1 (its inputs are repeat_interleave'd)
    torch.manual_seed(7)
    drawn = torch.normal(0, torch.tensor(stdev).repeat((len(images) * samples,)
                                                      + images.shape[1:]))
    noise = drawn.numpy().astype(np.float64).reshape((len(images), samples)
                                                     + images.shape[1:]).swapaxes(0, 1)
    ours = A.smoothgrad(net, images, [2, 0, 6], noise=noise)
    assert relative_error(ours, theirs) < 1e-12


@pytest.mark.parametrize("target", list(TARGETS.values()), ids=list(TARGETS))
def test_grad_cam_and_guided_grad_cam_equal_captum(case, target):
    net, model, images = case
    layer = A.last_spatial_layer(net)
    module = module_of(net, model, layer)
    theirs = captum_attr.LayerGradCam(model, module).attribute(
        tensor(images), target=target, relu_attributions=True)
    assert relative_error(A.grad_cam(net, images, layer, target), theirs[:, 0]) < 1e-12
    theirs = captum_attr.GuidedGradCam(model, module).attribute(tensor(images),
                                                                target=target)
    ours = A.guided_grad_cam(net, images, net.names[layer], target)
    assert relative_error(ours, theirs) < 1e-12


def test_grad_cam_at_an_earlier_layer_equals_captum(case):
    net, model, images = case
    shapes = net.layer_shapes()
    layer = next(i for i in range(len(net.layers)) if len(shapes[i]) == 3
                 and shapes[i][1] < images.shape[2])   # the first layer that downsamples
    theirs = captum_attr.LayerGradCam(model, module_of(net, model, layer)).attribute(
        tensor(images), target=[3, 3, 8], relu_attributions=True)
    assert relative_error(A.grad_cam(net, images, layer, [3, 3, 8]), theirs[:, 0]) < 1e-12


class ContainersModel(torch.nn.Module):
    """Written the way users write models: containers, an in-place ReLU, one ReLU object
    reused, ``F.relu`` and a residual sum in ``forward``."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(inplace=True), torch.nn.Conv2d(8, 16, 3, padding=1))
        self.act = torch.nn.ReLU()
        self.block = torch.nn.Sequential(torch.nn.MaxPool2d(2),
                                         torch.nn.Conv2d(16, 16, 3, padding=1))
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.2),
                                        torch.nn.Linear(16 * 4 * 4, 10))

    def forward(self, x):
        h = self.act(self.features(x))
        h = torch.nn.functional.relu(self.block(h)) + self.act(
            torch.nn.functional.max_pool2d(h, 2))
        return self.head(h)


def test_grad_cam_takes_a_containers_name_as_captum_takes_the_container():
    from minideconv.interop.torch import from_torch
    torch.manual_seed(0)
    model = ContainersModel().double().eval()
    with torch.no_grad():      # running statistics that are not the identity
        model.features[1].running_mean.uniform_(-0.2, 0.2)
        model.features[1].running_var.uniform_(0.5, 1.5)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    net = from_torch(model, input_shape=(3, 8, 8))
    images = np.random.default_rng(0).random((3, 3, 8, 8))
    for name, module in [("features", model.features), ("block", model.block),
                         ("block.1", model.block[1])]:
        theirs = captum_attr.LayerGradCam(model, module).attribute(
            tensor(images), target=[1, 5, 9], relu_attributions=True)
        assert relative_error(A.grad_cam(net, images, name, [1, 5, 9]), theirs[:, 0]) < 1e-12
    theirs = captum_attr.IntegratedGradients(model).attribute(tensor(images), target=4,
                                                              n_steps=16)
    assert relative_error(A.integrated_gradients(net, images, 4, steps=16), theirs) < TOLERANCE
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
