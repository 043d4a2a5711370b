"""Region x layer profiles: held-out layer selection, ground-truth recovery, the setup errors, the callback's files."""

from __future__ import annotations

import json
from unittest.mock import MagicMock

import pytest
import torch
import yaml
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from callbacks import BrainScoreCallback
from callbacks.brainscore.benchmarks.synthetic import REFERENCE_LAYERS, make_synthetic_benchmark, reference_network
from callbacks.brainscore.engine import load_benchmarks, score_round
from callbacks.brainscore.metrics.ceiling import ceil_score
from callbacks.brainscore.profile import (
    best_layers,
    check_profile_benchmarks,
    region_layer_map_text,
    region_profiles,
    split_division,
    subset_score,
)
from callbacks.brainscore.types import RegionScore
from neuroalign.core.errors import ConfigError

LAYERS = ["blocks.0", "blocks.1", "blocks.2", "blocks.3"]


def _score(layer: str, per_split: list[float], region: str = "V4", bench: str = "b1", **extra) -> RegionScore:
    raw = sum(per_split) / len(per_split)
    return RegionScore(region=region, ceiled=ceil_score(raw, 0.8), raw=raw, ceiling=0.8, benchmark=bench, layer=layer,
                       extra={"per_split": per_split, **extra})


def test_split_division_rule():
    assert split_division(10) == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    assert split_division(2) == ([0], [1])
    assert split_division(3, 0.5) == ([0], [1, 2]) and split_division(10, 0.3) == ([0, 1, 2], list(range(3, 10)))
    assert split_division(4, 0.99) == ([0, 1, 2], [3])  # at least one split is left to report
    with pytest.raises(ConfigError, match="at least 2 CV splits"):
        split_division(1)


def test_selected_layer_is_chosen_on_selection_splits_and_reported_on_the_others():
    # layer "a" wins on the first half of the splits, "b" on the second half and over all splits
    a = [0.60, 0.62, 0.30, 0.30]
    b = [0.50, 0.50, 0.70, 0.72]
    scores = {"b1": {"a": _score("a", a), "b": _score("b", b)}}
    assert scores["b1"]["b"].ceiled > scores["b1"]["a"].ceiled  # all-split selection would pick "b"
    p = region_profiles(scores, ["a", "b"])["V4"]
    assert p["best_layer"] == "a"
    assert p["selected"] == pytest.approx(ceil_score(0.61, 0.8))
    assert p["reported"] == pytest.approx(ceil_score(0.30, 0.8))  # only a's report splits
    assert p["layers"]["b"]["reported"] == pytest.approx(ceil_score(0.71, 0.8))
    # two benchmarks of a region: the selection score is their mean; a benchmark ceiling each split itself
    # (i2n) is averaged over its own split scores
    scores["b2"] = {"a": _score("a", [0.1, 0.9], bench="b2", per_split_ceiled=[0.2, 0.4]),
                    "b": _score("b", [0.9, 0.1], bench="b2", per_split_ceiled=[0.9, 0.1])}
    p = region_profiles(scores, ["a", "b"])["V4"]
    assert p["best_layer"] == "b"  # (0.2 + s_a) / 2 < (0.9 + s_b) / 2
    assert p["reported"] == pytest.approx((ceil_score(0.71, 0.8) + 0.1) / 2)
    assert subset_score(scores["b2"]["a"], [1]) == pytest.approx(0.4)
    with pytest.raises(ConfigError, match="no per-split scores"):
        subset_score(RegionScore("V4", 0.5, 0.5, 0.8, "whole"), [0])


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("profile") / "synthetic"
    return make_synthetic_benchmark(root, n_stimuli=60, n_neuroids=12, n_fitting=24, n_objects=4, trials_per_image=8, image_size=16)


def test_profile_recovers_the_ground_truth_layer_of_every_region(bench):
    net = reference_network(image_size=16, n_classes=4)
    passes = []
    net.register_forward_hook(lambda module, args, out: passes.append(args[0].shape[0]))
    done = score_round(net, load_benchmarks(f"synthetic:{bench}#V1,V2,V4,IT"), None, profile_layers=LAYERS)
    assert passes == [1, 60]  # the memory check's one image, then ONE pass over the 60 shared stimuli for all 16 scores
    assert not done.layer_failures and set(done.layer_scores) == {f"local:synthetic-{r}" for r in REFERENCE_LAYERS}
    profiles = region_profiles(done.layer_scores, LAYERS)
    assert {r: p["best_layer"] for r, p in profiles.items()} == REFERENCE_LAYERS
    for p in profiles.values():
        assert p["reported"] == p["layers"][p["best_layer"]]["reported"] and set(p["layers"]) == set(LAYERS)


def test_behavioural_benchmark_gives_per_split_scores_and_profiles_into_the_readout_layer(bench):
    behaviour = load_benchmarks(f"synthetic:{bench}#behavior")
    done = score_round(reference_network(image_size=16, n_classes=4), behaviour, None, profile_layers=["blocks.3"])
    score = done.layer_scores["local:synthetic-behavior"]["blocks.3"]
    assert len(score.extra["per_split"]) == len(score.extra["per_split_ceiled"]) == 2  # i2n's two halves of the trials
    assert sum(score.extra["per_split_ceiled"]) / 2 == pytest.approx(score.ceiled)
    p = region_profiles(done.layer_scores, ["blocks.3"])["behavior"]
    assert (p["selected"], p["reported"]) == pytest.approx(tuple(score.extra["per_split_ceiled"]))
    assert region_layer_map_text(best_layers({"behavior": p, "V1": {"best_layer": "blocks.0"}})).splitlines() == [
        "region_layer_map:", "  V1: blocks.0", "behavioral_readout_layer: blocks.3"]


