"""The rule table written in torch, from the table alone, for the activation tests: each
rectifier module (ReLU, ReLU6 / Hardtanh, LeakyReLU, PReLU) replaced by an autograd
Function whose backward is the rule's — rect_α(g) = g (g > 0), α·g otherwise, and f′ the
module's own derivative by torch's autograd.  Uses nothing from minideconv."""

from __future__ import annotations

import torch

tnn = torch.nn


class TableRectifier(torch.autograd.Function):
    """A torch rectifier module whose backward is the rule table, written from the table:
    rect_α(g) = g (g > 0), α·g; f′ = torch's autograd derivative of the module."""

    @staticmethod
    def forward(ctx, x, module, rule):
        ctx.save_for_backward(x)
        ctx.module, ctx.rule = module, rule
        return module(x.clone())

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            x_ = x.detach().requires_grad_(True)
            (derivative,) = torch.autograd.grad(ctx.module(x_).sum(), x_)
        module = ctx.module
        slope = module.weight.detach().reshape(1, -1, *([1] * (x.ndim - 2))) \
            if isinstance(module, tnn.PReLU) else \
            getattr(module, "negative_slope", 0.0)
        rectified = torch.where(g > 0, g, slope * g)
        signal = {"backprop": derivative * g, "deconvnet": rectified,
                  "guided": derivative * rectified}[ctx.rule]
        return signal, None, None


RECTIFIER_MODULES = (tnn.ReLU, tnn.Hardtanh, tnn.LeakyReLU, tnn.PReLU)


class Overridden(tnn.Module):
    def __init__(self, module, rule):
        super().__init__()
        self.module, self.rule = module, rule

    def forward(self, x):
        return TableRectifier.apply(x, self.module, self.rule)


def table_projection(model, index, x, unit, rule):
    """a · ∂a/∂x under ``rule`` at leaf ``index`` of a Sequential, every rectifier module
    replaced by the table's override, every image seeded with its own activation."""
    layers = [Overridden(m, rule) if isinstance(m, RECTIFIER_MODULES) else m
              for m in model]
    xt = torch.from_numpy(x).requires_grad_(True)
    out = tnn.Sequential(*layers[:index + 1])(xt)
    seed = torch.zeros_like(out)
    where = (slice(None),) + tuple(unit)
    seed[where] = out[where].detach()
    (grad,) = torch.autograd.grad(out, xt, seed)
    return grad.numpy()


def rectifier_model():
    """conv – ReLU6 – conv – LeakyReLU – pool – PReLU – flatten – linear, weights scaled so
    that every piece (below 0, inside, above the cap) is visited."""
    torch.manual_seed(0)
    model = tnn.Sequential(tnn.Conv2d(3, 6, 3, padding=1), tnn.ReLU6(),
                           tnn.Conv2d(6, 6, 3), tnn.LeakyReLU(0.1), tnn.MaxPool2d(2),
                           tnn.PReLU(6), tnn.Flatten(), tnn.Linear(6 * 3 * 3, 5)).double()
    with torch.no_grad():
        model[0].weight.mul_(6)
        model[5].weight.copy_(torch.linspace(-0.3, 0.5, 6))
    return model.eval()


def smooth_model():
    torch.manual_seed(1)
    return tnn.Sequential(tnn.Conv2d(3, 5, 3, padding=1), tnn.SiLU(), tnn.Conv2d(5, 5, 3),
                          tnn.Hardswish(), tnn.GELU(approximate="tanh"), tnn.ELU(0.5),
                          tnn.Tanh(), tnn.Sigmoid(), tnn.ReLU(), tnn.Flatten(),
                          tnn.Linear(5 * 6 * 6, 4)).double().eval()
