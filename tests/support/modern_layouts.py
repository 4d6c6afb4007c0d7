"""Small networks of products and normalisations in torchvision's layouts (torchvision is
not needed): a CNBlock whose activation can be chosen, ConvNeXt of any stages, an SE
network and the ConvNeXt paper's own block between instance norms — shared by the torch
and ONNX import tests of products and normalisations (``Permute``, ``LayerNorm2d`` and
``SqueezeExcitation`` are ``modern_networks``').  ``randomised`` draws every parameter and
statistic (float64, eval)."""

from __future__ import annotations

import torch

from .modern_networks import LayerNorm2d, Permute, SqueezeExcitation

tnn = torch.nn
F = torch.nn.functional


class StochasticDepth(tnn.Module):
    """torchvision.ops.StochasticDepth at inference: the identity."""

    def forward(self, x):
        return x


class CNBlock(tnn.Module):
    """torchvision.models.convnext.CNBlock (nn.ReLU standing in for nn.GELU)."""

    def __init__(self, dim, layer_scale=1e-6, activation=tnn.ReLU):
        super().__init__()
        self.block = tnn.Sequential(
            tnn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]),
            tnn.LayerNorm(dim, eps=1e-6),
            tnn.Linear(in_features=dim, out_features=4 * dim, bias=True),
            activation(),
            tnn.Linear(in_features=4 * dim, out_features=dim, bias=True),
            Permute([0, 3, 1, 2]))
        self.layer_scale = tnn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth()

    def forward(self, input):
        result = self.layer_scale * self.block(input)
        result = self.stochastic_depth(result)
        result += input
        return result


class SENet(tnn.Module):
    """Conv → BN → ReLU → SE → a SiLU-like x ⊙ g(x) → GroupNorm → x · 0.5 + 1 → head."""

    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 8, 3, padding=1)
        self.bn = tnn.BatchNorm2d(8)
        self.relu = tnn.ReLU()
        self.se = SqueezeExcitation(8, 4)
        self.gate = tnn.Conv2d(8, 8, 1)
        self.norm = tnn.GroupNorm(4, 8)
        self.head = tnn.Sequential(tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(8, 5))

    def forward(self, x):
        x = self.se(self.relu(self.bn(self.conv(x))))
        x = x * F.relu(self.gate(x))          # MobileNetV3's h-swish / SiLU shape: x · g(x)
        x = F.group_norm(self.norm(x), 2, self.norm.weight, self.norm.bias, 1e-3)
        x = 0.5 * x + 1.0
        return self.head(x)


def randomised(model, seed=0):
    """The model in float64, eval mode, every parameter and BN statistic drawn (so that
    layer scale, LayerNorm and GroupNorm weights are not their neutral 1e-6 / 1 / 0)."""
    generator = torch.Generator().manual_seed(seed)
    model = model.double().eval()
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator,
                                         dtype=tensor.dtype) * 0.5)
        for module in model.modules():
            if isinstance(module, tnn.BatchNorm2d):
                module.running_var.abs_().add_(0.5)
    return model


class OriginalConvNeXtBlock(tnn.Module):
    """The block of the ConvNeXt paper's own code (facebookresearch/ConvNeXt): the layer
    scale γ, of shape (C,), multiplies inside the channels-last region."""

    def __init__(self, dim, layer_scale=1e-6):
        super().__init__()
        self.dwconv = tnn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = tnn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = tnn.Linear(dim, 4 * dim)
        self.act = tnn.ReLU()
        self.pwconv2 = tnn.Linear(4 * dim, dim)
        self.gamma = tnn.Parameter(layer_scale * torch.ones(dim))

    def forward(self, x):
        input = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        x = self.pwconv2(x)
        x = self.gamma * x
        x = x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
        return input + x


class InstanceNormNet(tnn.Module):
    """A style-transfer-like stem: Conv → InstanceNorm2d (affine) → ReLU → the original
    ConvNeXt block → InstanceNorm2d (no affine)."""

    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 8, 3, padding=1)
        self.inorm = tnn.InstanceNorm2d(8, affine=True)
        self.relu = tnn.ReLU()
        self.block = OriginalConvNeXtBlock(8)
        self.plain = tnn.InstanceNorm2d(8)

    def forward(self, x):
        return self.plain(self.block(self.relu(self.inorm(self.conv(x)))))


class ConvNeXt(tnn.Module):
    """torchvision.models.ConvNeXt (``convnext_tiny``'s configuration by default:
    stages of (96, 3), (192, 3), (384, 9), (768, 3)), with ``activation`` in each block
    (nn.GELU in torchvision)."""

    def __init__(self, stages=((96, 3), (192, 3), (384, 9), (768, 3)), num_classes=1000,
                 activation=tnn.ReLU):
        super().__init__()
        first = stages[0][0]
        layers = [tnn.Sequential(tnn.Conv2d(3, first, kernel_size=4, stride=4),
                                 LayerNorm2d(first, eps=1e-6))]
        for k, (dim, blocks) in enumerate(stages):
            layers.append(tnn.Sequential(*(CNBlock(dim, activation=activation)
                                           for _ in range(blocks))))
            if k + 1 < len(stages):
                layers.append(tnn.Sequential(LayerNorm2d(dim, eps=1e-6),
                                             tnn.Conv2d(dim, stages[k + 1][0], kernel_size=2,
                                                        stride=2)))
        self.features = tnn.Sequential(*layers)
        self.avgpool = tnn.AdaptiveAvgPool2d(1)
        last = stages[-1][0]
        self.classifier = tnn.Sequential(LayerNorm2d(last, eps=1e-6), tnn.Flatten(1),
                                         tnn.Linear(last, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


def TinyConvNeXt():
    """A ConvNeXt of two stages, 8 channels (two blocks) and 16 (one), and 10 classes."""
    return ConvNeXt(stages=((8, 2), (16, 1)), num_classes=10)
