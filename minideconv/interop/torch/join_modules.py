"""The two torch modules ``to_torch`` writes for the layers that join branches, so that a
sum or a concatenation has a module path — the node's name, which ``from_torch`` reads
back (fx would name a plain ``operator.add`` after the operation: ``"add"``, ``"add_1"``).

Imported by ``layers`` (reading them back) and ``fx`` (writing them, and
tracing them as single calls) once PyTorch is needed.  A ``torch.save``'d model pickles
these classes by this module's path.
"""

from __future__ import annotations

import torch


class Sum(torch.nn.Module):
    """y = x₁ + x₂ + … (minideconv's ``nn.Add``)."""

    def forward(self, *xs):
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return total


class ChannelConcat(torch.nn.Module):
    """y = torch.cat(xs, dim=1) (minideconv's ``nn.Concat``)."""

    def forward(self, *xs):
        return torch.cat(xs, dim=1)
