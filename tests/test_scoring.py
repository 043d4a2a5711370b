"""score_model / summarize_scores: keys, average, rho-hierarchy, missing regions absent, summary table."""

from __future__ import annotations

import pytest

from callbacks.brainscore.types import RegionScore
from callbacks.brainscore.engine import load_benchmark, summarize_scores
from callbacks.brainscore.summary import write_summary
from neuroalign.core.errors import ConfigError


def _s(region, ceiled):
    return RegionScore(region=region, ceiled=ceiled, raw=ceiled, ceiling=0.8, benchmark=f"b-{region}")


def test_summary_keys_average_and_rho(tmp_path):
    out = summarize_scores([_s("V1", 0.1), _s("V2", 0.2), _s("V4", 0.3), _s("IT", 0.4), _s("behavior", 0.5)])
    assert out["average"] == pytest.approx(0.3) and out["rho_hierarchy"] == pytest.approx(1.0)
    partial = summarize_scores([_s("V1", 0.4), _s("IT", 0.1)])
    assert "V2" not in partial and partial["rho_hierarchy"] == pytest.approx(-1.0) and partial["average"] == pytest.approx(0.25)
    assert "rho_hierarchy" not in summarize_scores([_s("V1", 0.4)])
    table = write_summary({"m": out}, tmp_path)
    assert "| m | 0.300 | 0.100 |" in table and (tmp_path / "brainscore_summary.csv").exists()


def test_nan_scores_are_refused_and_bad_specs_are_config_errors(tmp_path):
    with pytest.raises(ValueError, match="not finite"):
        _s("V1", float("nan"))
    with pytest.raises(ConfigError, match="region"):
        load_benchmark(f"synthetic:{tmp_path}#V3")
