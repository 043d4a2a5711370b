"""Robust evaluation to RobustBench's standard: clean, PGD and AutoAttack accuracy on the same images.

AutoAttack (Croce & Hein 2020) is run through ``torchattacks.AutoAttack`` (version ``standard``:
APGD-CE, APGD-T, FAB-T and Square), not re-implemented. torchattacks is imported on first use.
:func:`robustness_report` is what ``neuroalign test`` runs when ``model.init_args.autoattack`` is on.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from lightning_modules.robust.budgets import LossFn, check_budget
from lightning_modules.robust.pgd import pgd
from neuroalign.core.errors import ConfigError

__all__ = ["autoattack", "robustness_report", "format_report"]


def autoattack(
    model: nn.Module, x: Tensor, y: Tensor, eps: float, n_classes: int, seed: int = 0,
    version: Literal["standard", "rand"] = "standard",
) -> Tensor:
    """L-infinity AutoAttack adversarial examples of ``x`` (torchattacks; the model is run in eval mode).

    Args:
        model: maps [0,1] images to logits.
        x: images (B, C, H, W) in [0,1].
        y: labels (B,).
        eps: L-infinity radius on the [0,1] scale.
        n_classes: classifier outputs (APGD-T / FAB-T target the top other classes).
        seed: AutoAttack's seed.
        version: ``standard`` (RobustBench's) or ``rand`` (for randomised defences).
    """
    try:
        import torchattacks  # heavy optional dependency, imported on first use
    except ImportError as err:
        raise ConfigError(
            "AutoAttack needs torchattacks (pip install torchattacks==3.3.0) or `model.init_args.autoattack: false`"
        ) from err
    check_budget(eps, max(eps, 1e-12), "linf")
    was_training = model.training
    attack = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version=version, n_classes=n_classes, seed=seed)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            return attack(x.detach().clone(), y.detach().clone()).detach()
    finally:
        model.train(was_training)


def robustness_report(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    n_classes: int,
    pgd_steps: int = 50,
    pgd_step_size: float = 1 / 255,
    pgd_restarts: int = 10,
    seed: int = 0,
    loss_fn: LossFn | None = None,
) -> dict[str, float]:
    """Clean, PGD, AutoAttack and per-image worst-case accuracy of ``model`` on ``(x, y)`` at ``eps``.

    The model runs in eval mode (its mode is restored). The worst case counts an image as robust only if
    it is classified correctly clean, under PGD and under AutoAttack, so it is at most each of them.

    Returns:
        ``{"n_examples", "eps_255", "clean_acc", "pgd_acc", "autoattack_acc", "worst_case_acc"}``.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            x_pgd = pgd(model, x, y, eps, pgd_step_size, pgd_steps, "linf", restarts=pgd_restarts, loss_fn=loss_fn)
            x_aa = autoattack(model, x, y, eps, n_classes, seed)
        with torch.no_grad():
            correct = {name: model(images).argmax(dim=1) == y for name, images in (("clean", x), ("pgd", x_pgd), ("aa", x_aa))}
    finally:
        model.train(was_training)
    worst = correct["clean"] & correct["pgd"] & correct["aa"]
    return {
        "n_examples": float(y.shape[0]),
        "eps_255": eps * 255.0,
        "clean_acc": correct["clean"].float().mean().item(),
        "pgd_acc": correct["pgd"].float().mean().item(),
        "autoattack_acc": correct["aa"].float().mean().item(),
        "worst_case_acc": worst.float().mean().item(),
    }


def format_report(report: dict[str, float]) -> str:
    """One line of a :func:`robustness_report`, eps in /255."""
    return (
        f"robust evaluation on {int(report['n_examples'])} images at eps {report['eps_255']:g}/255 (Linf): "
        f"clean {report['clean_acc']:.4f}, PGD {report['pgd_acc']:.4f}, AutoAttack {report['autoattack_acc']:.4f}, "
        f"worst case {report['worst_case_acc']:.4f}"
    )
