"""What a W&B run of ``neuroalign fit|validate|test|predict`` is called and which config it shows.

* :func:`run_name` -- ``<job>-<config stem>``, e.g. ``fit-quickstart`` for ``configs/quickstart.yaml``
  and ``evolution-quickstart`` for ``configs/evolution/quickstart.yaml``: the job is ``evolution`` for
  an :class:`~lightning_modules.evolution.module.EvolutionModule`, otherwise the sub-command;
* :func:`name_wandb_loggers` -- gives that name to every ``WandbLogger`` of a parsed config whose
  ``name`` is not set (a name the user set is kept). jsonargparse carries ``init_args`` over when a
  config replaces one logger class by another, so a W&B logger also "inherits" the ``name`` of the CSV
  logger it replaced (every quickstart run was called ``quickstart``): a name equal to another logger's
  name or to a default logger name counts as not set;
* :class:`WandbConfigCallback` -- LightningCLI's save-config callback that also logs the whole
  resolved config (model, data, trainer, seed_everything, callbacks with their benchmarks and region
  map, ...) as the run config of every ``WandbLogger``.

Only the CLI uses this file.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from lightning_modules.evolution.module import EvolutionModule

__all__ = ["run_name", "name_wandb_loggers", "resolved_config", "WandbConfigCallback"]


def _class(class_path: Any) -> type | None:
    """The class named by a ``class_path`` string, or ``None`` when it cannot be imported."""
    if not isinstance(class_path, str) or "." not in class_path:
        return None
    module, _, name = class_path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return obj if isinstance(obj, type) else None


def _entries(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def run_name(config: Namespace, subcommand: str | None) -> str:
    """``<job>-<stem of the first --config file>`` (just ``<job>`` without a config file)."""
    model = config.get("model")
    cls = _class(model.get("class_path")) if isinstance(model, Namespace) else None
    job = "evolution" if cls is not None and issubclass(cls, EvolutionModule) else (subcommand or "run")
    files = [f for f in _entries(config.get("config")) if f]
    return f"{job}-{Path(str(files[0])).stem}" if files else job


def name_wandb_loggers(config: Namespace, subcommand: str | None, default_names: Collection[str] = ()) -> list[str]:
    """Set ``init_args.name`` of every unnamed ``WandbLogger`` in ``config.trainer.logger`` to
    :func:`run_name`; a name equal to that of another logger of the config or to one of
    ``default_names`` was carried over from a replaced logger and is replaced too. Returns the names set."""
    entries = [e for e in _entries(config.get("trainer.logger")) if isinstance(e, Namespace)]
    is_wandb = [(cls := _class(e.get("class_path"))) is not None and issubclass(cls, WandbLogger) for e in entries]
    others = {e.get("init_args.name") for e, w in zip(entries, is_wandb) if not w}
    inherited = (others | set(default_names)) - {None, ""}
    named = []
    for entry, wandb in zip(entries, is_wandb):
        if not wandb:
            continue
        if entry.get("init_args") is None:
            entry["init_args"] = Namespace()
        if not entry["init_args"].get("name") or entry["init_args"]["name"] in inherited:
            entry["init_args"]["name"] = run_name(config, subcommand)
            named.append(entry["init_args"]["name"])
    return named


def resolved_config(parser: Any, config: Namespace) -> dict[str, Any]:
    """The resolved config as plain data (what ``--print_config`` shows), without the ``--config`` list."""
    plain = yaml.safe_load(parser.dump(config, skip_none=False, skip_validation=True)) or {}
    plain.pop("config", None)
    return plain


class WandbConfigCallback(SaveConfigCallback):
    """Save ``config.yaml`` next to the logs (as LightningCLI does) and log the same resolved config as
    the run config of every ``WandbLogger``.

    The config is logged at setup and once more when the first loop starts, after the Trainer has
    logged the module's hyper-parameters: those share the ``model`` key, which must stay the config's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = False

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Rank zero, at setup: log the config to the W&B loggers (``config.yaml`` is written by the base class)."""
        self._pending = self._log(trainer)

    def _log(self, trainer: Trainer) -> bool:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if loggers:
            config = resolved_config(self.parser, self.config)
            for logger in loggers:
                logger.log_hyperparams(config)
        return bool(loggers)

    def _after_hparams(self, trainer: Trainer) -> None:
        if self._pending:
            self._pending = False
            self._log(trainer)

    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._after_hparams(trainer)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._after_hparams(trainer)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._after_hparams(trainer)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._after_hparams(trainer)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._after_hparams(trainer)
