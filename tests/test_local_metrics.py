"""Local neural benchmarks score with any metric of the family: ``metric`` in benchmark.yaml or an override.

Each metric read from a benchmark folder equals brainscore-vision's own metric object of that name on
the same features and responses; bad metric settings fail at load, before any extraction.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from callbacks import BrainScoreCallback
from callbacks.brainscore.benchmarks.base import Benchmark
from callbacks.brainscore.benchmarks.local import open_local_benchmark
from callbacks.brainscore.brainio_data import import_brainscore_vision
from callbacks.brainscore.engine import load_benchmarks, score_model
from callbacks.brainscore.metrics.ceiling import ceil_score, internal_consistency
from callbacks.brainscore.metrics.cka import cka_split_half_ceiling
from callbacks.brainscore.metrics.rdm import rdm_split_half_ceiling
from callbacks.brainscore.metrics.registry import aggregate_regression
from callbacks.brainscore.metrics.ridgecv import ridgecv_cv_correlations
from callbacks.brainscore.metrics.splits import brainscore_splits
from callbacks.brainscore.types import ScoringContext
from neuroalign.core.errors import ConfigError
from image_trees import write_stimuli

N, P, Q, REPS = 50, 30, 8, 4


def _folder(path, meta=None, reps=REPS, seed=0):
    """A neural benchmark folder whose responses are a noisy linear read-out of ``features(seed)``."""
    rng = np.random.default_rng(seed)
    write_stimuli(path, N, 8, 5, rng)
    base = {"name": "t", "kind": "neural", "region": "IT", "visual_degrees": 8, "stratify_by": "object_name"}
    (path / "benchmark.yaml").write_text(yaml.safe_dump({**base, **(meta or {})}))
    X = _features(seed)
    signal = np.tanh(X @ rng.normal(size=(P, Q)) / 4)
    shape = (reps, N, Q) if reps else (N, Q)
    np.save(path / "responses.npy", signal + 0.4 * rng.normal(size=shape))
    return path


def _features(seed=0):
    rng = np.random.default_rng(seed + 100)
    return rng.normal(size=(N, 6)) @ rng.normal(size=(6, P)) + 0.3 * rng.normal(size=(N, P)) + 1.0


def _assembly(values, prefix):
    import_brainscore_vision()
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly

    coords = {
        "stimulus_id": ("presentation", [f"s{i}" for i in range(N)]),
        "object_name": ("presentation", [f"o{i % 5}" for i in range(N)]),
        "neuroid_id": ("neuroid", [f"{prefix}{i:02d}" for i in range(values.shape[1])]),
        "region": ("neuroid", ["IT"] * values.shape[1]),
    }
    return NeuroidAssembly(values, coords=coords, dims=["presentation", "neuroid"])


# brainscore-vision's name of each of ours (its default cross-validation: 10 splits, seed 1, object_name strata)
BSV_NAMES = {
    "pls": "pls",
    "ridge": "ridge",
    "linear": "linear_predictivity",
    "neuron_to_neuron": "neuron_to_neuron",
    "cka": "cka",
    "cka_cv": "cka_cv",
    "rdm": "rdm",
    "rdm_cv": "rdm_cv",
}


@pytest.mark.parametrize("name", list(BSV_NAMES))
def test_metric_of_benchmark_yaml_equals_brainscore_vision(tmp_path, name):
    bench = open_local_benchmark(_folder(tmp_path / "b", {"metric": name}))
    X = _features()
    score = bench.score_features({"stimuli": torch.as_tensor(X)}, ScoringContext())
    reference = import_brainscore_vision().load_metric(BSV_NAMES[name])(_assembly(X, "f"), _assembly(bench.target, "n"))
    assert abs(score.raw - float(reference)) < 0.005, (name, score.raw, float(reference))
    assert score.extra["metric"] == name and len(score.extra["per_split"]) == (1 if name in ("cka", "rdm") else 10)
    if name.startswith("cka"):
        expected = float(cka_split_half_ceiling(bench.responses)["ceiling"])
    elif name.startswith("rdm"):
        expected = float(rdm_split_half_ceiling(bench.responses)["ceiling"])
    else:
        expected = float(internal_consistency(bench.responses)["ceiling"])
    assert score.ceiling == pytest.approx(expected, abs=1e-12)
    assert score.ceiled == pytest.approx(ceil_score(score.raw, expected))


def test_ridgecv_with_a_grid_from_benchmark_yaml(tmp_path):
    grid = [0.1, 1.0, 10.0, 100.0]
    bench = open_local_benchmark(_folder(tmp_path / "b", {"metric": "ridgecv", "metric_args": {"alphas": grid}}))
    X = _features()
    score = bench.score_features({"stimuli": torch.as_tensor(X)}, ScoringContext())
    r, chosen = ridgecv_cv_correlations(X, bench.target, brainscore_splits(N, bench.stratify), alphas=grid)
    assert score.raw == pytest.approx(aggregate_regression(r)[0], abs=1e-12)
    assert score.extra["alpha_median"] == float(chosen.median()) and score.extra["metric_args"] == {"alphas": grid}


@pytest.mark.parametrize(
    "meta, match",
    [
        ({"metric": "rigde"}, r"unknown metric 'rigde'.*nearest: ridge"),
        ({"metric": "ridgecv", "metric_args": {"alphas": [0.0, 1.0]}}, r"alphas must be positive.*metric_args.alphas"),
        ({"metric": "ridgecv", "metric_args": {"alphas": [-1]}}, r"alphas must be positive"),
        ({"metric": "ridge", "metric_args": {"alpha": 0}}, r"alpha 0 is the `linear` metric"),
        ({"metric": "ridge", "metric_args": {"alphas": [1.0]}}, r"no argument 'alphas'.*nearest: alpha"),
        ({"metric": "pls", "metric_args": {"n_components": 0}}, r"n_components must be a positive integer"),
        ({"ceiling": 1.5}, r"ceiling must be a number in \(0, 1\]"),
    ],
)
def test_bad_metric_settings_fail_at_load(tmp_path, meta, match):
    with pytest.raises(ConfigError, match=match) as info:
        open_local_benchmark(_folder(tmp_path / "b", meta))
    assert "\n" not in str(info.value) and "benchmark.yaml" in str(info.value)


@pytest.mark.parametrize("name", ["pls", "rdm", "cka"])
def test_one_repetition_needs_a_stated_ceiling(tmp_path, name):
    with pytest.raises(ConfigError, match=rf"metric '{name}' needs repeated trials.*set `ceiling` in benchmark.yaml"):
        open_local_benchmark(_folder(tmp_path / "a", {"metric": name}, reps=0))
    bench = open_local_benchmark(_folder(tmp_path / "b", {"metric": name, "ceiling": 0.8}, reps=0))
    score = bench.score_features({"stimuli": torch.as_tensor(_features())}, ScoringContext())
    assert score.ceiling == 0.8 and score.ceiled == pytest.approx(ceil_score(score.raw, 0.8))


def test_overrides_replace_the_folder_metric_and_bad_overrides_fail(tmp_path):
    a, b = _folder(tmp_path / "a", {"name": "a"}), _folder(tmp_path / "b", {"name": "b"}, seed=1)
    benches = load_benchmarks([str(a), str(b)], metric="rdm", benchmark_metrics={"local:b": "ridge"})
    assert [x.metric.name for x in benches] == ["rdm", "ridge"]
    with pytest.raises(ConfigError, match=r"`benchmark_metrics` names 'local:c', which is not loaded.*local:a, local:b"):
        load_benchmarks([str(a), str(b)], benchmark_metrics={"local:c": "rdm"})
    with pytest.raises(ConfigError, match=r"`metric`.*nearest: cka"):
        load_benchmarks([str(a)], metric="ckaa")
    with pytest.raises(ConfigError, match="`metric_args` is set without `metric`"):
        load_benchmarks([str(a)], metric_args={"alpha": 2.0})
    with pytest.raises(ConfigError, match="brainscore-vision benchmarks keep their own metric"):
        load_benchmarks([_NotLocal()], metric="rdm")


class _NotLocal(Benchmark):
    """Stands for a brainscore-vision benchmark: not a local neural one."""

    identifier, region, kind = "MajajHong2015public.IT-pls", "IT", "neural"

    def score_model(self, model, region_layer_map, behavioral_readout_layer, context):
        raise AssertionError("not scored in this test")


def test_score_model_scores_with_the_metric_asked_for(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten())
    folder = _folder(tmp_path / "a")
    rdm = score_model(net, [str(folder)], {"IT": "1"}, metric="rdm", batch_size=50)
    assert rdm["IT_ceiling"] == pytest.approx(float(rdm_split_half_ceiling(open_local_benchmark(folder).responses)["ceiling"]))


def test_a_resume_that_changes_the_metric_is_refused(tmp_path):
    """The callback's history records each local benchmark's metric; restoring it under another metric fails."""
    folder = str(_folder(tmp_path / "a"))
    first = BrainScoreCallback(benchmarks=[folder], region_layer_map={"IT": "1"}, metric="ridgecv", metric_args={"alphas": [1.0, 10.0]})
    first.benchmarks()
    state = first.state_dict()
    assert state["metrics"] == {"local:t": {"metric": "ridgecv", "metric_args": {"alphas": [1.0, 10.0]}}}
    same = BrainScoreCallback(benchmarks=[folder], region_layer_map={"IT": "1"}, metric="ridgecv", metric_args={"alphas": [1.0, 10.0]})
    same.benchmarks()
    same.load_state_dict(state)
    other = BrainScoreCallback(benchmarks=[folder], region_layer_map={"IT": "1"}, metric="ridgecv")
    other.benchmarks()
    with pytest.raises(ConfigError, match=r"history of local:t was scored with .*ridgecv.*resume with the same"):
        other.load_state_dict(state)
