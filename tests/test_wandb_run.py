"""W&B: offline runs of ``neuroalign fit``, decoded from wandb's own record log (the ``.wandb`` file),
show what the README promises: the run named by job and config, the whole resolved config, visible
(non-black) prototype images with unit names and scores, and the Brain-Score table.

wandb 0.31 ships no Python reader of the ``.wandb`` file (its writer is the Go ``wandb-core``); the file is
a LevelDB-style log of ``wandb_internal_pb2.Record`` protobufs, which :func:`read_records` decodes with
wandb's own ``Record`` message.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from callbacks.brainscore.benchmarks.synthetic import make_synthetic_benchmark
from neuroalign.cli import main

TINY = {"name": "cifar_vit", "num_classes": 4, "model_kwargs": {"depth": 1, "embed_dim": 16, "num_heads": 2, "mlp_dim": 16, "img_size": 16}}
_BLOCK, _HEADER = 32768, 7  # the log's block size; a chunk header is crc32 (4), length (2), type (1)


def read_records(path: Path) -> list:
    """Every record of a ``run-<id>.wandb`` file as ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:8]  # file header: ident, magic 0xBEE1, version
    pos, pending, raws = _HEADER, b"", []
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # a block's tail too short for a header is zero padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 1:  # full
            raws.append(chunk)
        elif kind == 2:  # first
            pending = chunk
        elif kind == 3:  # middle
            pending += chunk
        elif kind == 4:  # last
            raws.append(pending + chunk)
        elif kind == 0 and length == 0:  # zero padding to the end of the block
            pos += _BLOCK - pos % _BLOCK if pos % _BLOCK else 0
    records = []
    for raw in raws:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        records.append(record)
    return records


def _items(items) -> dict:
    """Config / history items as a dict; wandb-core flattens a nested value into one item per leaf
    (``nested_key`` = its path, e.g. ``["brainscore/table", "path"]``)."""
    out: dict = {}
    for item in items:
        path = [item.key] if item.key else list(item.nested_key)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(item.value_json)
    return out


def _decode(save_dir: Path) -> tuple[Path, str, dict, list[dict]]:
    """(run folder, display name, config, history rows) of the only offline run under ``save_dir``."""
    import wandb

    wandb.finish()  # flush the record log
    runs = sorted((save_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    path = next(runs[0].glob("run-*.wandb"))
    deadline = time.monotonic() + 60
    while True:  # wandb-core may still be writing the log when finish() returns on a loaded machine
        records = read_records(path)
        kinds = [r.WhichOneof("record_type") for r in records]
        if ("run" in kinds and "exit" in kinds) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    run = next(r.run for r, k in zip(records, kinds) if k == "run")
    config: dict = {}
    for update in [run.config] + [r.config for r, k in zip(records, kinds) if k == "config"]:
        config.update(_items(update.update))
    config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}
    history = [_items(r.history.item) for r, k in zip(records, kinds) if k == "history"]
    return runs[0], run.display_name, config, history


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    if "wandb" in sys.modules:
        sys.modules["wandb"].finish()


def _loggers(root: Path) -> list[dict]:
    return [
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(root), "name": "csv"}},
        {"class_path": "lightning.pytorch.loggers.WandbLogger", "init_args": {"save_dir": str(root), "project": "neuroalign-test", "offline": True}},
    ]


def test_fit_run_has_its_name_the_full_config_and_the_brainscore_table(offline):
    bench = offline / "bench"
    make_synthetic_benchmark(bench, n_stimuli=40, n_neuroids=8, n_fitting=24, n_objects=4, trials_per_image=20, image_size=16)
    region_map = {"V4": "blocks.0", "IT": "blocks.0"}
    config = {
        "seed_everything": 3,
        "model": {"class_path": "lightning_modules.RobustFinetuneModule", "init_args": {"model": {"class_path": "lightning_modules.ZooModel", "init_args": TINY}, "adversarial": False}},
        "data": {"class_path": "datamodules.ShapesDataModule", "init_args": {"data_dir": None, "num_classes": 4, "num_train": 16, "num_val": 8, "batch_size": 8, "num_workers": 0}},
        "trainer": {
            "max_epochs": 1, "default_root_dir": str(offline), "enable_progress_bar": False, "enable_checkpointing": False,
            "num_sanity_val_steps": 0, "logger": _loggers(offline),
            "callbacks": [{"class_path": "callbacks.BrainScoreCallback", "init_args": {"benchmarks": [f"synthetic:{bench}#V4,IT"], "region_layer_map": region_map, "batch_size": 20}}],
        },
    }  # fmt: skip
    path = offline / "tinyfit.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "-c", str(path)]) == 0
    run_dir, name, logged, history = _decode(offline)
    assert name == "fit-tinyfit"  # job and config, not the project or a random name
    assert {"model", "data", "trainer", "seed_everything"} <= set(logged)
    assert logged["seed_everything"] == 3
    assert logged["model"]["class_path"] == "lightning_modules.RobustFinetuneModule"  # the config's, not the hparams'
    assert logged["data"]["init_args"]["num_train"] == 16
    callback = logged["trainer"]["callbacks"][0]["init_args"]
    assert callback["region_layer_map"] == region_map and callback["benchmarks"] == [f"synthetic:{bench}#V4,IT"]
    tables = [row["brainscore/table"] for row in history if "brainscore/table" in row]
    assert tables and tables[0]["_type"] == "table-file"
    table = json.loads((run_dir / "files" / tables[0]["path"]).read_text())
    assert {"V4", "IT", "average"} <= set(table["columns"]) and len(table["data"]) == 1


