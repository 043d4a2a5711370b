"""Analyses: score distribution, convergence profile, nearest images, the image loaders and the CLI."""

from __future__ import annotations

import csv
import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision.utils import save_image

from neuroalign.cli import main
from neuroalign.core.errors import ConfigError, MissingFileError
from lightning_modules.evolution.analyses import convergence_profile, nearest_images, score_distribution
from lightning_modules.evolution.images import load_image_folder, load_natural_images
from lightning_modules.evolution.outputs import EvolutionOutputs
from lightning_modules.evolution.units import Unit
from neuroalign.core.report import Report


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))


def _folder(tmp_path, n=6, side=16):
    folder = tmp_path / "natural" / "class_a"
    folder.mkdir(parents=True)
    images = torch.rand(n, 3, side, side)
    for i, img in enumerate(images):
        save_image(img, folder / f"{i:02d}.png")
    return tmp_path / "natural"


def _prototype(tmp_path, image, name="p", unit=("4", 1)):
    out = EvolutionOutputs(tmp_path / name / "evolution")
    spec = Unit(*unit)
    out.write_prototypes([spec.to_dict()], [spec.label], torch.zeros(1, 3), image[None], torch.tensor([0.0]), 1)
    return str(tmp_path / name)


class _TinyData(L.LightningDataModule):
    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images = images

    def val_dataloader(self):
        return DataLoader(TensorDataset(self.images, torch.zeros(len(self.images))), batch_size=4)


