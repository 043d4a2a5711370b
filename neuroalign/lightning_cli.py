"""LightningCLI of neuroalign: ``neuroalign fit|validate|test|predict -c configs/<...>.yaml``.

Models and data are chosen by ``class_path`` (subclass mode), so any LightningModule / DataModule
subclass -- ours or a user's -- plugs in from YAML. The data's ``input_size`` follows the model
(linked after instantiation from the model's ``input_size``), the logger defaults to CSV under
``runs/``, and the resolved config is saved next to the logs (overwritten on a re-run, as W&B needs) and
logged as the config of every W&B run, which is named by job and config (:mod:`.wandb_run`).

``--ckpt_path`` follows :mod:`neuroalign.resume`: the config runs, a change the checkpoint
cannot honour is refused in one line, ``last`` finds the run's newest complete checkpoint, and an
interrupted ``fit`` prints the command that resumes it. Parse errors are one ``neuroalign: error:``
line first (no usage dump); ``limit_*_batches: 1`` means one batch, ``0.5`` half of them.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import yaml
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from neuroalign.core.checkpoints import describe_checkpoint, newest_checkpoint, read_checkpoint, resolve_checkpoint
from neuroalign.core.errors import ConfigError, MissingFileError
from neuroalign.core.modules import input_hw
from neuroalign.core.output_paths import output_dir
from neuroalign.resume import resume_command, resume_differences, run_folders
from neuroalign.wandb_run import WandbConfigCallback, name_wandb_loggers

__all__ = ["NeuroAlignCLI", "NeuroAlignArgumentParser", "model_input_side"]

DEFAULT_TRAINER = {
    "default_root_dir": "runs",
    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs", "name": "neuroalign"}},
}

#: Trainer arguments typed ``int | float``: an int is a number of batches, a float a fraction of them
BATCH_LIMITS = ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches")

#: exit status of a run stopped by Ctrl+C (SIGINT), as shells report it
INTERRUPTED_STATUS = 130


def model_input_side(module: Any) -> int | None:
    """The side (pixels) of the images a LightningModule's network expects (:func:`~neuroalign.core.modules.input_hw`), or ``None``."""
    hw = input_hw(module)
    return None if hw is None else hw[-1]


def _say(message: str) -> None:
    rank_zero_info(f"[neuroalign] {message}")


