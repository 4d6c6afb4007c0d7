"""zennit (0.5.1) as the reference for ``minideconv.attribution.lrp``.

``import zennit`` runs ``zennit/__init__.py``, which imports ``zennit.torchvision``, which
imports ``torchvision.models.resnet`` (for its ResNet canonizer's ``BasicBlock`` and
``Bottleneck``).  torchvision may be absent — no build of it fits every torch, e.g. torch
2.13 — while nothing LRP needs comes from it.  So ``import_zennit`` imports zennit with a
stand-in ``torchvision.models.resnet`` (two empty ``torch.nn.Module`` classes) placed in
``sys.modules`` only when the real torchvision cannot be imported, and removes the stand-in
afterwards, so that no later import sees it.  Without torch or zennit the caller's test is
skipped, with the reason.

``zennit_lrp(model, x, targets, composite)`` is zennit's relevance with a one-hot output
seed; ``residual_model(net)`` is ``to_torch(net)`` with each of minideconv's ``Sum`` adds
replaced by a zennit ``Sum`` over the stacked branches, where zennit's ``Norm`` rule
applies (as its ResNet canonizer arranges for torchvision's BasicBlock).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import numpy as np
import pytest

STUBBED = ("torchvision", "torchvision.models", "torchvision.models.resnet")


def real_torchvision_imports() -> bool:
    """Whether ``import torchvision`` works here (entries of a failed attempt removed)."""
    before = set(sys.modules)
    try:
        importlib.import_module("torchvision.models.resnet")
        return True
    except Exception:       # ImportError, or a build of another torch failing otherwise
        for name in set(sys.modules) - before:
            if name == "torchvision" or name.startswith("torchvision."):
                del sys.modules[name]
        return False


def import_zennit():
    """zennit's submodules as a namespace (``core``, ``rules``, ``composites``,
    ``canonizers``, ``layer``, ``types``, ``attribution``); skips the test when torch or
    zennit is missing."""
    torch = pytest.importorskip("torch", reason="the zennit comparison needs torch")
    if importlib.util.find_spec("zennit") is None:
        pytest.skip("zennit is not installed (python -m pip install --no-deps zennit)")
    if "zennit" not in sys.modules and not real_torchvision_imports():
        resnet = types.ModuleType("torchvision.models.resnet")
        resnet.BasicBlock = type("BasicBlock", (torch.nn.Module,), {})
        resnet.Bottleneck = type("Bottleneck", (torch.nn.Module,), {})
        models = types.ModuleType("torchvision.models")
        models.resnet = resnet
        package = types.ModuleType("torchvision")
        package.models = models
        sys.modules.update(zip(STUBBED, (package, models, resnet)))
        try:
            importlib.import_module("zennit")
        finally:
            for name in STUBBED:
                sys.modules.pop(name, None)
    zennit = sys.modules.get("zennit") or importlib.import_module("zennit")
    return types.SimpleNamespace(**{name: importlib.import_module(f"zennit.{name}") for name
                                    in ("core", "rules", "composites", "canonizers",
                                        "layer", "types", "attribution")},
                                 torch=torch, zennit=zennit)


def exact_merge_batch_norm(z):
    """zennit's ``SequentialMergeBatchNorm``, but leaving each merged batch norm computing
    exactly the identity.  zennit's own sets its running mean to 0, its variance to 1, γ to
    1 and β to 0, and keeps ε: the batch norm then computes x / √(1 + ε), not x, so the
    canonized model is not the model (ε = 1e-5: its relevance moves by ~1e-5 relative).
    Here the variance becomes 1 − ε (restored with the rest on removal)."""
    base = z.canonizers.SequentialMergeBatchNorm

    class ExactMergeBatchNorm(base):
        @staticmethod
        def merge_batch_norm(modules, batch_norm):
            base.merge_batch_norm(modules, batch_norm)
            batch_norm.running_var.data = batch_norm.running_var.data - batch_norm.eps

    return ExactMergeBatchNorm()


def zennit_composite(z, name, batch_norm=False):
    """zennit's composite of that name (``EpsilonPlusFlat`` for "epsilon_plus_flat", …),
    with batch norms merged into their convolutions (``exact_merge_batch_norm``) when
    the model has them."""
    canonizers = [exact_merge_batch_norm(z)] if batch_norm else None
    return z.composites.COMPOSITES[name](canonizers=canonizers)


def zennit_lrp(z, model, x, targets, composite):
    """zennit's relevance (N, C, H, W) of the logits ``targets`` (one per image) of
    ``model`` for the images ``x``, seeded with a one-hot ``grad_outputs``."""
    torch = z.torch
    images = torch.tensor(np.asarray(x), requires_grad=True)
    with composite.context(model) as modified:
        logits = modified(images)
        onehot = torch.zeros_like(logits)
        onehot[torch.arange(len(targets)), torch.as_tensor(targets)] = 1
        relevance, = torch.autograd.grad(logits, images, grad_outputs=onehot)
    return relevance.detach().numpy()


def residual_model(z, net):
    """``to_torch(net)`` (a Graph: an fx GraphModule) with every join ``Sum`` module
    replaced by one that stacks its inputs and sums them with zennit's ``Sum`` layer, so
    that zennit's composites put their ``Norm`` rule at each residual add."""
    from minideconv.interop.torch import to_torch
    from minideconv.interop.torch.join_modules import Sum

    torch = z.torch

    class StackedSum(torch.nn.Module):
        """y = Σ_i x_i, computed as zennit's ``Sum(dim=-1)`` of the stacked x_i."""

        def __init__(self):
            super().__init__()
            self.sum = z.layer.Sum(dim=-1)

        def forward(self, *xs):
            return self.sum(torch.stack(xs, dim=-1))

    model = to_torch(net)
    for name, module in list(model.named_children()):
        if isinstance(module, Sum):
            setattr(model, name, StackedSum())
    return model
