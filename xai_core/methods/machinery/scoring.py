"""The one place where a ``Target`` meets the model: a forward pass that returns the explained score.

Every gradient, CAM and Captum-based method differentiates ``TargetScore(model, target)``, so each
of them explains every kind of target the same way: a class logit, the regression output, or the
negative squared error against a reference value (Grad-CAM for regression, 003).
"""

from __future__ import annotations

import torch
from torch import nn

from ...explanation import Target


class TargetScore(nn.Module):
    """``forward(x [B,T,C,H,W]) -> [B,1]``: ``target.score(model(x))`` as one column.

    Captum's methods take it as their forward function with ``target=TargetScore.captum_target``
    (column 0).  It holds ``model`` as a submodule, so Captum's module hooks (guided backprop's
    ReLU hooks) reach the model's layers."""

    captum_target = 0

    def __init__(self, model: nn.Module, target: Target) -> None:
        super().__init__()
        self.model = model
        self.target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.target.score(self.model(x)).unsqueeze(1)


def gradient_input(x: torch.Tensor) -> torch.Tensor:
    """A detached copy of ``x`` that requires a gradient (also when ``x`` came from inference mode)."""
    return x.detach().clone().requires_grad_(True)
