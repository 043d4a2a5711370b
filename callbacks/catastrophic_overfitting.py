"""``CatastrophicOverfittingMonitor``: watch single-step adversarial training for catastrophic overfitting.

FGSM training fails in a known way (Wong, Rice & Kolter 2020; Andriushchenko & Flammarion 2020):
past some eps and step size, accuracy against a multi-step attack (PGD) collapses to about 0 within a
few iterations while accuracy against the training attack (FGSM) keeps rising. The per-epoch PGD of
:class:`~lightning_modules.robust.module.RobustFinetuneModule` sees it only at the end of the epoch;
this callback measures every ``every_n_steps`` optimiser steps on a fixed, seeded training subset.

Measurement (model in eval mode, on ``n_samples`` training images drawn once at the start of training
with ``seed``, :func:`~lightning_modules.robust.subsets.seeded_subset`):

* ``train/fgsm_acc`` -- accuracy under FGSM-RS at the module's ``eps`` and (current) ``alpha``;
* ``train/pgd_acc`` -- accuracy under PGD-``pgd_steps`` (step ``pgd_step_size``, default eps / 4);
* ``train/co_gap`` -- ``fgsm_acc - pgd_acc``.

Detection rule: catastrophic overfitting is declared at a check where

    ``pgd_acc < pgd_drop * best_pgd_acc``  and  ``fgsm_acc >= fgsm_at_best - fgsm_tolerance``

with ``best_pgd_acc`` the highest PGD accuracy seen so far (at least ``min_best_pgd_acc``, so a net that
was never robust triggers nothing) and ``fgsm_at_best`` the FGSM accuracy at that check: PGD accuracy has
fallen below a fraction of its best while FGSM accuracy did not fall.

Then ``action``:

* ``warn`` -- log it and go on;
* ``stop`` -- also stop training (``trainer.should_stop``);
* ``rollback`` -- restore the weights and optimiser state of the check with the best PGD accuracy
  (kept in CPU memory: the pre-collapse state, which the last check before the detection need not be
  when PGD accuracy slid over several checks) and multiply the module's ``alpha`` by ``alpha_factor``
  (locuslab's early-stopping recipe keeps the best-PGD weights; the step is lowered so that the collapse
  does not happen again at once). After ``max_rollbacks`` rollbacks a further detection restores the
  best-PGD state once more and stops training (early stopping at the best check, as locuslab does):
  when lowering alpha has not prevented the collapse, halving it on and on would only train with a
  step that no longer attacks.

Every event is a log line (with the global step) and the metric ``train/co_event`` (1 at the step of an
event), and after a rollback ``train/attack_alpha``; all metrics go straight to the trainer's loggers at the
check's global step, whatever ``log_every_n_steps`` is. Under DDP the ranks agree on the decision
(:meth:`~lightning.pytorch.strategies.Strategy.reduce_boolean_decision`: any rank's detection counts).
The monitor state (best accuracies, every check, events, the lowered alpha) is saved in checkpoints and
restored on resume; the in-memory snapshot is not (after a resume it is the first check's state until a new
best). At the end of training it draws every check and event into ``co_monitor.png`` in the run's log
folder (:func:`~lightning_modules.robust.co_figure.plot_co_history`; also a W&B image ``train/co_monitor``).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor

from lightning_modules.robust.budgets import as_fraction
from lightning_modules.robust.co_figure import plot_co_history
from lightning_modules.robust.fgsm import fgsm_rs_step
from lightning_modules.robust.pgd import pgd
from lightning_modules.robust.subsets import seeded_subset
from neuroalign.core.errors import ConfigError

__all__ = ["CatastrophicOverfittingMonitor", "COEvent"]

log = logging.getLogger(__name__)

Action = Literal["warn", "stop", "rollback"]


@dataclass
class COEvent:
    """One detection: the global step, the accuracies that triggered it and what was done."""

    step: int
    fgsm_acc: float
    pgd_acc: float
    best_pgd_acc: float
    action: str
    alpha: float


class CatastrophicOverfittingMonitor(Callback):
    """Measure FGSM and PGD accuracy on a fixed training subset every ``every_n_steps``; act on collapse.

    Works with any LightningModule that has ``model`` (the [0,1]-input network), ``eps`` and ``alpha``
    attributes, and optionally ``attack_loss`` (:class:`~lightning_modules.robust.module.RobustFinetuneModule`).

    Args:
        every_n_steps: optimiser steps between checks (the overhead at 200 is measured by
            ``benchmarks/bench_co_monitor.py``).
        n_samples: size of the fixed training subset.
        pgd_steps: PGD steps of the check.
        pgd_step_size: PGD step on the [0,1] scale (float or ``"0.5/255"``); ``None`` = eps / 4.
        pgd_drop: the fraction of the best PGD accuracy below which PGD accuracy counts as collapsed.
        fgsm_tolerance: how far FGSM accuracy may lie below its value at the best PGD check and still
            count as "not falling".
        min_best_pgd_acc: the best PGD accuracy must reach this before anything is declared.
        action: ``warn``, ``stop`` or ``rollback``.
        alpha_factor: the module's ``alpha`` is multiplied by this on a rollback (in (0, 1]).
        max_rollbacks: rollbacks allowed before a detection restores the best-PGD state and stops
            (``rollback`` only; >= 0).
        plot: draw ``co_monitor.png`` at the end of training.
        seed: seed of the subset and of the attacks' random starts (the training RNG is untouched).
    """

    def __init__(
        self,
        every_n_steps: int = 200,
        n_samples: int = 256,
        pgd_steps: int = 10,
        pgd_step_size: float | str | None = None,
        pgd_drop: float = 0.5,
        fgsm_tolerance: float = 0.02,
        min_best_pgd_acc: float = 0.05,
        action: Action = "warn",
        alpha_factor: float = 0.5,
        max_rollbacks: int = 3,
        plot: bool = True,
        seed: int = 0,
    ) -> None:
        if every_n_steps < 1 or n_samples < 1 or pgd_steps < 1:
            raise ConfigError(
                f"CatastrophicOverfittingMonitor needs every_n_steps, n_samples and pgd_steps >= 1, got "
                f"{every_n_steps}, {n_samples}, {pgd_steps}"
            )
        if action not in ("warn", "stop", "rollback"):
            raise ConfigError(f"CatastrophicOverfittingMonitor action {action!r}: use warn, stop or rollback (`action`)")
        if not 0.0 < pgd_drop < 1.0 or not 0.0 < alpha_factor <= 1.0:
            raise ConfigError(f"pgd_drop {pgd_drop!r} must be in (0, 1) and alpha_factor {alpha_factor!r} in (0, 1]")
        self.every_n_steps, self.n_samples, self.pgd_steps = every_n_steps, n_samples, pgd_steps
        self.pgd_step_size = None if pgd_step_size is None else as_fraction(pgd_step_size, "pgd_step_size")
        self.pgd_drop, self.fgsm_tolerance, self.min_best_pgd_acc = pgd_drop, fgsm_tolerance, min_best_pgd_acc
        self.action: Action = action
        if max_rollbacks < 0:
            raise ConfigError(f"CatastrophicOverfittingMonitor max_rollbacks {max_rollbacks!r} must be >= 0 (`max_rollbacks`)")
        self.alpha_factor, self.max_rollbacks, self.plot, self.seed = alpha_factor, max_rollbacks, plot, seed
        self.best_pgd_acc, self.fgsm_at_best = 0.0, 0.0
        self.events: list[COEvent] = []
        self.history: list[dict[str, float]] = []
        self._subset: tuple[Tensor, Tensor] | None = None
        self._snapshot: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
        self._last_checked = -1
        self._restored_alpha: float | None = None
        self._alpha_at_start = 0.0

    # ------------------------------------------------------------------ measurement
    def measure(self, pl_module: LightningModule) -> tuple[float, float]:
        """(FGSM-RS accuracy, PGD accuracy) of the module's network on the subset, in eval mode."""
        if self._subset is None:
            raise RuntimeError("the monitor has no subset yet; it is drawn at the start of training")
        model = pl_module.model
        x, y = (t.to(pl_module.device) for t in self._subset)
        eps, alpha = float(pl_module.eps), float(pl_module.alpha)
        loss_fn = getattr(pl_module, "attack_loss", None)
        step = self.pgd_step_size if self.pgd_step_size is not None else eps / 4
        was_training = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
                torch.manual_seed(self.seed)
                x_fgsm = fgsm_rs_step(model, x, y, eps, alpha, loss_fn=loss_fn).x_adv
                x_pgd = pgd(model, x, y, eps, step, self.pgd_steps, "linf", loss_fn=loss_fn)
            with torch.no_grad():
                fgsm_acc = (model(x_fgsm).argmax(dim=1) == y).float().mean().item()
                pgd_acc = (model(x_pgd).argmax(dim=1) == y).float().mean().item()
        finally:
            model.train(was_training)
        return fgsm_acc, pgd_acc

    def collapsed(self, fgsm_acc: float, pgd_acc: float) -> bool:
        """The detection rule (see the module docstring), against the best check so far."""
        return (
            self.best_pgd_acc >= self.min_best_pgd_acc
            and pgd_acc < self.pgd_drop * self.best_pgd_acc
            and fgsm_acc >= self.fgsm_at_best - self.fgsm_tolerance
        )

    # ------------------------------------------------------------------ Lightning hooks
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Draw the fixed subset (once) and apply an alpha lowered before a resume."""
        for name in ("model", "eps", "alpha"):
            if not hasattr(pl_module, name):
                raise ConfigError(f"CatastrophicOverfittingMonitor needs a module with `{name}` (RobustFinetuneModule)")
        if self._restored_alpha is not None:
            pl_module.alpha = self._restored_alpha
            self._restored_alpha = None
        self._alpha_at_start = float(pl_module.alpha)
        if self._subset is None:
            loader = trainer.train_dataloader
            loader = loader[0] if isinstance(loader, (list, tuple)) else loader
            self._subset = seeded_subset(loader, self.n_samples, self.seed)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if trainer.sanity_checking or step == 0 or step % self.every_n_steps or step == self._last_checked:
            return
        self._last_checked = step
        fgsm_acc, pgd_acc = self.measure(pl_module)
        self.history.append({"step": float(step), "fgsm_acc": fgsm_acc, "pgd_acc": pgd_acc})
        self._log(trainer, {"train/fgsm_acc": fgsm_acc, "train/pgd_acc": pgd_acc, "train/co_gap": fgsm_acc - pgd_acc})
        detected = trainer.strategy.reduce_boolean_decision(self.collapsed(fgsm_acc, pgd_acc), all=False)
        if not detected:
            best = pgd_acc > self.best_pgd_acc
            if best:
                self.best_pgd_acc, self.fgsm_at_best = pgd_acc, fgsm_acc
            if self.action == "rollback" and (best or self._snapshot is None):  # none yet after a resume
                self._snapshot = self._take_snapshot(trainer, pl_module)
            return
        self._act(trainer, pl_module, step, fgsm_acc, pgd_acc)

    def _act(self, trainer: Trainer, pl_module: LightningModule, step: int, fgsm_acc: float, pgd_acc: float) -> None:
        action = self.action
        message = (
            f"catastrophic overfitting at step {step}: PGD accuracy {pgd_acc:.3f} < {self.pgd_drop:g} x best "
            f"{self.best_pgd_acc:.3f} while FGSM accuracy is {fgsm_acc:.3f} (eps {pl_module.eps * 255:g}/255, "
            f"alpha {pl_module.alpha * 255:g}/255)"
        )
        if action == "rollback" and self._snapshot is None:
            action = "warn"
            message += "; no earlier state to roll back to"
        if action == "stop":
            trainer.should_stop = True
            message += "; stopping"
        elif action == "rollback":
            module_state, optimizer_states = self._snapshot
            pl_module.load_state_dict(module_state)
            for optimizer, state in zip(trainer.optimizers, optimizer_states):
                optimizer.load_state_dict(state)
            if self.rollbacks >= self.max_rollbacks:
                action = "rollback_stop"
                trainer.should_stop = True
                message += f"; rolled back to the best-PGD state and stopping ({self.rollbacks} rollbacks did not prevent it, max_rollbacks)"
            else:
                pl_module.alpha = float(pl_module.alpha) * self.alpha_factor
                message += f"; rolled back to the best-PGD state, alpha lowered to {pl_module.alpha * 255:g}/255"
                self._log(trainer, {"train/attack_alpha": float(pl_module.alpha)})
        if trainer.is_global_zero:
            log.warning(message)
        self.events.append(COEvent(step, fgsm_acc, pgd_acc, self.best_pgd_acc, action, float(pl_module.alpha)))
        self._log(trainer, {"train/co_event": 1.0})

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Draw every check and event into ``co_monitor.png`` in the run's log folder (rank zero)."""
        if not self.plot or not self.history or not trainer.is_global_zero:
            return
        folder = Path(trainer.log_dir or trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        alpha = f"{self._alpha_at_start * 255:g}/255"
        if float(pl_module.alpha) != self._alpha_at_start:
            alpha += f" -> {float(pl_module.alpha) * 255:g}/255"
        title = (
            f"catastrophic-overfitting monitor\neps {float(pl_module.eps) * 255:g}/255, alpha {alpha}, "
            f"PGD-{self.pgd_steps} on {len(self._subset[1]) if self._subset is not None else self.n_samples} training images"
        )
        classes = getattr(pl_module, "num_classes", None)
        chance = 1.0 / classes if isinstance(classes, int) and classes > 0 else None
        events = [(e.step, e.action) for e in self.events]
        path = plot_co_history(self.history, events, folder / "co_monitor.png", title, chance)
        log.info("catastrophic-overfitting monitor: %s", path)
        try:
            from lightning.pytorch.loggers import WandbLogger
        except ImportError:  # pragma: no cover
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="train/co_monitor", images=[str(path)])

    @property
    def rollbacks(self) -> int:
        """Rollbacks done so far (kept across resume with the events)."""
        return sum(event.action == "rollback" for event in self.events)

    @staticmethod
    def _log(trainer: Trainer, metrics: dict[str, float]) -> None:
        """Write metrics at the current global step to every logger (not subject to ``log_every_n_steps``)."""
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)

    @staticmethod
    def _take_snapshot(trainer: Trainer, pl_module: LightningModule) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Weights and optimiser states, copied to CPU memory."""
        def to_cpu(value: Any) -> Any:
            if isinstance(value, Tensor):
                return value.detach().to("cpu", copy=True)
            if isinstance(value, dict):
                return {k: to_cpu(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(to_cpu(v) for v in value)
            return copy.deepcopy(value)

        return to_cpu(pl_module.state_dict()), [to_cpu(o.state_dict()) for o in trainer.optimizers]

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "best_pgd_acc": self.best_pgd_acc,
            "fgsm_at_best": self.fgsm_at_best,
            "events": [asdict(e) for e in self.events],
            "history": [dict(h) for h in self.history],
            "alpha": self.events[-1].alpha if self.events else None,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_pgd_acc = float(state_dict.get("best_pgd_acc", 0.0))
        self.fgsm_at_best = float(state_dict.get("fgsm_at_best", 0.0))
        self.events = [COEvent(**e) for e in state_dict.get("events", [])]
        self.history = [dict(h) for h in state_dict.get("history", [])]
        self._restored_alpha = state_dict.get("alpha")
