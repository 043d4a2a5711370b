"""The ``neuroalign`` command: help, sub-command dispatch, one-line user errors, links and checkpoints."""

from __future__ import annotations

import importlib
import shutil
import subprocess

import pytest
import torch
import yaml
from lightning.pytorch import LightningModule

from neuroalign.cli import COMMANDS, main
from neuroalign.lightning_cli import model_input_side

TINY = {"name": "cifar_vit", "num_classes": 4, "model_kwargs": {"depth": 1, "embed_dim": 16, "num_heads": 2, "mlp_dim": 16, "img_size": 16}}


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "fit" in out and all(name in out for name in COMMANDS)


def test_fit_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--help"])
    assert info.value.code == 0
    assert "--config" in capsys.readouterr().out


def test_console_script_is_installed():
    exe = shutil.which("neuroalign")
    assert exe, "pip install -e . must put `neuroalign` on PATH"
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "neuroalign" in done.stdout


def test_every_registered_command_resolves():
    import importlib

    missing = []
    for name, target in COMMANDS.items():
        module, _, attr = target.partition(":")
        try:
            if not callable(getattr(importlib.import_module(module), attr)):
                missing.append(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert not missing, f"commands without an implementation: {missing}"


def test_user_error_is_one_line_with_status_2(tmp_path, capsys):
    config = {"model": {"class_path": "lightning_modules.RobustFinetuneModule", "init_args": {"model": {"class_path": "lightning_modules.ZooModel", "init_args": {"name": "alexnett"}}}}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "-c", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "alexnett" in err[0] and "alexnet" in err[0].split("nearest")[1]


def test_model_input_side():
    class WithModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = torch.nn.Linear(1, 1)
            self.model.input_size = (3, 40, 40)

    assert model_input_side(WithModel()) == 40
    assert model_input_side(torch.nn.Linear(1, 1)) is None


def test_fit_links_input_size_and_checkpoint_rebuilds_subclass(tmp_path):
    """A short fit through the CLI: data gets the model's input size; the checkpoint reloads with weights_only."""
    config = {
        "model": {"class_path": "lightning_modules.RobustFinetuneModule", "init_args": {"model": {"class_path": "lightning_modules.ZooModel", "init_args": TINY}, "adversarial": False}},
        "data": {"class_path": "datamodules.ShapesDataModule", "init_args": {"data_dir": str(tmp_path / "data"), "num_classes": 4, "num_train": 16, "num_val": 8, "batch_size": 8, "num_workers": 0}},
        "trainer": {"max_epochs": 1, "default_root_dir": str(tmp_path), "enable_progress_bar": False, "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(tmp_path), "name": "run"}}},
    }
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    from neuroalign.lightning_cli import NeuroAlignCLI

    cli = NeuroAlignCLI(args=["-c", str(path)], run=False)
    assert cli.datamodule.input_size == 16  # linked from the model at instantiation
    cli.trainer.fit(cli.model, cli.datamodule)
    ckpts = sorted(tmp_path.glob("run/version_0/checkpoints/*.ckpt"))
    assert ckpts
    torch.load(ckpts[0], weights_only=True)
    module = LightningModule.load_from_checkpoint(ckpts[0], weights_only=True)
    assert type(module).__name__ == "RobustFinetuneModule"
    assert module.model.num_classes == 4


def test_errors_from_dataloader_workers_print_the_original_message(tmp_path, capsys):
    """A corrupt image found in a worker process is reported as one line naming the file."""
    from PIL import Image

    for split in ("train", "val"):
        for wnid in ("n01440764", "n01443537"):
            folder = tmp_path / "imagenet" / split / wnid
            folder.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40, 30), (i * 90, 20, 200)).save(folder / f"{i}.JPEG")
    bad = tmp_path / "imagenet" / "train" / "n01440764" / "0.JPEG"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    config = {
        "model": {"class_path": "lightning_modules.RobustFinetuneModule", "init_args": {"model": {"class_path": "lightning_modules.ZooModel", "init_args": {**TINY, "num_classes": 2}}, "adversarial": False}},
        "data": {"class_path": "datamodules.ImageNetDataModule", "init_args": {"data_dir": str(tmp_path / "imagenet"), "batch_size": 4, "num_workers": 1}},
        "trainer": {"max_epochs": 1, "default_root_dir": str(tmp_path), "enable_progress_bar": False, "logger": False, "enable_checkpointing": False, "num_sanity_val_steps": 0},
    }
    path = tmp_path / "corrupt.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "-c", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0.JPEG" in err[0] and "Traceback" not in err[0]


def test_interrupted_fit_resumes_from_last_checkpoint(tmp_path):
    """`neuroalign fit --ckpt_path last.ckpt` continues the epoch count, optimiser, schedule and step."""
    ckpt_dir = tmp_path / "ckpts"
    config = {
        "model": {
            "class_path": "lightning_modules.RobustFinetuneModule",
            "init_args": {
                "model": {"class_path": "lightning_modules.ZooModel", "init_args": TINY},
                "adversarial": True,
                "val_pgd_steps": 1,
                "scheduler": {"class_path": "lightning_modules.robust.schedules.WarmupHalvingLR", "init_args": {}},
            },
        },
        "data": {"class_path": "datamodules.ShapesDataModule", "init_args": {"data_dir": None, "num_classes": 4, "num_train": 32, "num_val": 8, "batch_size": 8, "num_workers": 0}},
        "trainer": {
            "max_epochs": 1, "default_root_dir": str(tmp_path), "enable_progress_bar": False,
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(tmp_path), "name": "run"}},
            "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"dirpath": str(ckpt_dir), "save_last": True}}],
        },
    }
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "-c", str(path)]) == 0
    first = torch.load(ckpt_dir / "last.ckpt", weights_only=True)
    assert first["epoch"] == 0 and first["global_step"] == 4
    assert main(["fit", "-c", str(path), "--trainer.max_epochs", "2", "--ckpt_path", str(ckpt_dir / "last.ckpt")]) == 0
    second = torch.load(ckpt_dir / "last.ckpt", weights_only=True)
    assert second["epoch"] == 1 and second["global_step"] == 8  # continued, not restarted
    sched = second["lr_schedulers"][0]
    assert sched["iterations_per_epoch"] == 4 and sched["last_epoch"] == 8
    import csv

    with open(tmp_path / "run" / "version_1" / "metrics.csv") as handle:
        epochs = {row["epoch"] for row in csv.DictReader(handle) if row.get("val/acc")}
    assert epochs == {"1"}  # the resumed run trained and validated epoch 1 only


