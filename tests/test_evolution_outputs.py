"""Evolution files: scores.csv columns and exact round trip, best PNGs, montage layout, prototypes.pt."""

from __future__ import annotations

import csv

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch import nn

from lightning_modules.evolution.generators.pixels import PixelGenerator
from lightning_modules.evolution.module import EvolutionModule
from lightning_modules.evolution.outputs import SCORE_COLUMNS, EvolutionOutputs, enlarge, montage_grid, read_scores, to_uint8
from lightning_modules.evolution.units import Unit


def test_scores_csv_columns_and_exact_round_trip(tmp_path):
    history = torch.randn(3, 2, 4)
    path = EvolutionOutputs(tmp_path).write_scores(["a", "b"], history)
    with open(path) as fh:
        assert next(csv.reader(fh)) == ["generation", "unit", "mean", "max", "best_so_far", "sigma"] == list(SCORE_COLUMNS)
    rows = read_scores(path)
    assert [(r["generation"], r["unit"]) for r in rows] == [(0, "a"), (0, "b"), (1, "a"), (1, "b"), (2, "a"), (2, "b")]
    back = torch.tensor([[r[c] for c in SCORE_COLUMNS[2:]] for r in rows]).view(3, 2, 4)
    assert torch.equal(back.float(), history)  # repr keeps every float32 bit


def test_best_images_montage_and_prototypes(tmp_path):
    out = EvolutionOutputs(tmp_path)
    images = torch.rand(2, 3, 10, 10)
    paths = out.write_best(["u0", "u1"], images)
    assert [p.name for p in paths] == ["u0.png", "u1.png"]
    assert Image.open(paths[1]).size == (130, 130)  # 10 px enlarged x13 (nearest) to >= 128 px
    png = torch.tensor(list(Image.open(paths[1]).getdata())).T.reshape(3, 130, 130) / 255
    assert (png[:, ::13, ::13] - images[1]).abs().max() <= 1 / 255 + 1e-6
    assert torch.equal(png[:, :13, :13], png[:, :1, :1].expand(3, 13, 13))  # sharp squares
    snapshots = torch.rand(4, 2, 3, 10, 10)  # 4 snapshots x 2 units
    # rows = units, columns = snapshots; 10 px tiles enlarged x6 (nearest) to 60 px; 2 px padding
    grid = montage_grid(snapshots.transpose(0, 1).flatten(0, 1), n_columns=4)
    assert grid.shape == (3, 2 * 62 + 2, 4 * 62 + 2)
    enlarged = snapshots[1, 0].repeat_interleave(6, 1).repeat_interleave(6, 2)  # unit 0, second snapshot
    torch.testing.assert_close(grid[:, 2:62, 64:124], enlarged)
    path, picture = out.write_montage(snapshots, ["u0", "u1"], [0, 3, 6, 9], [1.5, 2.25])
    assert picture.dtype == np.uint8 and Image.open(path).size == (picture.shape[1], picture.shape[0])
    # the grid pixel for pixel, with a 150 px margin of unit labels on the left and generations on top
    assert abs(picture.shape[1] - (4 * 62 + 2 + 160)) <= 1 and abs(picture.shape[0] - (2 * 62 + 2 + 30)) <= 1
    top, left = 24, 150
    want = (enlarged.permute(1, 2, 0) * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy().astype(np.int16)
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]  # the figure may place the image 1 px off
    tiles = [picture[top + dy + 2 : top + dy + 62, left + dx + 64 : left + dx + 124].astype(np.int16) for dy, dx in shifts]
    assert min(np.abs(t - want).max() for t in tiles) <= 1
    assert (picture[top:, :left] < 100).any() and (picture[:top, left:] < 100).any()  # text in the margins
    out.write_prototypes([{"layer": "x", "channel": 0}], ["u0"], torch.ones(1, 5), images[:1], torch.tensor([2.0]), 7)
    data = torch.load(tmp_path / "prototypes.pt", weights_only=True)
    assert data["labels"] == ["u0"] and data["generation"] == 7 and data["codes"].shape == (1, 5)
    assert data["images"].shape == (1, 3, 10, 10)  # native size


def test_images_for_loggers_are_uint8_and_not_black():
    images = torch.rand(2, 3, 4, 4) * 0.5 + 0.25
    arrays = to_uint8(images)
    assert arrays.dtype == np.uint8 and arrays.shape == (2, 4, 4, 3)
    assert 60 <= arrays.min() and arrays.max() <= 195
    assert np.array_equal(arrays[1, 2, 3], (images[1, :, 2, 3] * 255 + 0.5).to(torch.uint8).numpy())
    assert enlarge(torch.rand(1, 3, 200, 200)).shape[-1] == 200 and enlarge(torch.rand(1, 3, 32, 32)).shape[-1] == 128


def test_module_writes_every_output_under_the_log_dir(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
    module = EvolutionModule(net, [Unit("0", 1), Unit("3", 2, name="logit2")], PixelGenerator(8), n_generations=7, snapshot_every=3)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=L.pytorch.loggers.CSVLogger(tmp_path), enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module)
    folder = tmp_path / "lightning_logs" / "version_0" / "evolution"
    rows = read_scores(folder / "scores.csv")
    assert len(rows) == 7 * 2 and {r["unit"] for r in rows} == {"0_1", "logit2"}
    for unit in ("0_1", "logit2"):
        best = [r["best_so_far"] for r in rows if r["unit"] == unit]
        assert best == sorted(best)  # best so far never decreases
        assert all(r["max"] <= r["best_so_far"] and r["mean"] <= r["max"] for r in rows if r["unit"] == unit)
    assert module.state.snapshot_generations == [2, 5, 6]  # every 3 generations and the last
    width, height = Image.open(folder / "montage.png").size  # 8 px tiles shown at 64 px, labelled margins
    assert abs(width - (3 * 66 + 2 + 160)) <= 1 and abs(height - (2 * 66 + 2 + 30)) <= 1
    assert Image.open(folder / "best" / "logit2.png").size == (128, 128)  # 8 px enlarged x16
    assert sorted(p.name for p in (folder / "best").iterdir()) == ["0_1.png", "logit2.png"]
    protos = torch.load(folder / "prototypes.pt", weights_only=True)
    assert protos["images"].shape == (2, 3, 8, 8) and protos["codes"].shape == (2, 192)
    assert protos["units"][1] == {"layer": "3", "channel": 2, "position": None, "token": None, "name": "logit2"}
    torch.testing.assert_close(protos["scores"], torch.tensor([rows[-2]["best_so_far"], rows[-1]["best_so_far"]]))
    metrics = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "evolution/logit2/best_so_far" in metrics  # score curves reach any logger
