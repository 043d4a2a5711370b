"""``RobustFinetuneModule``: (adversarial) fine-tuning of an injected [0,1]-input classifier.

The system of seed 000: a training-time attack on every training batch when ``adversarial`` is on (the
``perturb`` strategy of :mod:`lightning_modules.robust.strategies`; FGSM with random start by default), the warm-up/halving schedule
(:class:`lightning_modules.robust.schedules.WarmupHalvingLR`) stepping every iteration, clean top-1/top-5
and PGD-L-infinity robust accuracy (:func:`lightning_modules.robust.pgd.pgd`) on a fixed validation subset.
Rotation and greyscale are data options (``data.init_args.rotation`` / ``grayscale_p``).

Subclass it for new architectures or losses: override :meth:`compute_loss` (training loss),
:meth:`attack_loss` (what the attacks ascend) or :meth:`perturb` (the training-time attack; a new attack
is better a :class:`~lightning_modules.robust.strategies.PerturbStrategy` passed as ``perturb``).

Logged keys: ``train/loss``, ``train/acc``, ``train/lr``, ``train/attack_nonfinite`` (samples whose
attack gradient had inf/NaN, which then train on the random-start point), ``val/loss``, ``val/acc``,
``val/acc_top5``, ``val/robust_acc`` and the same under ``test/``; with a regularising strategy
(GradAlign) also ``train/extra_loss``. With ``autoattack: true``, ``neuroalign test`` adds the
AutoAttack report of :func:`lightning_modules.robust.autoattack.robustness_report` on a seeded subset:
``test/aa_clean_acc``, ``test/aa_pgd_acc``, ``test/aa_autoattack_acc`` and ``test/aa_worst_case_acc``.

Robust evaluation needs input gradients inside validation/test; the attacks enable them themselves
(``torch.inference_mode(False)`` + ``torch.enable_grad()``), so the Trainer's default
``inference_mode=True`` works.

Checkpoints: under ``neuroalign fit`` the hyper-parameters are the config (the model as
``class_path``/``init_args``), so ``RobustFinetuneModule.load_from_checkpoint(path)`` rebuilds the
model and the right subclass. A module built in Python keeps no model in its hyper-parameters: pass
``model=...`` to ``load_from_checkpoint``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from lightning_modules.hparams import save_plain_hyperparameters
from lightning_modules.robust.autoattack import format_report, robustness_report
from lightning_modules.robust.budgets import as_fraction, check_budget
from lightning_modules.robust.pgd import pgd
from lightning_modules.robust.schedules import WarmupHalvingLR
from lightning_modules.robust.strategies import FGSMRS, PerturbResult, PerturbStrategy
from lightning_modules.robust.subsets import seeded_subset
from neuroalign.core.errors import ConfigError

__all__ = ["RobustFinetuneModule", "RobustEval", "infer_num_classes", "check_num_classes", "describe_mismatch"]

#: default optimiser of seed 000 (used when ``optimizer`` is None)
DEFAULT_LR, DEFAULT_WEIGHT_DECAY = 2e-4, 1e-4

Stage = Literal["train", "val", "test"]


def infer_num_classes(model: nn.Module) -> int | None:
    """Classifier outputs of ``model``: its (or its ``net``'s) ``num_classes``, else the last ``nn.Linear``."""
    for owner in (model, getattr(model, "net", None)):
        n = getattr(owner, "num_classes", None)
        if isinstance(n, int) and n > 0:
            return n
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def check_num_classes(num_classes: int, datamodule: Any) -> None:
    """Raise a one-line ``ConfigError`` when ``datamodule`` has a ``num_classes`` other than ``num_classes``.

    A head with fewer outputs than the data has classes fails deep in the loss (IndexError); one with
    more trains a softmax over classes that never occur. DataModules without ``num_classes`` are not checked.
    """
    data_classes = getattr(datamodule, "num_classes", None) if datamodule is not None else None
    if not isinstance(data_classes, int) or isinstance(data_classes, bool) or data_classes == num_classes:
        return
    raise ConfigError(
        f"the model outputs {num_classes} classes but the data has {data_classes}; set "
        f"`model.init_args.model.init_args.num_classes` (or `model.init_args.num_classes`) and "
        f"`data.init_args.num_classes` to the same value"
    )


def _set_head(model: nn.Module, num_classes: int) -> None:
    """Give ``model`` a fresh ``num_classes``-way head (timm ``reset_classifier`` style)."""
    for owner in (model, getattr(model, "net", None)):
        if owner is not None and hasattr(owner, "reset_classifier"):
            owner.reset_classifier(num_classes)
            if owner is not model and hasattr(model, "num_classes"):
                model.num_classes = num_classes
            return
    raise ConfigError(
        f"num_classes={num_classes} differs from the model's {infer_num_classes(model)} outputs and "
        f"{type(model).__name__} has no reset_classifier(); set `model.init_args.num_classes` instead of `num_classes`"
    )


class RobustEval:
    """PGD-L-infinity robust-accuracy settings of one stage (plain value object).

    Args:
        steps: PGD steps (0 switches robust accuracy off for the stage).
        step_size: PGD step on the [0,1] scale (float or ``"1/255"``).
        restarts: random restarts.
        samples: size of the fixed subset (first samples of the stage's loader); ``None`` = all.
    """

    def __init__(self, steps: int, step_size: float | str, restarts: int, samples: int | None, key: str) -> None:
        self.steps, self.restarts, self.samples = steps, restarts, samples
        self.step_size = as_fraction(step_size, f"{key}_step_size")
        if steps < 0 or restarts < 1 or (samples is not None and samples < 0):
            raise ConfigError(
                f"robust evaluation needs steps >= 0, restarts >= 1, samples >= 0; got {steps}, {restarts}, {samples} (`{key}_*`)"
            )

    @property
    def enabled(self) -> bool:
        return self.steps > 0 and self.samples != 0


class RobustFinetuneModule(LightningModule):
    """Fine-tune a classifier on [0,1] images, optionally adversarially (FGSM-RS), with robust eval.

    Args:
        model: the network, taking [0,1] RGB images and normalising inside (e.g. class_path
            ``lightning_modules.zoo.ZooModel``). Never a default instance.
        optimizer: optimiser callable (LightningCLI ``optimizer: {class_path: torch.optim.Adam, ...}``);
            ``None`` = Adam, lr 2e-4, weight decay 1e-4 (seed 000) on all parameters.
        scheduler: learning-rate scheduler callable; ``None`` = constant lr.
            :class:`~lightning_modules.robust.schedules.WarmupHalvingLR` steps every iteration and gets its
            ``iterations_per_epoch`` from the trainer when left unset.
        scheduler_interval: ``auto`` = ``step`` for WarmupHalvingLR, ``epoch`` for any other scheduler.
        adversarial: train on ``perturb``'s examples (seed 000 "+adv" rows) instead of clean images.
        perturb: the training-time attack, a :class:`~lightning_modules.robust.strategies.PerturbStrategy`
            (YAML ``perturb: {class_path: lightning_modules.robust.strategies.NFGSM}``); ``None`` =
            :class:`~lightning_modules.robust.strategies.FGSMRS`, the seed-000 FGSM-RS step.
        eps: L-infinity radius of the training attack and of the robust evaluation, on the [0,1] scale
            (float or ``"2/255"``).
        alpha: step size of the training attack (FGSM-RS, GradAlign; float or ``"2.5/255"``); a
            :class:`~callbacks.catastrophic_overfitting.CatastrophicOverfittingMonitor` rollback lowers it.
        attack_loss_scale: factor on the attack loss before its backward (sign-invariant; guards
            fp16 gradient underflow; overflow shows up in ``train/attack_nonfinite``).
        num_classes: classifier outputs; if it differs from the model's head the head is replaced
            (``reset_classifier``) and the metrics use it. ``None`` = the model's.
        label_smoothing: label smoothing of the training / evaluation cross-entropy.
        val_pgd_steps: PGD steps of the per-epoch robust accuracy (0 = off).
        val_pgd_step_size: its step size (float or ``"a/255"``).
        val_pgd_restarts: its random restarts.
        val_robust_samples: size of the fixed validation subset attacked every epoch (first samples of
            the val loader, which is not shuffled); ``None`` = all.
        test_pgd_steps: PGD steps of ``neuroalign test`` (locuslab setting: 50).
        test_pgd_step_size: its step size (locuslab: 1/255).
        test_pgd_restarts: its restarts (locuslab: 10).
        test_robust_samples: attacked test samples; ``None`` = all.
        autoattack: ``neuroalign test`` also runs the standard AutoAttack (torchattacks; slow) on
            ``autoattack_n_examples`` test images drawn with ``autoattack_seed``, and prints clean, PGD
            (the ``test_pgd_*`` settings), AutoAttack and per-image worst-case accuracy with eps in /255.
        autoattack_n_examples: size of that seeded subset (RobustBench uses 1000 or more).
        autoattack_seed: seed of the subset and of AutoAttack's random restarts.
        channels_last: keep the network's weights and every image batch in channels-last memory
            format (faster convolutions on CPUs with oneDNN and on GPUs with tensor cores; measured in
            ``benchmarks/bench_quickstart_step.py``); results are the same up to float rounding.
    """

    #: init arguments a run resumed with ``--ckpt_path`` may change (evaluation only; ``NeuroAlignCLI``
    #: refuses a resume that changes any other: the network, optimiser, schedule, attack, loss)
    resumable_hparams: tuple[str, ...] = (
        "val_pgd_steps", "val_pgd_step_size", "val_pgd_restarts", "val_robust_samples",
        "test_pgd_steps", "test_pgd_step_size", "test_pgd_restarts", "test_robust_samples", "channels_last",
        "autoattack", "autoattack_n_examples", "autoattack_seed",
    )

    def __init__(
        self,
        model: nn.Module,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["auto", "step", "epoch"] = "auto",
        adversarial: bool = True,
        perturb: PerturbStrategy | None = None,
        eps: float | str = "2/255",
        alpha: float | str = "2.5/255",
        attack_loss_scale: float = 1.0,
        num_classes: int | None = None,
        label_smoothing: float = 0.0,
        val_pgd_steps: int = 10,
        val_pgd_step_size: float | str = "0.5/255",
        val_pgd_restarts: int = 1,
        val_robust_samples: int | None = 256,
        test_pgd_steps: int = 50,
        test_pgd_step_size: float | str = "1/255",
        test_pgd_restarts: int = 10,
        test_robust_samples: int | None = None,
        channels_last: bool = False,
        autoattack: bool = False,
        autoattack_n_examples: int = 1000,
        autoattack_seed: int = 0,
    ) -> None:
        super().__init__()
        # Under LightningCLI the hparams are the config (model/optimizer as class_path dicts) and
        # rebuild everything on load_from_checkpoint; objects passed from Python are not stored.
        save_plain_hyperparameters(self, ("model", "optimizer", "scheduler", "perturb"))

        self.channels_last = channels_last
        self.model = model.to(memory_format=torch.channels_last) if channels_last else model
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval = scheduler_interval
        self.adversarial = adversarial
        if perturb is not None and not callable(perturb):
            raise ConfigError(f"`model.init_args.perturb` must be a PerturbStrategy, got {type(perturb).__name__}")
        self.perturb_strategy: PerturbStrategy = perturb if perturb is not None else FGSMRS()
        self.eps, self.alpha = as_fraction(eps, "model.init_args.eps"), as_fraction(alpha, "model.init_args.alpha")
        check_budget(self.eps, self.alpha, "linf", "model.init_args.eps", "model.init_args.alpha")
        self.attack_loss_scale = attack_loss_scale
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing {label_smoothing!r} must be in [0, 1) (`model.init_args.label_smoothing`)")
        self.label_smoothing = label_smoothing
        self.robust_eval = {
            "val": RobustEval(val_pgd_steps, val_pgd_step_size, val_pgd_restarts, val_robust_samples, "model.init_args.val_pgd"),
            "test": RobustEval(
                test_pgd_steps, test_pgd_step_size, test_pgd_restarts, test_robust_samples, "model.init_args.test_pgd"
            ),
        }

        current = infer_num_classes(model)
        if num_classes is not None and num_classes != current:
            _set_head(model, num_classes)
        self.num_classes = num_classes or current
        if not self.num_classes:
            raise ConfigError(f"cannot tell how many classes {type(model).__name__} outputs; set `model.init_args.num_classes`")

        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(self.num_classes, top_k=1, average="micro"),
                "acc_top5": MulticlassAccuracy(self.num_classes, top_k=min(5, self.num_classes), average="micro"),
            }
        )
        self.train_metrics = MetricCollection({"acc": metrics["acc"].clone()}, prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        robust = MetricCollection({"robust_acc": MulticlassAccuracy(self.num_classes, top_k=1, average="micro")})
        self.val_robust = robust.clone(prefix="val/")
        self.test_robust = robust.clone(prefix="test/")
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self._robust_seen = 0
        if autoattack_n_examples < 1:
            raise ConfigError(f"autoattack_n_examples {autoattack_n_examples!r} must be >= 1 (`model.init_args.autoattack_n_examples`)")
        self.autoattack, self.autoattack_n_examples, self.autoattack_seed = autoattack, autoattack_n_examples, autoattack_seed
        #: the last AutoAttack report of ``neuroalign test`` (see :func:`~lightning_modules.robust.autoattack.robustness_report`)
        self.autoattack_report: dict[str, float] | None = None

    # ------------------------------------------------------------------ overridable pieces
    def forward(self, x: Tensor) -> Tensor:
        """Logits of [0,1] images."""
        return self.model(x)

    def compute_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """Training / evaluation loss (mean over the batch); cross-entropy with label smoothing."""
        return F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)

    def attack_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """Per-sample loss the attacks ascend (plain cross-entropy, as in the reference)."""
        return F.cross_entropy(logits.float(), y, reduction="none")

    def perturb(self, x: Tensor, y: Tensor) -> PerturbResult:
        """Training-time attack: the ``perturb`` strategy at ``eps`` / ``alpha`` in the current (train) mode."""
        return self.perturb_strategy(
            self.model, x, y, self.eps, self.alpha, loss_fn=self.attack_loss, loss_scale=self.attack_loss_scale
        )

    def images(self, batch: Any) -> Tensor:
        """The image batch, in channels-last memory format when ``channels_last`` is on."""
        x = batch[0]
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def model_step(self, batch: Any) -> tuple[Tensor, Tensor, Tensor]:
        """Shared step: (loss, logits, labels) on the clean batch."""
        x, y = self.images(batch), batch[1]
        logits = self(x)
        return self.compute_loss(logits, y), logits, y

    # ------------------------------------------------------------------ Lightning hooks
    def setup(self, stage: str) -> None:
        """Check, before any step, that the classifier has as many outputs as the data has classes."""
        check_num_classes(self.num_classes, getattr(self.trainer, "datamodule", None))

    def on_train_start(self) -> None:
        # the sanity check must not leak into the first epoch's validation metrics
        for metric in (self.val_metrics, self.val_robust, self.val_loss):
            metric.reset()

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = self.images(batch), batch[1]
        extra = None
        if self.adversarial:
            result = self.perturb(x, y)
            x, extra = result.x_adv, result.extra_loss
            self.log("train/attack_nonfinite", float(result.nonfinite), on_step=False, on_epoch=True, reduce_fx="sum")
        loss, logits, y = self.model_step((x, y))
        if extra is not None:
            self.log("train/extra_loss", extra.detach(), on_step=False, on_epoch=True)
            loss = loss + extra
        self.train_metrics.update(logits.detach(), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._robust_seen = 0

    def on_test_epoch_start(self) -> None:
        self._robust_seen = 0

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")
        if self.autoattack:
            self._autoattack()

    def _autoattack(self) -> None:
        """The AutoAttack report on the seeded test subset: logged under ``test/aa_*`` and printed."""
        loader = self.trainer.test_dataloaders
        loader = loader[0] if isinstance(loader, (list, tuple)) else loader
        x, y = seeded_subset(loader, self.autoattack_n_examples, self.autoattack_seed)
        settings = self.robust_eval["test"]
        report = robustness_report(
            self.model, x.to(self.device), y.to(self.device), self.eps, self.num_classes,
            pgd_steps=max(settings.steps, 1), pgd_step_size=settings.step_size, pgd_restarts=settings.restarts,
            seed=self.autoattack_seed, loss_fn=self.attack_loss,
        )
        self.autoattack_report = report
        self.print(format_report(report))
        self.log_dict({f"test/aa_{k}": v for k, v in report.items() if k.endswith("acc")})

    def _eval_step(self, stage: Stage, batch: Any) -> None:
        loss, logits, y = self.model_step(batch)
        getattr(self, f"{stage}_loss").update(loss, weight=y.shape[0])
        getattr(self, f"{stage}_metrics").update(logits, y)
        settings = self.robust_eval[stage]
        if not settings.enabled:
            return
        room = y.shape[0] if settings.samples is None else min(y.shape[0], settings.samples - self._robust_seen)
        if room <= 0:
            return
        x, y = self.images(batch)[:room], y[:room]
        x_adv = pgd(
            self.model, x, y, self.eps, settings.step_size, settings.steps, "linf",
            restarts=settings.restarts, loss_fn=self.attack_loss,
        )
        getattr(self, f"{stage}_robust").update(self(x_adv), y)
        self._robust_seen += room

    def _eval_epoch_end(self, stage: Stage) -> None:
        logs = {f"{stage}/loss": getattr(self, f"{stage}_loss").compute(), **getattr(self, f"{stage}_metrics").compute()}
        if self._robust_seen:
            logs.update(getattr(self, f"{stage}_robust").compute())
        self.log_dict(logs, prog_bar=True)
        for name in ("loss", "metrics", "robust"):
            getattr(self, f"{stage}_{name}").reset()

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        if self.optimizer_factory is None:
            optimizer = torch.optim.Adam(params, lr=DEFAULT_LR, weight_decay=DEFAULT_WEIGHT_DECAY)
        else:
            optimizer = self.optimizer_factory(params)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        if isinstance(scheduler, WarmupHalvingLR) and scheduler.iterations_per_epoch is None:
            scheduler.iterations_per_epoch = self._iterations_per_epoch()
        interval = self.scheduler_interval
        if interval == "auto":
            interval = "step" if isinstance(scheduler, WarmupHalvingLR) else "epoch"
        config: dict[str, Any] = {"scheduler": scheduler, "interval": interval}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = "val/loss"
        return {"optimizer": optimizer, "lr_scheduler": config}

    def _iterations_per_epoch(self) -> int:
        """Optimiser steps per epoch, from the trainer (the train loader is set up if needed)."""
        trainer = self.trainer
        _ = trainer.estimated_stepping_batches  # sets up the train loader when it is not yet
        batches = trainer.num_training_batches
        if not math.isfinite(batches) or batches < 1:
            raise ConfigError(
                f"cannot infer iterations per epoch from a train loader of {batches} batches; "
                "set `model.init_args.scheduler.init_args.iterations_per_epoch`"
            )
        return max(1, math.ceil(batches / trainer.accumulate_grad_batches))

    # ------------------------------------------------------------------ checkpoints
    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """As ``nn.Module.load_state_dict``, with a one-line :class:`ConfigError` on an architecture mismatch."""
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except RuntimeError as err:
            raise ConfigError(describe_mismatch(self.state_dict(), state_dict, self.model)) from err


def describe_mismatch(
    own: Mapping[str, Tensor], loaded: Mapping[str, Any], model: nn.Module, keys: str = "`ckpt_path` / `model.init_args.model`"
) -> str:
    """One line: how a state dict differs from a model's (missing / unexpected keys, shape mismatches)."""
    missing = [k for k in own if k not in loaded]
    unexpected = [k for k in loaded if k not in own]
    shapes = [
        f"{k} {tuple(loaded[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in loaded and hasattr(loaded[k], "shape") and tuple(loaded[k].shape) != tuple(own[k].shape)
    ]
    parts = [f"{len(missing)} missing keys" + (f" (e.g. {missing[0]})" if missing else "")]
    parts.append(f"{len(unexpected)} unexpected" + (f" (e.g. {unexpected[0]})" if unexpected else ""))
    parts.append(f"{len(shapes)} shape mismatches" + (f" (e.g. {shapes[0]})" if shapes else ""))
    name = getattr(model, "name", type(model).__name__)
    return f"checkpoint does not fit model {name!r}: {', '.join(parts)}; check {keys}"
