"""Adversarial attacks on [0,1] images: FGSM with random start and PGD (L-infinity / L2).

Plain functions, usable without Lightning. Every attack perturbs pixels on the [0,1] scale; the model
normalises inside (as every model in neuroalign does). Gradients are taken with respect to the
perturbation only (``torch.autograd.grad``, with the parameters' ``requires_grad`` switched off for the
duration of the attack and restored after), so no parameter gradient is computed or accumulated.
The attacks never change the model's train/eval mode: the caller decides (FGSM-RS training keeps the
model in train mode for both passes, robust evaluation runs in eval mode). They also work inside
``torch.no_grad`` / ``torch.inference_mode`` blocks (e.g. Lightning's validation loop).

Budgets (``eps``, ``alpha``) are floats on the [0,1] scale; :func:`as_fraction` turns ``"2/255"``-style
strings into floats for configs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroalign.core.errors import ConfigError

__all__ = ["fgsm_rs", "fgsm_rs_step", "pgd", "FGSMResult", "as_fraction", "check_budget", "Norm"]

Norm = Literal["linf", "l2"]
LossFn = Callable[[Tensor, Tensor], Tensor]


def as_fraction(value: float | int | str, key: str) -> float:
    """Parse a budget given as a float, an int or a string such as ``"2/255"`` / ``"0.5"``.

    Args:
        value: the value from a config.
        key: the config key, named in the error message.

    Raises:
        ConfigError: if the value is not a number or a ``"a/b"`` fraction.
    """
    if isinstance(value, bool):
        raise ConfigError(f"`{key}` must be a number or a fraction such as '2/255', got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        text = str(value).strip()
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den)
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"`{key}` must be a number or a fraction such as '2/255', got {value!r}") from None


def check_budget(eps: float, alpha: float, norm: Norm = "linf", eps_key: str = "eps", alpha_key: str = "alpha") -> None:
    """Validate an attack budget; raise :class:`ConfigError` naming the bad value.

    ``eps`` must be >= 0 and ``alpha`` > 0 (finite). For L-infinity both are on the [0,1] pixel scale,
    so both must be <= 1; an L2 radius may exceed 1 (it is a norm over the whole image).
    """
    if norm not in ("linf", "l2"):
        raise ConfigError(f"unknown attack norm {norm!r} (`norm`); use 'linf' or 'l2'")
    upper = 1.0 if norm == "linf" else float("inf")
    if not (0.0 <= eps <= upper) or eps != eps:
        raise ConfigError(f"attack radius {eps!r} out of range [0, {upper:g}] for norm {norm} (`{eps_key}`)")
    if not (0.0 < alpha <= upper) or alpha != alpha:
        raise ConfigError(f"attack step size {alpha!r} out of range (0, {upper:g}] for norm {norm} (`{alpha_key}`)")


def _default_loss(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits.float(), y, reduction="none")


def _loss_grad(
    model: nn.Module, inputs: Tensor, leaf: Tensor, y: Tensor, loss_fn: LossFn, scale: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Per-sample losses at ``inputs`` and d (scale * sum(loss)) / d leaf -- the input only, never the parameters."""
    losses = loss_fn(model(inputs), y)
    if losses.dim() == 0:  # a batch-reduced loss still gives the right gradient sign per sample
        losses = losses.expand(inputs.shape[0])
    (grad,) = torch.autograd.grad(losses.sum() * scale, leaf)
    return losses.detach(), grad


@contextmanager
def _parameters_frozen(model: nn.Module) -> Iterator[None]:
    """Switch ``requires_grad`` off on the model's trainable parameters for the attack pass, then restore it.

    ``torch.autograd.grad(..., delta)`` alone already avoids accumulating parameter gradients; with the
    parameters frozen autograd also stops recording the weight branches (and saving their inputs),
    which makes the attack pass about 15 % cheaper on a ViT (benchmarks/bench_fgsm.py).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _finite_rows(grad: Tensor) -> Tensor:
    """Boolean (B,) mask: the sample's gradient has no inf / NaN."""
    return torch.isfinite(grad.flatten(1)).all(dim=1)


