"""Projected gradient descent (Madry et al. 2018) in an L-infinity or L2 ball, untargeted or targeted.

Plain torch, usable without Lightning: the per-epoch robust accuracy of :class:`RobustFinetuneModule`,
the attack figure and tests use it. Perturbs pixels on the [0,1] scale and never changes the model's
train/eval mode (robust evaluation runs in eval mode); works inside ``torch.no_grad`` blocks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_modules.robust.budgets import LossFn, Norm, check_budget
from lightning_modules.robust.input_gradient import default_loss, expand_rows, loss_grad, parameters_frozen
from neuroalign.core.errors import ConfigError

__all__ = ["pgd"]


def _project(delta: Tensor, x: Tensor, eps: float, norm: Norm) -> Tensor:
    """Project ``delta`` onto the eps ball, then so that ``x + delta`` lies in [0,1].

    The box clamp moves every coordinate towards ``x``, so it never leaves the ball.
    """
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        delta = delta * expand_rows(torch.clamp(eps / norms, max=1.0), delta)
    return torch.clamp(x + delta, 0.0, 1.0) - x


def _random_start(x: Tensor, eps: float, norm: Norm) -> Tensor:
    if norm == "linf":
        delta = torch.empty_like(x).uniform_(-eps, eps)
    else:  # uniform direction, radius uniform in [0, eps]
        direction = torch.randn_like(x)
        direction = direction / expand_rows(direction.flatten(1).norm(dim=1).clamp_min(1e-12), x)
        delta = direction * expand_rows(torch.rand(x.shape[0], device=x.device, dtype=x.dtype) * eps, x)
    return _project(delta, x, eps, norm)


def _step_direction(grad: Tensor, norm: Norm) -> Tensor:
    if norm == "linf":
        return torch.sign(grad)
    return grad / expand_rows(grad.flatten(1).norm(dim=1).clamp_min(1e-12), grad)


def _check_targets(y: Tensor, num_classes: int) -> None:
    bad = y[(y < 0) | (y >= num_classes)]
    if bad.numel():
        raise ConfigError(
            f"target class {int(bad[0])} out of range [0, {num_classes}) for a model with {num_classes} classes (`target`)"
        )


def _checking_targets(loss_fn: LossFn) -> LossFn:
    def checked(logits: Tensor, y: Tensor) -> Tensor:
        _check_targets(y, logits.shape[-1])
        return loss_fn(logits, y)

    return checked


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    alpha: float,
    steps: int,
    norm: Norm = "linf",
    targeted: bool = False,
    restarts: int = 1,
    random_start: bool = True,
    loss_fn: LossFn | None = None,
) -> Tensor:
    """Projected gradient descent in an L-infinity or L2 ball around ``x``, clamped to [0,1].

    Untargeted: maximise the loss of the true labels ``y``; targeted: ``y`` holds the target classes
    and the loss towards them is minimised. With several restarts each sample keeps the restart with
    the highest (untargeted) / lowest (targeted) final loss.

    Args:
        model: maps [0,1] images to logits; its train/eval mode is left untouched.
        x: images (B, C, H, W) in [0,1].
        y: true labels (untargeted) or target classes (targeted), shape (B,).
        eps: radius (L-infinity: per pixel on [0,1], at most 1; L2: norm of the whole perturbation).
        alpha: step size (L-infinity: ``alpha * sign(grad)``; L2: along the unit-norm gradient).
        steps: number of gradient steps (0 returns the start point).
        norm: ``"linf"`` or ``"l2"``.
        targeted: move towards the classes in ``y`` instead of away from them.
        restarts: number of random restarts (>= 1).
        random_start: start from a random point in the ball (otherwise from ``x``; a single restart then).
        loss_fn: ``(logits, y) -> per-sample loss``; cross-entropy by default.

    Returns:
        Adversarial images in [0,1], detached.

    Raises:
        ConfigError: bad budget, ``steps < 0``, ``restarts < 1`` or a target class out of range.
    """
    check_budget(eps, alpha, norm)
    if steps < 0:
        raise ConfigError(f"PGD steps {steps!r} must be >= 0 (`steps`)")
    if restarts < 1:
        raise ConfigError(f"PGD restarts {restarts!r} must be >= 1 (`restarts`)")
    loss_fn = loss_fn or default_loss
    sign = -1.0 if targeted else 1.0
    if targeted:  # a target outside the head fails with a one-line error before any work
        loss_fn = _checking_targets(loss_fn)
    n_starts = restarts if random_start else 1
    with torch.inference_mode(False), torch.enable_grad(), parameters_frozen(model):
        x = x.detach().clone()
        y = y.detach().clone()
        best, best_score = x, None
        for _ in range(n_starts):
            delta = _random_start(x, eps, norm) if random_start else torch.zeros_like(x)
            for _ in range(steps):
                delta.requires_grad_(True)
                _, grad = loss_grad(model, x + delta, delta, y, loss_fn)
                step = sign * alpha * _step_direction(torch.nan_to_num(grad, nan=0.0), norm)
                delta = _project(delta.detach() + step, x, eps, norm)
            if n_starts == 1:
                return (x + delta).detach()
            with torch.no_grad():
                score = sign * loss_fn(model(x + delta), y).float()
            better = score >= best_score if best_score is not None else torch.ones_like(score, dtype=torch.bool)
            best = torch.where(expand_rows(better, x), x + delta, best)
            best_score = score if best_score is None else torch.where(better, score, best_score)
    return best.detach()
