"""The FGSM-RS step of robust fine-tuning: FGSM with a random start (Wong, Rice & Kolter 2020).

Plain torch, usable without Lightning. Perturbs pixels on the [0,1] scale (the model normalises inside)
and never changes the model's train/eval mode: FGSM-RS training keeps the model in train mode for both
passes. It also works inside ``torch.no_grad`` / ``torch.inference_mode`` blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lightning_modules.robust.budgets import LossFn, check_budget
from lightning_modules.robust.input_gradient import default_loss, expand_rows, finite_rows, loss_grad, parameters_frozen

__all__ = ["FGSMResult", "fgsm_rs_step"]


@dataclass
class FGSMResult:
    """Output of :func:`fgsm_rs_step`.

    Attributes:
        x_adv: adversarial images in [0,1], detached.
        nonfinite: number of samples whose attack gradient had inf/NaN entries; those samples fall
            back to the random-start point ``clamp(x + delta0, 0, 1)`` (no sign step).
    """

    x_adv: Tensor
    nonfinite: int


def fgsm_rs_step(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    alpha: float,
    loss_fn: LossFn | None = None,
    loss_scale: float = 1.0,
) -> FGSMResult:
    """FGSM with random start (Wong, Rice & Kolter 2020), returning the non-finite-gradient count.

    delta ~ U(-eps, eps) per element (not clamped to the image box); one backward for
    d loss / d delta at ``clamp(x + delta, 0, 1)``; ``delta += alpha * sign(grad)``; delta clamped to
    [-eps, eps]; result ``clamp(x + delta, 0, 1)``.

    Args:
        model: maps [0,1] images to logits; its train/eval mode is left untouched.
        x: images (B, C, H, W) in [0,1].
        y: integer labels (B,).
        eps: L-infinity radius on the [0,1] scale.
        alpha: step size on the [0,1] scale.
        loss_fn: ``(logits, y) -> per-sample loss``; cross-entropy by default.
        loss_scale: multiplies the loss before the backward (sign-invariant; a large value avoids fp16
            underflow of the input gradient, an overflow is caught as a non-finite gradient).
    """
    check_budget(eps, alpha, "linf")
    loss_fn = loss_fn or default_loss
    with torch.inference_mode(False), torch.enable_grad(), parameters_frozen(model):
        x = x.detach().clone()
        delta = torch.empty_like(x).uniform_(-eps, eps)
        delta.requires_grad_(True)
        _, grad = loss_grad(model, torch.clamp(x + delta, 0.0, 1.0), delta, y, loss_fn, loss_scale)
        finite = finite_rows(grad)
        step = alpha * torch.sign(torch.nan_to_num(grad, nan=0.0)) * expand_rows(finite, grad)
        delta = torch.clamp(delta.detach() + step, -eps, eps)
        x_adv = torch.clamp(x + delta, 0.0, 1.0)
    return FGSMResult(x_adv.detach(), int((~finite).sum()))