class NeuroAlignArgumentParser(LightningArgumentParser):
    """LightningArgumentParser whose errors print the message first, as ``neuroalign: error: ...``,
    instead of the usage of every option followed by the message."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        """Print ``neuroalign: error: <message>`` (further lines of a long message indented) and exit 2."""
        if not self.exit_on_error:
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        lines = [line for line in str(message).strip().splitlines() if line.strip()] or ["invalid arguments"]
        summary = _nested_problem(lines)
        sys.stderr.write(f"neuroalign: error: {summary or lines[0].strip()}\n")
        for line in lines[1:] if summary is None else lines:
            sys.stderr.write(f"  {line.strip()}\n")
        sys.stderr.write(f"  (options: {parser.prog.replace(' [options]', '')} --help)\n")
        self.exit(2)


_NOISE = ("Parser key", "Does not validate", "Subtypes:", "Errors:", "- Expected a <class", "Given value", "- Problem with given class_path")


def _nested_problem(lines: list[str]) -> str | None:
    """One line for jsonargparse's nested ``class_path`` errors: the full key and the innermost cause.

    ``Parser key "model": ... Problem with given class_path 'X': Parser key "perturb": ... module 'm' has no
    attribute 'Nope'`` becomes ``model.init_args.perturb: class_path 'm.Nope': module 'm' has no attribute 'Nope'``.
    ``None`` when the message is not of that form.
    """
    keys = [m.group(1) for line in lines if (m := re.search(r'Parser key "([^"]+)"', line))]
    paths = [m.group(1) for line in lines if (m := re.search(r"Problem with given class_path '([^']+)'", line))]
    causes = [line.strip().lstrip("- ") for line in lines if not line.strip().startswith(_NOISE)]
    if len(keys) < 2 or not causes:
        return None
    where = f"class_path {paths[-1]!r}: " if len(paths) >= len(keys) else ""
    return f"{'.init_args.'.join(keys)}: {where}{causes[0]}"


class NeuroAlignCLI(LightningCLI):
    """LightningCLI with neuroalign defaults: subclass mode, CSV logger, input size linked model -> data,
    a progress bar that prints plain lines where there is no terminal, and resumes that honour the
    config (see :mod:`neuroalign.resume`)."""

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
        kwargs.setdefault("parser_class", NeuroAlignArgumentParser)
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
        _batch_limits_try_int_first(parser)

    def before_instantiate_classes(self) -> None:
        """Name every unnamed W&B run by job and config (``fit-quickstart``, ``evolution-quickstart``)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        name_wandb_loggers(config, self.subcommand, default_names=[DEFAULT_TRAINER["logger"]["init_args"]["name"]])

    # ------------------------------------------------------------------ parsing
    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """As LightningCLI's; remembers the command line for the resume command of an interrupted run."""
        self._argv = [str(a) for a in args] if isinstance(args, (list, tuple)) else (sys.argv[1:] if args is None else None)
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        """Check ``--ckpt_path`` instead of LightningCLI's silent "the checkpoint's model wins".

        ``last`` / ``latest:<folder>`` are resolved to a file; a missing or unreadable file is a
        one-line error; the checkpoint's hyper-parameters are compared with the configured model and a
        change the module does not list in ``resumable_hparams`` is refused, every differing key in one
        line. The file loaded is printed with its global step, epoch and time.
        """
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        spec = config.get("ckpt_path")
        if not spec or spec in ("best", "hpc") or str(spec).startswith("registry"):
            return
        if spec == "last":
            path = newest_checkpoint(run_folders(config.get("trainer") or {}))
            if path is None:
                folders = ", ".join(str(f) for f in run_folders(config.get("trainer") or {}))
                raise MissingFileError(f"complete checkpoint of this config's runs (under {folders})", None, "--ckpt_path", hint="Train first, or give a checkpoint file")
        else:
            path = resolve_checkpoint(spec, "--ckpt_path")
        checkpoint = read_checkpoint(path, "--ckpt_path")
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            raise ConfigError(f"--ckpt_path {path} is not a Lightning checkpoint (it has no `state_dict`); give a checkpoint a `neuroalign fit` run wrote")
        config.ckpt_path = str(path)
        hparams = checkpoint.get("hyper_parameters") or {}
        if hparams:
            self._refuse_changes(path, self._configured_model(subcommand), hparams)
        _say(f"{'resuming' if subcommand == 'fit' else subcommand + ' with'} {describe_checkpoint(path, checkpoint)}")

    def _configured_model(self, subcommand: str) -> dict[str, Any]:
        """The model's config as the checkpoint records it (LightningCLI's dump of the parsed config)."""
        dump = yaml.safe_load(self.parser.dump(self.config, skip_link_targets=False, skip_none=False, format="yaml"))
        return dump[subcommand]["model"]

    @staticmethod
    def _refuse_changes(path: Path, configured: dict[str, Any], hparams: dict[str, Any]) -> None:
        class_path = str(configured.get("class_path") or "")
        module, _, name = class_path.rpartition(".")
        try:
            resumable = tuple(getattr(getattr(importlib.import_module(module), name), "resumable_hparams", ()))
        except (ImportError, AttributeError, ValueError):
            resumable = ()
        lines = resume_differences(configured, hparams, resumable)
        if not lines:
            return
        run_config = path.parent.parent / "config.yaml"
        where = f" (that run's config: {run_config})" if run_config.is_file() else ""
        raise ConfigError(
            f"--ckpt_path {path} was written with other settings than the config: {'; '.join(lines)}. "
            f"Restore them{where}, or start a new run without --ckpt_path to change them"
        )

    # ------------------------------------------------------------------ running
    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        """As LightningCLI's, adding :class:`callbacks.progress.NeuroAlignProgressBar` when the config
        asks for a progress bar (``enable_progress_bar`` not false) without naming one."""
        configured = config.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in [*configured, *callbacks]):
            from callbacks.progress import NeuroAlignProgressBar

            callbacks = [*callbacks, NeuroAlignProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def _run_subcommand(self, subcommand: str) -> None:
        """As LightningCLI's; a run stopped by Ctrl+C prints the command that resumes it and exits 130."""
        try:
            super()._run_subcommand(subcommand)
        except SystemExit:
            if not self.trainer.interrupted:
                raise
            self._report_interrupt(subcommand)
            raise SystemExit(INTERRUPTED_STATUS) from None

    def _report_interrupt(self, subcommand: str) -> None:
        if not self.trainer.is_global_zero:
            return
        folders = [cb.dirpath for cb in self.trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)]
        latest = newest_checkpoint(folders) if subcommand == "fit" else None
        if latest is not None and self._argv is not None:
            message = f"interrupted; resume with: {resume_command(self._argv, latest)}"
        elif latest is not None:
            message = f"interrupted; resume with --ckpt_path {latest}"
        elif subcommand == "fit":
            message = "interrupted before the first checkpoint was written; nothing to resume, run the command again"
        else:
            message = "interrupted"
        print(f"neuroalign: {message}", file=sys.stderr, flush=True)

    def before_fit(self) -> None:
        self._check_output_folders()

    def before_validate(self) -> None:
        self._check_output_folders()

    def before_test(self) -> None:
        self._check_output_folders()

    def before_predict(self) -> None:
        self._check_output_folders()

    def _check_output_folders(self) -> None:
        """Stop with one line, before any work, when a folder the run writes to cannot be written."""
        trainer = self.trainer
        places = [(trainer.default_root_dir, "trainer.default_root_dir")]
        for i, logger in enumerate(trainer.loggers):
            key = "trainer.logger.init_args.save_dir" if len(trainer.loggers) == 1 else f"trainer.logger[{i}].init_args.save_dir"
            if getattr(logger, "save_dir", None):
                places.append((logger.save_dir, key))
        for callback in trainer.checkpoint_callbacks:
            if getattr(callback, "dirpath", None):
                places.append((callback.dirpath, "dirpath of the ModelCheckpoint in trainer.callbacks"))
        for folder, key in places:
            if "://" not in str(folder):
                output_dir(Path(folder), key)

    def after_fit(self) -> None:
        self._report_outputs(checkpoints=True)

    def after_validate(self) -> None:
        self._report_outputs()

    def after_test(self) -> None:
        self._report_outputs()

    def _report_outputs(self, checkpoints: bool = False) -> None:
        """Print the run's folder and, after ``fit``, its checkpoints (with the ``latest:`` name of the last)."""
        trainer = self.trainer
        lines = [f"outputs: {trainer.log_dir}"] if trainer.log_dir else []
        callback = trainer.checkpoint_callback
        if checkpoints and callback is not None:
            seen: set[str] = set()
            for kind in ("best_model_path", "last_model_path"):
                path = getattr(callback, kind, "")
                if path and path not in seen:
                    seen.add(path)
                    lines.append(f"checkpoint: {describe_checkpoint(path)}{_latest_name(Path(path)) if kind == 'last_model_path' else ''}")
        if trainer.is_global_zero:
            for line in lines:
                print(f"[neuroalign] {line}", flush=True)


