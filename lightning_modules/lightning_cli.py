"""LightningCLI of neuroalign: ``neuroalign fit|validate|test|predict -c configs/<...>.yaml``.

Models and data are chosen by ``class_path`` (subclass mode), so any LightningModule / DataModule
subclass -- ours or a user's -- plugs in from YAML. The data's ``input_size`` follows the model
(linked after instantiation from the model's ``input_size``), the logger defaults to CSV under
``runs/``, and the resolved config is saved next to the logs (overwritten on a re-run, as W&B needs) and
logged as the config of every W&B run, which is named by job and config (:mod:`.wandb_run`).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from .wandb_run import WandbConfigCallback, name_wandb_loggers

__all__ = ["NeuroAlignCLI", "model_input_side"]

DEFAULT_TRAINER = {
    "default_root_dir": "runs",
    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs", "name": "neuroalign"}},
}


def model_input_side(module: Any) -> int | None:
    """The side (pixels) of the images a LightningModule's network expects, or ``None`` if it has none.

    Looks for ``input_size`` on the module, then on its ``model`` attribute; accepts an int or (C, H, W).
    """
    for owner in (module, getattr(module, "model", None)):
        size = getattr(owner, "input_size", None)
        if size is not None:
            return int(size if isinstance(size, int) else size[-1])
    return None


class NeuroAlignCLI(LightningCLI):
    """LightningCLI with neuroalign defaults: subclass mode, CSV logger, input size linked model -> data,
    and a progress bar that prints plain lines where there is no terminal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("model_class", LightningModule)
        # datamodule_class=None: data is an optional subclass of LightningDataModule (EvolutionModule needs none)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("save_config_callback", WandbConfigCallback)  # config.yaml, and the config on W&B
        kwargs.setdefault("trainer_defaults", DEFAULT_TRAINER)
        kwargs.setdefault("seed_everything_default", 0)
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("parser_kwargs", {"parser_mode": "omegaconf"} if _has_omegaconf() else {})
        super().__init__(*args, **kwargs)

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        """As LightningCLI's, with ``--weights_only`` defaulting to true: ``--ckpt_path`` checkpoints are
        read weights-only (tensors and plain data, no pickled code)."""
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        parser.set_defaults(weights_only=True)
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model", "data.init_args.input_size", compute_fn=model_input_side, apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Name every unnamed W&B run by job and config (``fit-quickstart``, ``evolution-quickstart``)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        name_wandb_loggers(config, self.subcommand, default_names=[DEFAULT_TRAINER["logger"]["init_args"]["name"]])

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        """As LightningCLI's, adding :class:`callbacks.progress.NeuroAlignProgressBar` when the config
        asks for a progress bar (``enable_progress_bar`` not false) without naming one."""
        configured = config.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in [*configured, *callbacks]):
            from callbacks.progress import NeuroAlignProgressBar

            callbacks = [*callbacks, NeuroAlignProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def after_fit(self) -> None:
        self._report_outputs(checkpoints=True)

    def after_validate(self) -> None:
        self._report_outputs()

    def after_test(self) -> None:
        self._report_outputs()

    def _report_outputs(self, checkpoints: bool = False) -> None:
        trainer = self.trainer
        lines = [f"outputs: {trainer.log_dir}"] if trainer.log_dir else []
        callback = trainer.checkpoint_callback
        if checkpoints and callback is not None:
            for kind in ("best_model_path", "last_model_path"):
                path = getattr(callback, kind, "")
                if path and f"checkpoint: {path}" not in lines:
                    lines.append(f"checkpoint: {path}")
        if trainer.is_global_zero:
            for line in lines:
                print(f"[neuroalign] {line}", flush=True)


def _has_omegaconf() -> bool:
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        return False
    return True