# ----------------------------------------------------------------------------- checkpoints and resume
def _tiny_fit_config(tmp_path, save_dir=None, **trainer):
    config = {
        "model": {"class_path": "lightning_modules.RobustFinetuneModule", "init_args": {"model": {"class_path": "lightning_modules.ZooModel", "init_args": TINY}, "adversarial": False, "val_pgd_steps": 0}},
        "data": {"class_path": "datamodules.ShapesDataModule", "init_args": {"data_dir": None, "num_classes": 4, "num_train": 32, "num_val": 8, "batch_size": 8, "num_workers": 0}},
        "trainer": {
            "max_epochs": 1, "default_root_dir": str(tmp_path), "enable_progress_bar": False, "enable_model_summary": False,
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(save_dir or tmp_path), "name": "run"}},
            **trainer,
        },
    }
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_help_describes_every_command_in_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, target in COMMANDS.items():
        module, _, attr = target.partition(":")
        summary = getattr(importlib.import_module(module), attr).__doc__.strip().splitlines()[0].rstrip(".").replace("``", "`")
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert summary in line and target not in line, line


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("neuroalign: error: ") and "Traceback" not in err[0]
    return err[0]


def test_ckpt_path_errors_are_one_line_with_status_2(tmp_path, capsys):
    config = _tiny_fit_config(tmp_path)
    missing = tmp_path / "missing.ckpt"
    assert main(["fit", "-c", str(config), "--ckpt_path", str(missing)]) == 2
    line = _one_error_line(capsys)
    assert "checkpoint not found at" in line and "missing.ckpt" in line and "--ckpt_path" in line
    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "global_step": 1}, whole)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert main(["fit", "-c", str(config), "--ckpt_path", str(truncated)]) == 2
    line = _one_error_line(capsys)
    assert "truncated.ckpt" in line and "truncated or not a file written by torch.save" in line
    noise = tmp_path / "noise.ckpt"
    noise.write_bytes(bytes(range(256)) * 64)  # random bytes
    assert main(["fit", "-c", str(config), "--ckpt_path", str(noise)]) == 2
    line = _one_error_line(capsys)
    assert "noise.ckpt" in line and "weights_only" not in line and "False" not in line
    assert not (tmp_path / "run").exists()  # nothing ran


def test_missing_config_file_is_one_line(tmp_path, capsys):
    assert main(["fit", "-c", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found at" in _one_error_line(capsys)


def test_parse_errors_print_the_error_first(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "-c", str(_tiny_fit_config(tmp_path)), "--trainer.max_epochs", "many"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("neuroalign: error: ") and "max_epochs" in "\n".join(err) and len(err) < 15
    assert not any(line.startswith("usage:") for line in err)


def test_a_bad_nested_class_path_is_named_in_the_first_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "-c", str(_tiny_fit_config(tmp_path)), "--model.init_args.perturb.class_path", "lightning_modules.robust.strategies.Nope"])
    assert info.value.code == 2
    first = capsys.readouterr().err.strip().splitlines()[0]
    assert first.startswith("neuroalign: error: model.init_args.perturb: class_path 'lightning_modules.robust.strategies.Nope'")
    assert "has no attribute 'Nope'" in first


def test_unwritable_log_folder_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")  # tests run as root: a folder under a regular file cannot be made
    config = _tiny_fit_config(tmp_path, save_dir=blocker / "logs")
    assert main(["fit", "-c", str(config)]) == 2
    line = _one_error_line(capsys)
    assert "cannot write " in line and "a_file/logs" in line and "trainer.logger.init_args.save_dir" in line


@pytest.mark.parametrize(("where", "value", "batches"), [("cli", "1", 1), ("yaml", 1, 1), ("cli", "3", 3), ("cli", "0.5", 2), ("yaml", 1.0, 4)])
def test_integer_batch_limits_mean_batches(tmp_path, where, value, batches):
    from neuroalign.lightning_cli import NeuroAlignCLI

    extra = {"limit_train_batches": value, "limit_val_batches": 1} if where == "yaml" else {}
    config = _tiny_fit_config(tmp_path, enable_checkpointing=False, **extra)
    args = ["fit", "-c", str(config)] + (["--trainer.limit_train_batches", value, "--trainer.limit_val_batches=1"] if where == "cli" else [])
    cli = NeuroAlignCLI(args=args)
    assert cli.trainer.limit_val_batches == 1 and isinstance(cli.trainer.limit_val_batches, int)
    assert cli.trainer.global_step == batches  # 4 batches an epoch: 1 is one batch, 0.5 half of them