def _latest_name(path: Path) -> str:
    """``; configs name it latest:<save_dir>/<name>`` for ``<save_dir>/<name>/version_N/checkpoints/last.ckpt``."""
    if path.name == "last.ckpt" and path.parent.name == "checkpoints" and path.parent.parent.name.startswith("version_"):
        return f"; configs name it latest:{path.parent.parent.parent}"
    return ""


def _batch_limits_try_int_first(parser: LightningArgumentParser) -> None:
    """Make ``limit_train_batches: 1`` (YAML or command line) one batch, not the whole epoch.

    The Trainer annotates ``limit_*_batches`` as ``Optional[Union[int, float]]``, but ``typing`` caches
    unions by equality, so the parser may get ``Union[float, int, None]`` from an earlier, equal union
    -- and then reads ``1`` as the float ``1.0``, "100 % of the batches". A ``types.UnionType`` is not
    cached: with ``int | float | None`` an integer stays an int, ``0.5`` and ``1.0`` stay fractions.
    """
    for key in BATCH_LIMITS:
        action = parser._option_string_actions.get(f"--trainer.{key}")  # jsonargparse's ActionTypeHint
        if action is not None and hasattr(action, "_typehint"):
            action._typehint = int | float | None


def _has_omegaconf() -> bool:
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        return False
    return True