def test_image_folder_loader_and_errors(tmp_path):
    folder = _folder(tmp_path, n=5, side=20)
    images, names = load_image_folder(folder, n=3, size=16)
    assert images.shape == (3, 3, 16, 16) and 0 <= images.min() and images.max() <= 1
    assert [n.rsplit("/", 1)[-1] for n in names] == ["00.png", "01.png", "02.png"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(ConfigError, match="holds no images"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(MissingFileError):
        load_image_folder(tmp_path / "absent")
    with pytest.raises(ConfigError, match="exactly one"):
        load_natural_images(str(folder), _TinyData(torch.rand(2, 3, 8, 8)), 2)


def test_score_distribution_numbers_and_files(tmp_path):
    folder = _folder(tmp_path)
    net = _net()
    natural, _ = load_image_folder(folder, size=16)
    with torch.no_grad():
        nat = net(natural)[:, 1]
    weak, strong = torch.zeros(3, 16, 16), torch.ones(3, 16, 16)
    protos = [_prototype(tmp_path, weak, "weak"), _prototype(tmp_path, strong, "strong")]
    with torch.no_grad():
        proto_max = net(torch.stack([weak, strong]))[:, 1].max().item()
    out = tmp_path / "out"
    summary = score_distribution(net, protos, images=str(folder), n_images=6, output_dir=str(out), image_size=16)
    assert summary["natural_mean"] == pytest.approx(nat.mean().item(), rel=1e-5)
    assert summary["natural_max"] == pytest.approx(nat.max().item(), rel=1e-5)
    assert summary["prototype_max"] == pytest.approx(proto_max, rel=1e-5)
    mean = nat.mean().item()
    if mean > 0:
        assert summary["increase_over_mean_pct"] == pytest.approx(100 * (proto_max - mean) / mean, rel=1e-4)
    else:  # a percentage of a non-positive baseline is undefined
        assert math.isnan(summary["increase_over_mean_pct"])
    assert summary["prototype_z"] == pytest.approx((proto_max - mean) / nat.std().item(), rel=1e-4)
    assert (out / "distribution_4_1.png").stat().st_size > 1000
    with open(out / "distribution_4_1.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["kind"] for r in rows].count("natural") == 6 and [r["kind"] for r in rows].count("prototype") == 2
    assert (out / "distribution_4_1_summary.csv").is_file()
    dm = score_distribution(net, protos[:1], datamodule=_TinyData(natural), n_images=5, output_dir=str(out), image_size=16)
    assert dm["natural_mean"] == pytest.approx(nat[:5].mean().item(), rel=1e-5)


def _scores_file(path, curve, unit="u"):
    out = EvolutionOutputs(path)
    history = torch.zeros(len(curve), 1, 4)
    history[:, 0, 0] = torch.tensor(curve)
    out.write_scores([unit], history)
    return str(out.scores_path)


def test_convergence_profile_thresholds_and_overlay(tmp_path):
    # generation 0 (the single initial code) is left out: the profile starts at generation 1
    linear = _scores_file(tmp_path / "a", [2.0 + 0.5 * g for g in range(11)])  # gens 1..10 normalised (g - 1) / 9
    fast = _scores_file(tmp_path / "b", [-1.0, 0.0, 5.0, 8.0, 9.0, 9.0])  # gens 1..5: 0, .56, .89, 1, 1
    summary = convergence_profile([linear, fast, linear], labels=["alexnet", "vit", "alexnet"], output_dir=str(tmp_path / "out"))
    per_run = [s for s in summary if not s["run"].startswith("mean")]
    assert [(s["gen_0.5"], s["gen_0.8"]) for s in per_run] == [(6, 9), (2, 3), (6, 9)]
    means = {s["label"]: (s["gen_0.5"], s["gen_0.8"]) for s in summary if s["run"].startswith("mean")}
    assert means == {"alexnet": (6, 9), "vit": (2, 3)}
    with open(tmp_path / "out" / "convergence.csv") as fh:
        points = list(csv.DictReader(fh))
    assert len(points) == 10 + 5 + 10
    assert points[0]["generation"] == "1" and float(points[0]["normalised"]) == 0.0
    assert points[9]["generation"] == "10" and float(points[9]["normalised"]) == 1.0
    assert (tmp_path / "out" / "convergence.png").stat().st_size > 1000
    with pytest.raises(ConfigError, match="unit 'nope'"):
        convergence_profile([linear], unit="nope", output_dir=str(tmp_path / "out"))
    # the old behaviour stays available
    kept = convergence_profile([linear], include_generation_0=True, output_dir=str(tmp_path / "out0"))
    assert (kept[0]["gen_0.5"], kept[0]["gen_0.8"]) == (5, 8)


def test_a_high_single_sample_at_generation_0_does_not_set_the_half_max(tmp_path):
    # the zero code scores 10; the populations then climb from 0 to 8: the half-max is reached at
    # generation 5, not at generation 0 (where min-max normalisation over every row would put it)
    curve = [10.0] + [float(g - 1) for g in range(1, 10)]  # gens 1..9: 0..8
    summary = convergence_profile([_scores_file(tmp_path / "r", curve)], output_dir=str(tmp_path / "out"))
    assert summary[0]["gen_0.5"] == 5 and summary[0]["gen_0.8"] == 8  # 4/8 and 6.4/8 -> gens 5 and 8 (7/8)


def test_mean_curve_says_whether_it_averages_units_or_runs(tmp_path):
    out = EvolutionOutputs(tmp_path / "one_run")
    history = torch.arange(6.0)[:, None, None].expand(6, 4, 4).clone()
    out.write_scores(["a", "b", "c", "d"], history)
    summary = convergence_profile([str(out.scores_path)], output_dir=str(tmp_path / "out"))
    assert summary[-1]["run"] == "mean of 4 units of 1 run"  # not "4 runs"
    runs = [_scores_file(tmp_path / f"run{i}", [0.0, 1.0, 2.0, 3.0]) for i in range(3)]
    summary = convergence_profile(runs, labels=["m"] * 3, output_dir=str(tmp_path / "out"))
    assert summary[-1]["run"] == "mean of 3 runs of unit u"


def _neighbours_of_a_copy(tmp_path, **kwargs):
    """Rank 7 natural images against a prototype that is an exact copy of the fifth (a tiny embedding)."""
    folder = _folder(tmp_path, n=7)
    natural, names = load_image_folder(folder, size=16)
    proto = _prototype(tmp_path, natural[4])
    torch.manual_seed(1)
    embed = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    ranked = nearest_images(proto, images=str(folder), n_images=7, embedding_model=embed, output_dir=str(tmp_path / "out"), image_size=16, **kwargs)
    return ranked, names


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_nearest_images_ranks_an_exact_copy_first(tmp_path, metric):
    ranked, names = _neighbours_of_a_copy(tmp_path, k=3, metric=metric)
    assert ranked[0]["source"] == names[4]
    key = "distance" if metric == "euclidean" else "similarity"
    assert ranked[0][key] == pytest.approx(0.0 if metric == "euclidean" else 1.0, abs=1e-6)
    values = [r[key] for r in ranked]
    assert values == sorted(values, reverse=metric == "cosine")
    assert (tmp_path / "out" / f"neighbours_4_1_{metric}.png").is_file()
    assert len((tmp_path / "out" / f"neighbours_4_1_{metric}.csv").read_text().splitlines()) == 1 + 7


def test_default_embedding_is_the_zoo_resnet101_and_fails_fast_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROALIGN_OFFLINE", "1")
    folder = _folder(tmp_path, n=2)
    proto = _prototype(tmp_path, torch.rand(3, 16, 16))
    with pytest.raises(MissingFileError, match="resnet101") as err:
        nearest_images(proto, images=str(folder), n_images=2, output_dir=str(tmp_path / "out"))
    # the command's own keys, not the zoo's `model.init_args.model.init_args.weights_path`
    assert "`--weights_path`" in str(err.value) and "--embedding_model" in str(err.value)
    assert "init_args" not in str(err.value)


def test_commands_run_from_the_cli(tmp_path, capsys):
    for command in ("analyze-distribution", "analyze-convergence", "analyze-neighbours"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) < 80, (command, len(lines))  # no list of every torch Module subclass
    scores = _scores_file(tmp_path / "run", [0.0, 1.0, 3.0, 4.0])
    assert main(["analyze-convergence", "--scores", f"[{scores}]", "--output_dir", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "convergence_summary.csv").is_file()
    printed = capsys.readouterr().out
    assert "[{" not in printed and "gen_0.5" in printed.splitlines()[1]  # a table, not a Python list
    assert "mean of 1 unit of 1 run" in printed and f"{tmp_path.name}/run " in printed  # the run folder, not the csv path
    assert f"wrote {tmp_path / 'cli' / 'convergence_summary.csv'}" in printed
    assert main(["analyze-convergence", "--scores", f"[{tmp_path / 'absent'}]"]) == 2  # one-line user error
    (tmp_path / "afile").write_text("a file, not a folder")
    capsys.readouterr()
    assert main(["analyze-convergence", "--scores", f"[{scores}]", "--output_dir", str(tmp_path / "afile" / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"neuroalign: error: cannot write {tmp_path / 'afile'}") and "`--output_dir`" in err[0]


def test_neighbours_command_prints_the_nearest_and_furthest_and_the_files(tmp_path, capsys):
    ranked, _ = _neighbours_of_a_copy(tmp_path, k=2)
    assert isinstance(ranked, Report) and len(ranked) == 7
    text = str(ranked).splitlines()
    assert text[1].split() == ["rank", "source", "distance"]
    assert sum(line.startswith(("0 ", "1 ", "5 ", "6 ")) for line in text) == 4 and "... (3 more rows)" in text
    assert text[-2:] == [f"wrote {tmp_path / 'out' / 'neighbours_4_1_euclidean.csv'}", f"wrote {tmp_path / 'out' / 'neighbours_4_1_euclidean.png'}"]


def test_percent_increase_is_undefined_for_non_positive_baselines(caplog):
    from lightning_modules.evolution.analyses import _percent

    assert _percent(3.0, 2.0, "natural mean") == pytest.approx(50.0)
    assert math.isnan(_percent(3.0, -2.0, "natural mean"))
    assert "undefined" in caplog.text