class _System(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = reference_network(image_size=16, n_classes=4)
        self.steps = 0

    def training_step(self, batch, _):
        self.steps += 1
        return nn.functional.cross_entropy(self.model(batch[0]), batch[1])

    def validation_step(self, batch, _):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _loader():
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.rand(8, 3, 16, 16, generator=g), torch.randint(0, 4, (8,), generator=g)), batch_size=8)


def _trainer(tmp_path, cb, logger=False, epochs=1):
    return Trainer(max_epochs=epochs, logger=logger, callbacks=[cb], enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp_path)


def test_a_glob_matching_no_layer_stops_at_setup_before_any_benchmark_loads(tmp_path):
    folder = tmp_path / "never_written"
    cb = BrainScoreCallback(benchmarks=[f"synthetic:{folder}#V1"], region_layer_map={"V1": "blocks.0"},
                            profile_layers=["blocks.?", "blocks.*.conv"])
    system = _System()
    with pytest.raises(ConfigError) as info:
        _trainer(tmp_path, cb).fit(system, _loader(), _loader())
    message = str(info.value)
    assert "\n" not in message and "BrainScoreCallback `profile_layers`" in message and "'blocks.*.conv'" in message
    assert "nearest valid names: blocks." in message
    assert system.steps == 0 and not folder.exists()  # raised before the benchmark was written or any feature extracted


def test_a_whole_set_metric_is_one_setup_error(bench):
    whole = load_benchmarks(f"synthetic:{bench}#V4,IT", metric="cka", benchmark_metrics={"local:synthetic-V4": "rdm"})
    with pytest.raises(ConfigError) as info:
        check_profile_benchmarks(whole, "BrainScoreCallback `profile_layers`")
    message = str(info.value)
    assert message.startswith("BrainScoreCallback `profile_layers`: local:synthetic-V4 gives one whole-set number") and "\n" not in message
    assert "local:synthetic-IT gives one whole-set number" in message and "cross-validated metric (e.g. cka_cv, rdm_cv" in message
    check_profile_benchmarks(load_benchmarks(f"synthetic:{bench}#IT", metric="cka_cv"))  # its per-split scores select
    with pytest.raises(ConfigError, match="profile_selection_splits"):
        BrainScoreCallback(benchmarks=["synthetic"], region_layer_map={}, profile_layers=["blocks.0"], profile_selection_splits=1.0)


def test_callback_profiles_every_epoch_writes_png_yaml_json_and_wandb(tmp_path, bench, monkeypatch):
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    tables, images = [], []
    monkeypatch.setattr(WandbLogger, "experiment", property(lambda self: MagicMock()))  # no wandb run: what the callback sends
    monkeypatch.setattr(WandbLogger, "log_table", lambda self, key, columns=None, data=None, **kw: tables.append((key, columns, data)))
    monkeypatch.setattr(WandbLogger, "log_image", lambda self, key, images_=None, **kw: images.append((key, kw.get("images", images_))))
    cb = BrainScoreCallback(benchmarks=[f"synthetic:{bench}#V4,IT"], region_layer_map={"V4": "blocks.2", "IT": "blocks.3"},
                            profile_layers=["blocks.[3]", "blocks.1", "blocks.2"], batch_size=64)
    trainer = _trainer(tmp_path, cb, WandbLogger(save_dir=str(tmp_path), offline=True))
    trainer.fit(_System(), _loader(), _loader())
    folder = next(tmp_path.rglob("epoch_0.json")).parent
    data = json.loads((folder / "epoch_0.json").read_text())
    for region in ("V4", "IT"):
        assert data["scores"][f"{region}_best_layer"] in ("blocks.1", "blocks.2", "blocks.3")
        assert 0 <= data["scores"][f"{region}_profile_reported"] == trainer.callback_metrics[f"brainscore/{region}_profile_reported"]
    assert data["profile"]["layers"] == ["blocks.1", "blocks.2", "blocks.3"]  # globs expanded, in model order
    best = yaml.safe_load((folder / "profile_region_layer_map.yaml").read_text())
    assert best == {"region_layer_map": {r: data["scores"][f"{r}_best_layer"] for r in ("V4", "IT")}}
    assert (folder / "profile.png").stat().st_size > 10_000
    assert [key for key, _ in images] == ["brainscore/profile"]
    (rows,) = [rows for key, _, rows in tables if key == "brainscore/profile_table"]
    assert len(rows) == 2 * 3 and sum(row[-1] for row in rows) == 2  # 2 regions x 3 layers, one best layer each
    state = cb.state_dict()
    assert set(state["profile_history"]) == {0}
    other = BrainScoreCallback(benchmarks=["synthetic"], region_layer_map={}, profile_layers=["blocks.0"])
    other.load_state_dict(json.loads(json.dumps(state)))  # survives resume (through JSON-like keys too)
    assert other.profile_history == cb.profile_history and other.profile_steps == {0: 1}
