"""The synthetic benchmark: folder format, ground truth recorded, reproducible, scored end to end."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from callbacks.brainscore.benchmarks.local import open_local_benchmark
from callbacks.brainscore.benchmarks.synthetic import REFERENCE_LAYERS, make_synthetic_benchmark, reference_network
from callbacks.brainscore.engine import load_benchmark, score_model
from datamodules.shapes import SHAPE_CLASSES, render_shapes, sample_shape_params
from neuroalign.cli import main
from neuroalign.core.errors import ConfigError


def test_writes_valid_reproducible_benchmarks(tmp_path):
    kw = dict(n_stimuli=48, n_neuroids=8, n_fitting=24, n_objects=4, trials_per_image=40, image_size=16)
    a = make_synthetic_benchmark(tmp_path / "a", **kw)
    b = make_synthetic_benchmark(tmp_path / "b", **kw)
    manifest = yaml.safe_load(open(tmp_path / "a" / "manifest.yaml"))
    assert manifest["synthetic"] and manifest["ground_truth_layers"] == REFERENCE_LAYERS
    for region in ("V1", "V2", "V4", "IT"):
        bench = open_local_benchmark(tmp_path / "a" / region)
        assert bench.responses.shape == (4, 48, 8) and bench.meta["ground_truth_layer"] == REFERENCE_LAYERS[region]
        assert np.array_equal(np.load(tmp_path / "a" / region / "responses.npy"), np.load(tmp_path / "b" / region / "responses.npy"))
    assert open_local_benchmark(tmp_path / "a" / "behavior").kind == "behavior"
    assert a != b


def test_stimuli_are_drawn_by_the_shapes_renderer(tmp_path):
    """The stimuli are the pixels of datamodules.shapes (image i shows shape i % n_objects), labelled by name."""
    make_synthetic_benchmark(tmp_path / "s", n_stimuli=12, n_neuroids=4, n_fitting=8, n_objects=3, trials_per_image=2, image_size=16, seed=5)
    labels = np.arange(12) % 3
    expected = render_shapes(sample_shape_params(12, 3, 5, 2, labels=labels), np.arange(12), 16)
    bench = open_local_benchmark(tmp_path / "s" / "V1")
    pixels = np.stack([np.asarray(Image.open(p)) for p in bench.stimulus_sets()["stimuli"].paths])
    assert np.array_equal(pixels, expected)
    assert [s.split(",")[-1] for s in (tmp_path / "s" / "V1" / "stimuli.csv").read_text().split()[1:4]] == list(SHAPE_CLASSES[:3])


def test_synthetic_spec_generates_on_first_use_and_scores(tmp_path):
    make_synthetic_benchmark(tmp_path / "s", n_stimuli=48, n_neuroids=8, n_fitting=24, n_objects=4, trials_per_image=40, image_size=16)
    out = score_model(reference_network(image_size=16, n_classes=4), f"synthetic:{tmp_path / 's'}#V1,IT,behavior",
                      {"V1": "blocks.0", "IT": "blocks.3"}, behavioral_readout_layer="blocks.3")
    per_benchmark = {f"{region}/local:synthetic-{region}" for region in ("V1", "IT", "behavior")}
    assert set(out) == {"V1", "V1_raw", "V1_ceiling", "IT", "IT_raw", "IT_ceiling", "behavior", "behavior_raw",
                        "behavior_ceiling", "average", "rho_hierarchy"} | per_benchmark
    assert all(out[f"{region}/local:synthetic-{region}"] == out[region] for region in ("V1", "IT", "behavior"))  # one benchmark a region
    assert all(np.isfinite(v) for v in out.values())


def test_unwritable_folder_is_one_line_naming_path_and_key(tmp_path, capsys):
    (tmp_path / "afile").write_text("a regular file, not a folder")
    bad = tmp_path / "afile" / "out"
    assert main(["make-synthetic-benchmark", "--output_dir", str(bad), "--n_stimuli", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"neuroalign: error: cannot write {tmp_path / 'afile'}") and "`output_dir`" in err[0]
    # the same folder as a config's benchmark spec (written on first use)
    with pytest.raises(ConfigError, match=rf"cannot write {tmp_path / 'afile'}.*`benchmarks: synthetic:{bad}`") as info:
        load_benchmark(f"synthetic:{bad}#V1")
    assert "\n" not in str(info.value)
