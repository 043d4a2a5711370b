"""The fast engine on brainscore-vision benchmarks: what it reads, where it falls back, and its bad-input lines.

Equality with brainscore-vision's own scoring is checked in ``tests/test_bsv_standins.py``.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

import callbacks.brainscore.features as features_module
from bsv_standins import standins
from callbacks import BrainScoreCallback
from callbacks.brainscore.benchmarks.brainscore_vision import BrainScoreVisionBenchmark
from callbacks.brainscore.features import check_feature_memory
from callbacks.brainscore.types import ScoringContext, StimulusSet
from neuroalign.core.errors import ConfigError


class _Net(nn.Module):
    input_size = (3, 16, 16)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean((2, 3))


@pytest.fixture()
def registered(tmp_path):
    with standins(tmp_path / "standins") as loaders:
        yield loaders


def test_reads_the_benchmark_settings_from_brainscore_vision(registered):
    bench = BrainScoreVisionBenchmark("MajajHong2015public.IT-pls")
    reading = bench.fast()
    inner = bench.load()
    split = inner._similarity_metric.cross_validation._split
    expected = list(split._split.split(np.zeros(len(reading.target)), inner._assembly["object_name"].values))
    assert len(reading.splits) == 10 and all((a == c).all() and (b == d).all() for (a, b), (c, d) in zip(reading.splits, expected))
    assert reading.n_components == 25 and reading.stimuli.visual_degrees == 8
    assert reading.target.shape == (inner._assembly.sizes["presentation"], inner._assembly.sizes["neuroid"])
    v1 = BrainScoreVisionBenchmark("FreemanZiemba2013public.V1-pls").fast()
    assert v1.stimuli.visual_degrees == 4  # FreemanZiemba's stimuli span 4 degrees: placed on the 8-degree screen
    i2n = BrainScoreVisionBenchmark("Rajalingham2018public-i2n").fast()
    assert set(i2n.stimulus_sets()) == {"fitting", "stimuli"} and i2n.classes == list(dict.fromkeys(i2n.fit_labels))


def test_other_benchmark_types_fall_back_with_one_log_line(registered, caplog):
    bench = BrainScoreVisionBenchmark("MajajHong2015public.IT-reverse_pls")
    with caplog.at_level(logging.INFO, logger="callbacks.brainscore.benchmarks.brainscore_vision"):
        assert not bench.needs_features
    lines = [r.getMessage() for r in caplog.records if "brainscore-vision's own path scores it" in r.getMessage()]
    assert len(lines) == 1 and "ReverseCrossRegressedCorrelation" in lines[0]
    assert not BrainScoreVisionBenchmark("MajajHong2015public.IT-pls", engine="brainscore-vision").needs_features


def test_unknown_engine_is_one_line():
    with pytest.raises(ConfigError, match="unknown scoring engine 'slow'.*valid: fast, brainscore-vision"):
        BrainScoreCallback(["MajajHong2015public.IT-pls"], {"IT": "conv"}, engine="slow")


def test_nan_responses_are_refused_like_brainscore_vision(registered):
    import brainscore_vision

    clean = registered["MajajHong2015.public"]

    def with_nan():
        assembly = clean()
        first = assembly["stimulus_id"].values == assembly["stimulus_id"].values[0]
        assembly.values[first, 0, :] = np.nan  # every repetition: the average is NaN too
        return assembly

    brainscore_vision.data_registry["MajajHong2015.public"] = with_nan
    with pytest.raises(ConfigError, match=r"MajajHong2015public.V4-pls: its averaged responses hold 1 NaN values"):
        BrainScoreVisionBenchmark("MajajHong2015public.V4-pls").fast()  # neuroid 0 is a V4 one


def test_a_stimulus_that_fails_to_load_is_named(registered):
    bench = BrainScoreVisionBenchmark("MajajHong2015public.V4-pls")
    broken = bench.fast().stimuli.paths[3]
    broken.write_bytes(b"not a png")
    with pytest.raises(ConfigError, match=rf"image {broken} cannot be decoded"):
        bench.score_model(_Net().eval(), {"V4": "conv"}, None, ScoringContext())


def test_features_that_would_not_fit_are_refused_before_extraction(tmp_path, monkeypatch):
    monkeypatch.setattr(features_module, "_free_bytes", lambda device: 10_000_000)  # 10 MB free
    stimuli = StimulusSet(tuple(tmp_path / f"{i}.png" for i in range(3200)), tuple(str(i) for i in range(3200)), 8.0)
    layers = {stimuli.key: ["conv"]}  # files never read: the check runs one grey image through the model
    with pytest.raises(ConfigError, match=r"need 13.1 MB \(conv 1,024 values x 3,200 stimuli = 13.1 MB\) but cpu has 10.0 MB free: set `max_features`"):
        check_feature_memory(_Net(), [stimuli], layers)
    assert check_feature_memory(_Net(), [stimuli], layers, max_features=64) == 3200 * 64 * 4
