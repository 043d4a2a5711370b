"""The five public brainscore-vision benchmarks end to end, offline, on stand-in data of the real schema.

brainscore-vision's own benchmark factories load the stand-ins of ``tests/bsv_standins.py`` from its
registries. One short ``neuroalign fit`` scores all five with ``BrainScoreCallback`` and the default fast
engine; its numbers are then checked against brainscore-vision scoring the same weights itself (raw,
ceiling, ceiled, within 0.005). A layer wider than 8192 values is scored exactly by both engines alike.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from bsv_standins import PUBLIC_BENCHMARK_IDS, standins
from callbacks.brainscore.benchmarks.brainscore_vision import BrainScoreVisionBenchmark
from callbacks.brainscore.brainio_data import import_brainscore_vision
from callbacks.brainscore.commands.score import score_command
from callbacks.brainscore.model_adapter import make_model_commitment
from callbacks.brainscore.types import ScoringContext
from lightning_modules.zoo import build_model
from lightning_modules.zoo.checkpoint import model_from_checkpoint
from neuroalign.cli import main
from neuroalign.core.errors import ConfigError

TINY = {"name": "cifar_vit", "num_classes": 4, "model_kwargs": {"depth": 1, "embed_dim": 16, "num_heads": 2, "mlp_dim": 16, "img_size": 16}}
LAYERS = {"V1": "patch_embed", "V2": "patch_embed", "V4": "blocks.0.norm1", "IT": "blocks.0"}
READOUT = "blocks.0"
REGIONS = {
    "FreemanZiemba2013public.V1-pls": "V1",
    "FreemanZiemba2013public.V2-pls": "V2",
    "MajajHong2015public.V4-pls": "V4",
    "MajajHong2015public.IT-pls": "IT",
    "Rajalingham2018public-i2n": "behavior",
}


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """The stand-ins, registered once for the module (brainscore-vision is imported once)."""
    with standins(tmp_path_factory.mktemp("standins")) as loaders:
        yield loaders


@pytest.fixture(scope="module")
def fitted(registered, tmp_path_factory):
    """A one-epoch ``neuroalign fit`` scoring the five public benchmarks; its run folder."""
    root = tmp_path_factory.mktemp("fit")
    callback = {"class_path": "callbacks.BrainScoreCallback", "init_args": {
        "benchmarks": list(PUBLIC_BENCHMARK_IDS), "region_layer_map": LAYERS, "behavioral_readout_layer": READOUT,
        "batch_size": 64, "fail_on_error": True}}
    config = {
        "model": {"class_path": "lightning_modules.RobustFinetuneModule", "init_args": {
            "model": {"class_path": "lightning_modules.ZooModel", "init_args": TINY}, "adversarial": False}},
        "data": {"class_path": "datamodules.ShapesDataModule", "init_args": {
            "data_dir": None, "num_classes": 4, "num_train": 16, "num_val": 8, "batch_size": 8, "num_workers": 0}},
        "trainer": {
            "max_epochs": 1, "default_root_dir": str(root), "enable_progress_bar": False, "num_sanity_val_steps": 0,
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(root), "name": "run"}},
            "callbacks": [callback]},
    }
    path = root / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "-c", str(path)]) == 0
    return root / "run" / "version_0"


def test_fit_scores_the_five_public_benchmarks_and_logs_every_key(fitted):
    data = json.loads((fitted / "brainscore" / "epoch_0.json").read_text())
    assert not data["failures"]
    assert sorted(data["benchmark_scores"]) == sorted(f"{REGIONS[b]}/{b}" for b in PUBLIC_BENCHMARK_IDS)
    header = (fitted / "metrics.csv").read_text().splitlines()[0].split(",")
    local_keys = [f"{r}{s}" for r in ("V1", "V2", "V4", "IT", "behavior") for s in ("", "_raw", "_ceiling")]
    for key in [*local_keys, "average", "rho_hierarchy", *data["benchmark_scores"]]:
        assert f"brainscore/{key}" in header, key
    assert {b["extra"]["engine"] for b in data["benchmarks"]} == {"fast"}  # every public type is read by the fast engine


def test_scores_equal_brainscore_vision_scoring_the_same_weights(fitted):
    """brainscore-vision's own call of each benchmark on a commitment of the same weights."""
    ours = {b["benchmark"]: b for b in json.loads((fitted / "brainscore" / "epoch_0.json").read_text())["benchmarks"]}
    checkpoint = next((fitted / "checkpoints").glob("*.ckpt"))
    model = model_from_checkpoint(str(checkpoint)).eval()
    brainscore_vision = import_brainscore_vision()
    for identifier in PUBLIC_BENCHMARK_IDS:
        commitment = make_model_commitment(model, f"reference-{identifier}", LAYERS, READOUT, batch_size=64)
        score = brainscore_vision.load_benchmark(identifier)(commitment)
        theirs = (float(np.mean(score.attrs["raw"])), float(np.mean(score.attrs["ceiling"])), float(np.mean(score)))
        mine = (ours[identifier]["raw"], ours[identifier]["ceiling"], ours[identifier]["ceiled"])
        assert mine == pytest.approx(theirs, abs=0.005), identifier


