"""On the synthetic benchmark, the layer sweep ranks the ground-truth layer first for every region."""

from __future__ import annotations

import yaml

from callbacks.layer_sweep import layer_sweep
from callbacks.synthetic import REFERENCE_LAYERS, make_synthetic_benchmark, reference_network


def test_sweep_finds_ground_truth_layers(tmp_path):
    root = make_synthetic_benchmark(tmp_path / "syn", n_stimuli=160, n_neuroids=20, n_fitting=12, trials_per_image=4)
    net = reference_network()
    path = layer_sweep([f"synthetic:{root}#V1,V2,V4,IT"], ["blocks.?"], output_dir=str(tmp_path / "out"), net=net)
    best = yaml.safe_load(open(path))["region_layer_map"]
    assert best == REFERENCE_LAYERS
    # the ground truth recorded in each benchmark.yaml agrees
    for region, layer in best.items():
        assert yaml.safe_load(open(tmp_path / "syn" / region / "benchmark.yaml"))["ground_truth_layer"] == layer
    assert (tmp_path / "out" / "layer_sweep.png").stat().st_size > 0
    assert len((tmp_path / "out" / "layer_sweep.csv").read_text().splitlines()) == 1 + 16
