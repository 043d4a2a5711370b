"""Local benchmark folders: every bad input gives a clear error or a counted drop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from callbacks.brainscore.types import ScoringContext
from callbacks.brainscore.benchmarks.local import open_local_benchmark
from callbacks.brainscore.benchmarks.local_behavioural import LocalBehaviouralBenchmark
from callbacks.brainscore.benchmarks.local_folder import LocalBenchmark, read_local_folder
from callbacks.brainscore.benchmarks.local_neural import LocalNeuralBenchmark
from callbacks.brainscore.engine import score_model
from neuroalign.core.errors import ConfigError, MissingFileError
from image_trees import write_stimuli


def _write(folder, n=40, reps=3, q=6, region="V4", seed=0, meta_extra=""):
    rng = np.random.default_rng(seed)
    write_stimuli(folder, n, 12, 4, rng)
    (folder / "benchmark.yaml").write_text(
        f"name: t\nkind: neural\nregion: {region}\nvisual_degrees: 8\nstratify_by: object_name\n{meta_extra}"
    )
    np.save(folder / "responses.npy", rng.normal(size=(1, n, q)) + 0.5 * rng.normal(size=(reps, n, q)))
    return folder


def test_valid_folder_loads_and_scores(tmp_path):
    bench = open_local_benchmark(_write(tmp_path / "b"))
    assert isinstance(bench, LocalNeuralBenchmark) and isinstance(bench, LocalBenchmark)
    assert bench.region == "V4" and bench.kind == "neural" and len(bench.stimulus_sets()["stimuli"]) == 40
    score = bench.score_features({"stimuli": torch.randn(40, 30)}, ScoringContext())
    assert np.isfinite(score.ceiled) and score.n_neuroids_dropped == 0


def test_all_nan_neuroid_is_dropped_and_counted(tmp_path, caplog):
    folder = _write(tmp_path / "b")
    resp = np.load(folder / "responses.npy")
    resp[:, :, 2] = np.nan
    resp[0, 3, 1] = np.nan  # one missing trial: kept
    np.save(folder / "responses.npy", resp)
    bench = open_local_benchmark(folder)
    assert bench.n_dropped == 1 and bench.responses.shape[2] == 5
    score = bench.score_features({"stimuli": torch.randn(40, 30)}, ScoringContext())
    assert score.n_neuroids_dropped >= 1 and np.isfinite(score.raw)
    assert "dropped 1 neuroid" in caplog.text


@pytest.mark.parametrize(
    "breakage, error, match",
    [
        ("no_yaml", MissingFileError, "benchmark.yaml"),
        ("no_responses", MissingFileError, "responses.npy"),
        ("no_image", MissingFileError, "im3.png"),
        ("shape", ConfigError, "stimuli.csv has 40 rows"),
        ("one_rep", ConfigError, "needs repeated trials"),
        ("region", ConfigError, "region 'V3'"),
        ("stratify", ConfigError, "stratify_by"),
        ("kind", ConfigError, "kind"),
        ("column", ConfigError, "filename"),
    ],
)
def test_bad_inputs(tmp_path, breakage, error, match):
    folder = _write(tmp_path / "b", region="V3" if breakage == "region" else "V4",
                    reps=1 if breakage == "one_rep" else 3)
    if breakage == "no_yaml":
        (folder / "benchmark.yaml").unlink()
    elif breakage == "no_responses":
        (folder / "responses.npy").unlink()
    elif breakage == "no_image":
        (folder / "im3.png").unlink()
    elif breakage == "shape":
        np.save(folder / "responses.npy", np.zeros((3, 39, 6)))
    elif breakage == "stratify":
        (folder / "benchmark.yaml").write_text("kind: neural\nregion: V1\nvisual_degrees: 8\nstratify_by: colour\n")
    elif breakage == "kind":
        (folder / "benchmark.yaml").write_text("kind: spikes\nregion: V1\nvisual_degrees: 8\n")
    elif breakage == "column":
        (folder / "stimuli.csv").write_text("stimulus_id,file\ns0,im0.png\n")
    with pytest.raises(error, match=match):
        open_local_benchmark(folder)


def test_unreadable_image_and_unknown_layer_are_clear_errors(tmp_path):
    folder = _write(tmp_path / "b")
    (folder / "im5.png").write_bytes(b"not a png")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten())
    with pytest.raises(ConfigError, match="im5.png"):
        score_model(net, [str(folder)], {"V4": "1"})
    with pytest.raises(ConfigError, match="nearest valid names"):
        score_model(net, [str(folder)], {"V4": "relu"})


@pytest.mark.parametrize(
    ("meta", "listed"),
    [
        ("name: only-a-name\n", ["kind", "region", "visual_degrees"]),
        ("kind: neural\n", ["region", "visual_degrees"]),
        ("kind: behavior\nregion: null\n", ["visual_degrees"]),  # region is for neural benchmarks only
    ],
)
def test_missing_benchmark_yaml_keys_are_listed_at_once(tmp_path, meta, listed):
    folder = _write(tmp_path / "b")
    (folder / "benchmark.yaml").write_text(meta)
    with pytest.raises(ConfigError) as info:
        open_local_benchmark(folder)
    message = str(info.value)
    assert f"lacks {len(listed)} required key(s)" in message and "\n" not in message
    for key in ["kind", "region", "visual_degrees"]:
        assert (f"{key} (" in message) == (key in listed), key


def test_a_folder_opens_as_the_class_of_its_kind_only(tmp_path):
    folder = _write(tmp_path / "b")
    with pytest.raises(ConfigError, match="LocalBehaviouralBenchmark reads kind 'behavior'"):
        LocalBehaviouralBenchmark(read_local_folder(folder))
    (folder / "benchmark.yaml").write_text("kind: neuronal\nregion: V1\nvisual_degrees: 8\n")
    with pytest.raises(ConfigError, match="kind 'neuronal' is invalid; valid: neural, behavior"):
        open_local_benchmark(folder)
