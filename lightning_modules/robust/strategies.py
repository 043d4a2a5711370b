"""Training-time perturbation strategies of robust fine-tuning, each with its published defaults.

A strategy is a callable object ``strategy(model, x, y, eps, alpha, loss_fn, loss_scale) -> PerturbResult``:
:class:`~lightning_modules.robust.module.RobustFinetuneModule` passes its training radius ``eps`` and step
``alpha`` (the step a catastrophic-overfitting rollback lowers) and trains on ``x_adv``, adding
``extra_loss`` (a regulariser, e.g. GradAlign's) to the training loss when it is not ``None``. A new
strategy is one subclass of :class:`PerturbStrategy`; select it in YAML with
``perturb: {class_path: lightning_modules.robust.strategies.NFGSM, init_args: {...}}``.

* :class:`FGSMRS` -- FGSM with a random start (Wong, Rice & Kolter 2020), the default (seed 000).
* :class:`NFGSM` -- noise ``k * eps`` (k = 2), step ``eps``, no projection (de Jorge et al. 2022).
* :class:`GradAlign` -- FGSM-RS plus ``lambda * (1 - cos(grad(x), grad(x + eta)))``, eta ~ U(-eps, eps)
  (Andriushchenko & Flammarion 2020).
* :class:`PGDK` -- k steps of projected gradient ascent from a random start (Madry et al. 2018).

Plain torch, no Lightning: the attacks take input gradients only (never accumulate parameter gradients)
and leave the model's train/eval mode alone; GradAlign's regulariser is built with ``create_graph`` so
that it back-propagates to the parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_modules.robust.budgets import LossFn, as_fraction, check_budget
from lightning_modules.robust.fgsm import fgsm_rs_step
from lightning_modules.robust.input_gradient import default_loss, expand_rows, finite_rows, loss_grad, parameters_frozen
from lightning_modules.robust.pgd import pgd
from neuroalign.core.errors import ConfigError

__all__ = ["PerturbResult", "PerturbStrategy", "FGSMRS", "NFGSM", "GradAlign", "PGDK", "gradient_alignment"]


@dataclass
class PerturbResult:
    """What a strategy returns for one training batch.

    Attributes:
        x_adv: the images to train on, detached, in [0,1].
        extra_loss: a scalar added to the training loss (with its graph to the parameters), or ``None``.
        nonfinite: samples whose attack gradient had inf/NaN entries (logged as ``train/attack_nonfinite``).
    """

    x_adv: Tensor
    extra_loss: Tensor | None = None
    nonfinite: int = 0


class PerturbStrategy(ABC):
    """A training-time attack: subclass it and implement :meth:`__call__`."""

    @abstractmethod
    def __call__(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, alpha: float, loss_fn: LossFn | None = None,
        loss_scale: float = 1.0,
    ) -> PerturbResult:
        """Perturb a batch.

        Args:
            model: maps [0,1] images to logits (in train mode during training; the mode is left as it is).
            x: images (B, C, H, W) in [0,1].
            y: integer labels (B,).
            eps: L-infinity training radius on the [0,1] scale.
            alpha: the module's step size (used by the strategies whose step is ``alpha``).
            loss_fn: ``(logits, y) -> per-sample loss`` the attack ascends; cross-entropy by default.
            loss_scale: factor on the attack loss before its backward (fp16 underflow guard).
        """

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class FGSMRS(PerturbStrategy):
    """FGSM with a random start (Wong, Rice & Kolter 2020): :func:`~lightning_modules.robust.fgsm.fgsm_rs_step`.

    ``delta0 ~ U(-eps, eps)``, one signed step of size ``alpha`` (the module's, 1.25 eps in the paper),
    projection to the eps ball and the image box. The default strategy of
    :class:`~lightning_modules.robust.module.RobustFinetuneModule`.
    """

    def __call__(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, alpha: float, loss_fn: LossFn | None = None,
        loss_scale: float = 1.0,
    ) -> PerturbResult:
        result = fgsm_rs_step(model, x, y, eps, alpha, loss_fn=loss_fn, loss_scale=loss_scale)
        return PerturbResult(result.x_adv, None, result.nonfinite)


class NFGSM(PerturbStrategy):
    """N-FGSM (de Jorge et al. 2022): large noise, a full step, no projection to the eps ball.

    ``eta ~ U(-k eps, k eps)``; ``x_adv = clamp(x + eta + step * sign(grad_x loss(x + eta)), 0, 1)``
    where the gradient is taken at the noisy (unclamped) point. The perturbation may reach
    ``(k + 1) eps`` in L-infinity.

    Args:
        noise_multiplier: ``k``; the paper's default 2.
        step: step size on the [0,1] scale (float or ``"8/255"``); ``None`` = ``eps`` (the paper's default).
    """

    def __init__(self, noise_multiplier: float = 2.0, step: float | str | None = None) -> None:
        if not noise_multiplier >= 0.0:
            raise ConfigError(f"N-FGSM noise multiplier {noise_multiplier!r} must be >= 0 (`perturb.init_args.noise_multiplier`)")
        self.noise_multiplier = float(noise_multiplier)
        self.step = None if step is None else as_fraction(step, "perturb.init_args.step")

    def __call__(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, alpha: float, loss_fn: LossFn | None = None,
        loss_scale: float = 1.0,
    ) -> PerturbResult:
        step = eps if self.step is None else self.step
        check_budget(eps, step, "linf", "eps", "perturb.init_args.step")
        loss_fn = loss_fn or default_loss
        with torch.inference_mode(False), torch.enable_grad(), parameters_frozen(model):
            x = x.detach().clone()
            radius = self.noise_multiplier * eps
            eta = torch.empty_like(x).uniform_(-radius, radius).requires_grad_(True)
            _, grad = loss_grad(model, x + eta, eta, y, loss_fn, loss_scale)
            finite = finite_rows(grad)
            signed = torch.sign(torch.nan_to_num(grad, nan=0.0)) * expand_rows(finite, grad)
            x_adv = torch.clamp(x + eta.detach() + step * signed, 0.0, 1.0)
        return PerturbResult(x_adv.detach(), None, int((~finite).sum()))


def gradient_alignment(model: nn.Module, x: Tensor, y: Tensor, eps: float, loss_fn: LossFn | None = None) -> Tensor:
    """GradAlign's regulariser without its lambda: ``mean_i (1 - cos(g_i(x), g_i(x + eta)))``.

    ``g(z) = d loss(model(z), y) / d z`` (per sample), ``eta ~ U(-eps, eps)`` and ``x + eta`` clamped to
    [0,1], as in Andriushchenko & Flammarion (2020). Both gradients keep their graph
    (``create_graph=True``), so the result back-propagates to the parameters (double backprop).
    """
    loss_fn = loss_fn or default_loss
    with torch.inference_mode(False), torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        noisy = torch.clamp(x.detach() + torch.empty_like(x).uniform_(-eps, eps), 0.0, 1.0).requires_grad_(True)
        (g1,) = torch.autograd.grad(loss_fn(model(x), y).sum(), x, create_graph=True)
        (g2,) = torch.autograd.grad(loss_fn(model(noisy), y).sum(), noisy, create_graph=True)
        cos = F.cosine_similarity(g1.flatten(1), g2.flatten(1), dim=1, eps=1e-12)
        return (1.0 - cos).mean()


class GradAlign(PerturbStrategy):
    """GradAlign (Andriushchenko & Flammarion 2020): FGSM-RS examples plus the gradient-alignment regulariser.

    ``extra_loss = lambda * mean(1 - cos(grad_x loss(x), grad_x loss(x + eta)))``,
    eta ~ U(-eps, eps) (:func:`gradient_alignment`). The paper uses lambda 0.2 at eps 8/255 on CIFAR-10
    and grows it with eps; its cost is about 3x an FGSM step (double backprop).

    Args:
        lambda_: regulariser weight (YAML key ``lambda_``).
    """

    def __init__(self, lambda_: float = 0.2) -> None:
        if not lambda_ >= 0.0:
            raise ConfigError(f"GradAlign lambda {lambda_!r} must be >= 0 (`perturb.init_args.lambda_`)")
        self.lambda_ = float(lambda_)

    def __call__(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, alpha: float, loss_fn: LossFn | None = None,
        loss_scale: float = 1.0,
    ) -> PerturbResult:
        result = fgsm_rs_step(model, x, y, eps, alpha, loss_fn=loss_fn, loss_scale=loss_scale)
        extra = self.lambda_ * gradient_alignment(model, x, y, eps, loss_fn) if self.lambda_ > 0 else None
        return PerturbResult(result.x_adv, extra, result.nonfinite)


class PGDK(PerturbStrategy):
    """PGD-k adversarial training (Madry et al. 2018): ``steps`` signed steps from a random start, projected.

    Args:
        steps: ``k``; 10 by default (Madry et al.'s CIFAR-10 training used 7 of 2/255 at eps 8/255).
        step: step size on the [0,1] scale (float or ``"2/255"``); ``None`` = ``2.5 * eps / steps``
            (the rule of Madry et al.'s appendix).
        random_start: start from ``U(-eps, eps)`` (Madry's setting) rather than from ``x``.
    """

    def __init__(self, steps: int = 10, step: float | str | None = None, random_start: bool = True) -> None:
        if steps < 1:
            raise ConfigError(f"PGD-k training needs steps >= 1, got {steps!r} (`perturb.init_args.steps`)")
        self.steps, self.random_start = int(steps), bool(random_start)
        self.step = None if step is None else as_fraction(step, "perturb.init_args.step")

    def __call__(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, alpha: float, loss_fn: LossFn | None = None,
        loss_scale: float = 1.0,
    ) -> PerturbResult:
        step = 2.5 * eps / self.steps if self.step is None else self.step
        x_adv = pgd(model, x, y, eps, step, self.steps, "linf", random_start=self.random_start, loss_fn=loss_fn)
        return PerturbResult(x_adv, None, 0)