def _expand(mask: Tensor, like: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


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
    loss_fn = loss_fn or _default_loss
    with torch.inference_mode(False), torch.enable_grad(), _parameters_frozen(model):
        x = x.detach().clone()
        delta = torch.empty_like(x).uniform_(-eps, eps)
        delta.requires_grad_(True)
        _, grad = _loss_grad(model, torch.clamp(x + delta, 0.0, 1.0), delta, y, loss_fn, loss_scale)
        finite = _finite_rows(grad)
        step = alpha * torch.sign(torch.nan_to_num(grad, nan=0.0)) * _expand(finite, grad)
        delta = torch.clamp(delta.detach() + step, -eps, eps)
        x_adv = torch.clamp(x + delta, 0.0, 1.0)
    return FGSMResult(x_adv.detach(), int((~finite).sum()))


def fgsm_rs(model: nn.Module, x: Tensor, y: Tensor, eps: float, alpha: float) -> Tensor:
    """FGSM with random start; see :func:`fgsm_rs_step` (which also reports non-finite gradients).

    Returns:
        Adversarial images ``x_adv`` in [0,1] with ``|x_adv - x| <= eps`` element-wise.
    """
    return fgsm_rs_step(model, x, y, eps, alpha).x_adv


def _project(delta: Tensor, x: Tensor, eps: float, norm: Norm) -> Tensor:
    """Project ``delta`` onto the eps ball, then so that ``x + delta`` lies in [0,1].

    The box clamp moves every coordinate towards ``x``, so it never leaves the ball.
    """
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        delta = delta * _expand(torch.clamp(eps / norms, max=1.0), delta)
    return torch.clamp(x + delta, 0.0, 1.0) - x


def _random_start(x: Tensor, eps: float, norm: Norm) -> Tensor:
    if norm == "linf":
        delta = torch.empty_like(x).uniform_(-eps, eps)
    else:  # uniform direction, radius uniform in [0, eps]
        direction = torch.randn_like(x)
        direction = direction / _expand(direction.flatten(1).norm(dim=1).clamp_min(1e-12), x)
        delta = direction * _expand(torch.rand(x.shape[0], device=x.device, dtype=x.dtype) * eps, x)
    return _project(delta, x, eps, norm)


def _step_direction(grad: Tensor, norm: Norm) -> Tensor:
    if norm == "linf":
        return torch.sign(grad)
    return grad / _expand(grad.flatten(1).norm(dim=1).clamp_min(1e-12), grad)


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
    loss_fn = loss_fn or _default_loss
    sign = -1.0 if targeted else 1.0
    if targeted:  # a target outside the head fails with a one-line error before any work
        loss_fn = _checking_targets(loss_fn)
    n_starts = restarts if random_start else 1
    with torch.inference_mode(False), torch.enable_grad(), _parameters_frozen(model):
        x = x.detach().clone()
        y = y.detach().clone()
        best, best_score = x, None
        for _ in range(n_starts):
            delta = _random_start(x, eps, norm) if random_start else torch.zeros_like(x)
            for _ in range(steps):
                delta.requires_grad_(True)
                _, grad = _loss_grad(model, x + delta, delta, y, loss_fn)
                step = sign * alpha * _step_direction(torch.nan_to_num(grad, nan=0.0), norm)
                delta = _project(delta.detach() + step, x, eps, norm)
            if n_starts == 1:
                return (x + delta).detach()
            with torch.no_grad():
                score = sign * loss_fn(model(x + delta), y).float()
            better = score >= best_score if best_score is not None else torch.ones_like(score, dtype=torch.bool)
            best = torch.where(_expand(better, x), x + delta, best)
            best_score = score if best_score is None else torch.where(better, score, best_score)
    return best.detach()
