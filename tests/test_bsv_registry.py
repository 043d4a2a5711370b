"""brainscore-vision's registry as neuroalign reads it: every id, the nearest ids, the ids the configs name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from callbacks.brainscore.bsv_registry import check_benchmark_id, registered_benchmark_ids
from neuroalign.core.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "brainscore"


def _benchmarks(name: str) -> list[str]:
    config = yaml.safe_load((CONFIGS / name).read_text())
    return config["trainer"]["callbacks"][0]["init_args"]["benchmarks"]


def test_every_registered_id_is_known_without_importing_brainscore_vision():
    ids = registered_benchmark_ids()
    assert len(ids) > 100 and len(set(ids)) == len(ids)
    assert {"MajajHong2015public.IT-pls", "Marques2020_Ringach2002-or_bandwidth", "Rajalingham2018public-i2n"} <= set(ids)


def test_configs_name_registered_ids_only():
    public = _benchmarks("public.yaml")
    everything = _benchmarks("bsv_public_all.yaml")
    assert len(public) == 5 and set(public) <= set(everything)
    assert sum(b.startswith("Marques2020_") for b in everything) > 10  # the leaderboard's V1 is more than one benchmark
    for identifier in everything:
        check_benchmark_id(identifier)


def test_unknown_id_lists_the_nearest_registered_ids():
    with pytest.raises(ConfigError, match=r"unknown brainscore-vision benchmark 'Rajalingham2018public-i2' .*nearest registered ids: Rajalingham2018public-i2n"):
        check_benchmark_id("Rajalingham2018public-i2")
