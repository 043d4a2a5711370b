"""``neuroalign score`` (callbacks/commands.py): model_kwargs with checkpoints, files printed, unwritable output."""

from __future__ import annotations

import pytest
import torch

from callbacks.brainscore.commands.score import load_model
from callbacks.brainscore.benchmarks.synthetic import make_synthetic_benchmark
from neuroalign.cli import main
from lightning_modules.zoo import ZooModel


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench") / "synthetic"
    make_synthetic_benchmark(root, n_stimuli=40, n_neuroids=8, n_fitting=16, n_objects=4, trials_per_image=10, image_size=16)
    return str(root)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    """A plain state dict of a 5-class torchvision MobileNetV3-small (it records no architecture)."""
    torch.manual_seed(0)
    net = ZooModel("mobilenet_v3_small", num_classes=5)
    path = tmp_path_factory.mktemp("ckpt") / "mnv3.pt"
    torch.save(net.net.state_dict(), path)
    return path, net


def _score_args(bench, out, *extra):
    return ["score", "--benchmarks", f"[synthetic:{bench}#V1]", "--region_layer_map", "{V1: blocks.0}",
            "--model", "synthetic-reference", "--output_dir", str(out), *extra]


def test_model_kwargs_with_a_checkpoint_describe_the_named_architecture(small_checkpoint):
    path, trained = small_checkpoint
    net = load_model("mobilenet_v3_small", str(path), {"num_classes": 5})  # a TypeError before
    assert net.num_classes == 5 and not net.training
    for key, value in trained.net.state_dict().items():
        assert torch.equal(net.net.state_dict()[key], value), key


@pytest.mark.parametrize(
    ("command", "extra", "needle"),
    [
        ("score", ["--region_layer_map", "{V1: features.0}"], "`--model_kwargs` (num_classes) describe a zoo model named by `--model`, but none is named"),
        ("layer-sweep", ["--layers", "[features.0]"], "`--model_kwargs` (num_classes) describe a zoo model named by `--model`, but none is named"),
    ],
)
def test_model_kwargs_with_a_checkpoint_but_no_model_is_one_line(tmp_path, capsys, small_checkpoint, tiny_bench, command, extra, needle):
    path, _ = small_checkpoint
    args = [command, "--benchmarks", f"[synthetic:{tiny_bench}#V1]", "--checkpoint", str(path), "--model_kwargs", "{num_classes: 5}",
            "--output_dir", str(tmp_path / "out"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuroalign: error: ") and needle in err[0]


def test_model_kwargs_choosing_weights_with_a_checkpoint_is_one_line(tmp_path, capsys, small_checkpoint, tiny_bench):
    path, _ = small_checkpoint
    args = ["layer-sweep", "--benchmarks", f"[synthetic:{tiny_bench}#V1]", "--layers", "[features.0]", "--model", "mobilenet_v3_small",
            "--checkpoint", str(path), "--model_kwargs", "{num_classes: 5, pretrained: true}", "--output_dir", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "`--model_kwargs` pretrained cannot be used with `--checkpoint`" in err[0]


def test_score_prints_every_file_it_wrote(tmp_path, capsys, tiny_bench):
    out = tmp_path / "scores"
    assert main(_score_args(tiny_bench, out)) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    written = [line.removeprefix("wrote ") for line in lines if line.startswith("wrote ")]
    assert written == [str(out / "scores.json"), str(out / "brainscore_summary.csv"), str(out / "brainscore_summary.md")]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.rsplit("/", 1)[1] for p in written)  # every file, listed
    assert lines[0].startswith("| model |")


def test_unwritable_output_dir_is_one_line_naming_path_and_option(tmp_path, capsys, tiny_bench):
    (tmp_path / "afile").write_text("a regular file, not a folder")
    assert main(_score_args(tiny_bench, tmp_path / "afile" / "out")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"neuroalign: error: cannot write {tmp_path / 'afile'}") and "`--output_dir`" in err[0]


def test_score_help_is_short(capsys):
    with pytest.raises(SystemExit) as info:
        main(["score", "--help"])
    assert info.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) < 80