def test_evolution_run_shows_visible_prototypes_with_names_and_scores(offline):
    config = {
        "model": {
            "class_path": "lightning_modules.EvolutionModule",
            "init_args": {
                "model": {"class_path": "lightning_modules.ZooModel", "init_args": TINY},
                "units": [{"layer": None, "channel": 0, "name": "first"}, {"layer": None, "channel": 1, "name": "second"}],
                "generator": {"class_path": "lightning_modules.evolution.PixelGenerator", "init_args": {"image_size": 16}},
                "optimizer": {"class_path": "lightning_modules.evolution.CholeskyCMAES", "init_args": {"population_size": 6}},
                "n_generations": 4,
                "snapshot_every": 2,
            },
        },
        "trainer": {"max_epochs": 1, "default_root_dir": str(offline), "enable_progress_bar": False, "enable_checkpointing": False, "logger": _loggers(offline)},
    }
    path = offline / "tinyevo.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "-c", str(path)]) == 0
    run_dir, name, logged, history = _decode(offline)
    assert name == "evolution-tinyevo"
    assert {"model", "trainer", "seed_everything"} <= set(logged)  # the evolution run had no config at all
    assert [u["name"] for u in logged["model"]["init_args"]["units"]] == ["first", "second"]
    best = [row["evolution/best"] for row in history if "evolution/best" in row]
    assert len(best) == 2 and all(b["count"] == 2 for b in best)  # generations 1 and 3, one image per unit
    assert [c.split(":")[0] for c in best[-1]["captions"]] == ["first", "second"] and "best" in best[-1]["captions"][0]
    files = [run_dir / "files" / f for b in best for f in b["filenames"]]
    assert len(set(files)) == 4  # one file per unit and step, not one shared file
    for file in files:
        pixels = np.asarray(Image.open(file))
        assert pixels.dtype == np.uint8 and pixels.shape[:2] == (128, 128) and pixels.max() > 0  # not black
    montage = next(row["evolution/montage"] for row in history if "evolution/montage" in row)
    pixels = np.asarray(Image.open(run_dir / "files" / montage["filenames"][0]))
    assert pixels.max() > 0 and pixels.shape[1] > 160  # labelled margins around the tiles
    assert (offline / "csv" / "version_0" / "evolution" / "best" / "first.png").is_file()


@pytest.mark.parametrize(("config", "root", "name"), [("quickstart.yaml", "runs/quickstart", "run-quickstart"), ("evolution/quickstart.yaml", "runs/evolution/quickstart", "evolution-quickstart")])
def test_wandb_overlay_keeps_the_runs_root_and_names_the_run(offline, config, root, name):
    from lightning.pytorch.loggers import CSVLogger, WandbLogger

    from neuroalign.lightning_cli import NeuroAlignCLI

    configs = Path(__file__).parents[1] / "configs"
    args = ["-c", str(configs / config), "-c", str(configs / "logger" / "wandb.yaml"), "--trainer.max_steps", "1"]
    if config.startswith("evolution"):
        args += ["--model.init_args.checkpoint", "null", "--model.init_args.units", "[{layer: fc, channel: 0}]"]
    cli = NeuroAlignCLI(args=args, run=False)
    csv, wandb = cli.trainer.loggers
    assert isinstance(csv, CSVLogger) and isinstance(wandb, WandbLogger)
    assert Path(csv.save_dir, csv.name).as_posix() == root  # where the main config alone puts the run
    assert Path(cli.trainer.log_dir).parent.as_posix() == root  # checkpoints and outputs follow the first logger
    # not the CSV logger's carried-over name; the job is the sub-command ('run' without one, as here) or 'evolution'
    assert wandb._name == name and Path(wandb.save_dir).as_posix() == str(Path(root).parent)