class _WideNet(nn.Module):
    """A conv layer of 16 x 24 x 24 = 9216 values an image (wider than 8192), then a linear readout."""

    input_size = (3, 24, 24)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.head = nn.Linear(16 * 24 * 24, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).flatten(1))


def test_wide_layer_is_scored_exactly_by_both_engines(registered):
    identifier = "MajajHong2015public.V4-pls"
    model = _WideNet().eval()
    scored = {}
    for engine in ("fast", "brainscore-vision"):
        bench = BrainScoreVisionBenchmark(identifier, engine=engine)
        assert bench.needs_features == (engine == "fast")
        scored[engine] = bench.score_model(model, {bench.region: "conv"}, None, ScoringContext(model_identifier="wide"))
    fast, theirs = scored["fast"], scored["brainscore-vision"]
    assert (fast.extra["engine"], theirs.extra["engine"]) == ("fast", "brainscore-vision")
    assert (fast.raw, fast.ceiling, fast.ceiled) == pytest.approx((theirs.raw, theirs.ceiling, theirs.ceiled), abs=0.005)
    assert "-w" in theirs.extra["model_identifier"]  # the weights' hash names brainscore-vision's commitment


def test_regions_and_kinds_from_the_benchmarks(registered):
    for identifier, region in REGIONS.items():
        bench = BrainScoreVisionBenchmark(identifier)
        assert (bench.region, bench.kind) == (region, "behavior" if region == "behavior" else "neural")
    # another registered id on the same data loads too; its region comes from the benchmark
    other = BrainScoreVisionBenchmark("MajajHong2015public.IT-reverse_pls")
    assert (other.region, other.kind) == ("IT", "neural")


class _Anonymous:
    """A user's own neural benchmark registered at run time that names no region anywhere."""

    parent = None
    identifier = "Lab2026.pls"
    timebins = [(70, 170)]


def test_region_override_and_uninferable_region(registered):
    from brainscore_vision import benchmark_registry

    benchmark_registry["Lab2026.pls"] = _Anonymous
    try:
        with pytest.raises(ConfigError, match=r"set `benchmark_regions: \{Lab2026.pls: "):
            BrainScoreVisionBenchmark("Lab2026.pls").region
        overridden = BrainScoreVisionBenchmark("Lab2026.pls", region="IT")
        assert (overridden.region, overridden.kind) == ("IT", "neural")
    finally:
        del benchmark_registry["Lab2026.pls"]


def test_behavioural_benchmark_without_readout_is_one_line(registered):
    with pytest.raises(ConfigError, match="Rajalingham2018public-i2n needs `behavioral_readout_layer`"):
        BrainScoreVisionBenchmark("Rajalingham2018public-i2n").layer_for(LAYERS, None)


def test_score_command_with_any_id(registered, tmp_path):
    text = score_command(["Rajalingham2018public-i2n"], LAYERS, model="cifar_vit", behavioral_readout_layer=READOUT,
                         model_kwargs={"num_classes": 4, **TINY["model_kwargs"]}, output_dir=str(tmp_path))
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert np.isfinite(scores["behavior"]) and scores["behavior/Rajalingham2018public-i2n"] == scores["behavior"]
    assert "wrote" in text


def test_missing_coord_is_named(tmp_path):
    with standins(tmp_path, drop_coords=("object_name",)):
        bench = BrainScoreVisionBenchmark("MajajHong2015public.IT-pls")
        with pytest.raises(ConfigError, match="lacks the coord 'object_name'"):
            bench.score_model(build_model("cifar_vit", num_classes=4, **TINY["model_kwargs"]), {"IT": "blocks.0"}, None, ScoringContext())
