"""torchvision's AlexNet, VGG-16, VGG-16-BN and ResNet-18, written out (the class
definitions of torchvision.models, without the weight downloads), and a small
two-branch network that concatenates.

torchvision from PyPI is built for another torch and does not import beside the CPU
torch these tests use, so the layouts are copied here; ``build(name)`` makes one with
random weights, in eval mode, float64, with its BatchNorm statistics randomised so
that BatchNorm is not the identity.
"""

from __future__ import annotations

import torch
from torch import nn


class AlexNet(nn.Module):                      # torchvision.models.alexnet
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


VGG16_CONFIG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M"]                      # torchvision's cfgs["D"]


def make_vgg_layers(cfg, batch_norm: bool = False) -> nn.Sequential:
    layers = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
            if batch_norm:
                layers += [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            else:
                layers += [conv2d, nn.ReLU(inplace=True)]
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):                          # torchvision.models.vgg16 / vgg16_bn
    def __init__(self, features: nn.Module, num_classes: int = 1000,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):                   # torchvision.models.resnet.BasicBlock
    expansion: int = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)      # called twice in forward
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ResNet(nn.Module):                       # torchvision.models.resnet18's class
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)
        return x


class TwoBranchConcat(nn.Module):
    """A small inception-like network: two branches (3×3 and 1×1 → 5×5) concatenated along
    the channels, functional ReLUs, average pooling and ``x.view(x.size(0), -1)``."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.branch3 = nn.Conv2d(8, 6, 3, padding=1)
        self.branch5a = nn.Conv2d(8, 4, 1)
        self.branch5b = nn.Conv2d(4, 5, 5, padding=2)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                                 count_include_pad=False)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(11 * 9 * 9, num_classes)   # ceil_mode: 16 → 9

    def forward(self, x):
        x = torch.relu(self.stem(x))
        a = torch.nn.functional.relu(self.branch3(x))
        b = self.branch5b(torch.relu(self.branch5a(x)))
        x = torch.cat([a, torch.relu(b)], dim=1)
        x = self.drop(self.pool(x))
        x = x.view(x.size(0), -1)
        return self.head(x)


#: name → (constructor, a small input shape (C, H, W) that every layer accepts)
LAYOUTS = {
    "alexnet": (lambda: AlexNet(num_classes=10), (3, 63, 63)),
    "vgg16": (lambda: VGG(make_vgg_layers(VGG16_CONFIG), num_classes=10), (3, 32, 32)),
    "vgg16_bn": (lambda: VGG(make_vgg_layers(VGG16_CONFIG, batch_norm=True),
                             num_classes=10), (3, 32, 32)),
    "resnet18": (lambda: ResNet(BasicBlock, [2, 2, 2, 2], num_classes=10), (3, 32, 32)),
    "concat": (lambda: TwoBranchConcat(num_classes=10), (3, 16, 16)),
}


def build(name: str, seed: int = 0):
    """``(model, input_shape)``: layout ``name`` with random weights (seeded), its
    BatchNorm running statistics and affine parameters randomised, eval mode, float64."""
    constructor, input_shape = LAYOUTS[name]
    torch.manual_seed(seed)
    model = constructor()
    randomise_batch_norms(model, torch.Generator().manual_seed(seed + 1))
    return model.double().eval(), input_shape


def randomise_batch_norms(model, generator):
    """Draw every BatchNorm2d's running statistics and affine parameters (in place), so
    that no batch norm is the identity."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                shape = module.running_mean.shape
                module.running_mean.copy_(torch.randn(shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(shape, generator=generator) * 0.1)
