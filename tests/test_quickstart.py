"""The main job end to end, exactly as the README runs it (configs/quickstart.yaml, then the evolution).

Slow (a few CPU minutes) but it is the claim of the README. Nothing here depends on one machine's
training trajectory (floating-point results differ between CPUs): the robust training logs
`train/loss`, `val/acc`, `val/robust_acc` and every `brainscore/*` key each epoch, writes the
per-epoch Brain-Score JSON files and ends well above chance accuracy; the evolution on its checkpoint
raises the activation of every unit that is not retired, and reports the retired ones.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from neuroalign.cli import main
from lightning_modules.evolution.outputs import read_scores, read_summary

ROOT = Path(__file__).resolve().parents[1]
BRAINSCORE_KEYS = [f"brainscore/{r}{s}" for r in ("V1", "V2", "V4", "IT") for s in ("", "_raw", "_ceiling")]
BRAINSCORE_KEYS += ["brainscore/behavior", "brainscore/average", "brainscore/rho_hierarchy"]


def _check_evolution(folder: Path, generations: int) -> None:
    """Every active unit improved over its first generation; retired units are reported with a reason."""
    summary = {row["unit"]: row for row in read_summary(folder / "summary.csv")}
    scores = read_scores(folder / "scores.csv")
    assert len(summary) == 4 and {r["unit"] for r in scores} == set(summary)
    active = [u for u, row in summary.items() if row["status"] == "active"]
    assert active, f"every unit retired: {summary}"
    for unit, row in summary.items():
        mine = [r for r in scores if r["unit"] == unit]
        if row["status"] == "active":
            assert len(mine) == generations and mine[-1]["best_so_far"] > mine[0]["max"], unit
            assert (folder / "best" / f"{unit}.png").is_file()
        else:
            assert row["reason"] and int(row["retired_generation"]) == mine[-1]["generation"], row
    auto = [row for row in summary.values() if row["chosen"] == "auto"]
    assert len(auto) == 2 and all(row["channel"].isdigit() and row["position"] for row in auto)
    assert (folder / "prototypes.pt").is_file()


@pytest.mark.slow
def test_main_job_end_to_end(tmp_path, monkeypatch, capsys, recwarn, caplog):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)  # the configs use paths relative to the working directory, like the README
    assert main(["fit", "-c", "configs/quickstart.yaml"]) == 0

    run = tmp_path / "runs" / "quickstart" / "version_0"
    with open(run / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    epochs = 5
    for key in ["train/loss", "val/acc", "val/robust_acc", *BRAINSCORE_KEYS]:
        logged = {int(r["epoch"]) for r in rows if r.get(key) not in (None, "")}
        assert logged == set(range(epochs)), f"{key} logged in epochs {sorted(logged)}"
        values = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
        assert all(math.isfinite(v) for v in values), key
    val_acc = [float(r["val/acc"]) for r in rows if r.get("val/acc")]
    assert val_acc[-1] >= 0.5, f"final val/acc {val_acc[-1]:.3f}: not well above the 0.1 chance level"
    for epoch in range(epochs):
        scores = json.loads((run / "brainscore" / f"epoch_{epoch}.json").read_text())
        assert {k.removeprefix("brainscore/") for k in BRAINSCORE_KEYS} <= set(scores["scores"])
    assert (run / "checkpoints" / "last.ckpt").is_file()
    out = capsys.readouterr().out
    # off a terminal the progress bar prints one line per epoch, not carriage returns
    assert [line.split()[1] for line in out.splitlines() if line.startswith("epoch ")] == [f"{e}/5" for e in range(1, 6)]
    assert "\r" not in out

    assert main(["fit", "-c", "configs/evolution/quickstart.yaml"]) == 0
    _check_evolution(tmp_path / "runs" / "evolution" / "quickstart" / "version_0" / "evolution", 100)
    out = capsys.readouterr().out
    assert sum(line.startswith("step ") for line in out.splitlines()) == 10  # a line every 10 generations
    # none of the warnings a user cannot act on
    seen = [str(w.message) for w in recwarn] + [r.getMessage() for r in caplog.records]
    for text in ("args parameter is intended", "in eval mode at the start of training", "`IterableDataset` has `__len__`",
                 "`weights_only` was not set", "manual optimization and every_n_train_steps", "on_after_batch_transfer"):
        assert not [m for m in seen if text in m], text


@pytest.mark.slow
def test_quickstart_evolution_works_on_weights_trained_with_another_seed(tmp_path, monkeypatch):
    """The units of the quickstart evolution are chosen for the weights at hand: train briefly with
    another seed (a small override of the README config), then evolve with the README's evolution config."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    small = ["--seed_everything", "1", "--trainer.max_epochs", "1", "--data.init_args.num_train", "512", "--data.init_args.num_val", "128"]
    assert main(["fit", "-c", "configs/quickstart.yaml", *small, "--model.init_args.val_robust_samples", "64"]) == 0
    assert main(["fit", "-c", "configs/evolution/quickstart.yaml", "--model.init_args.n_generations", "15"]) == 0
    _check_evolution(tmp_path / "runs" / "evolution" / "quickstart" / "version_0" / "evolution", 15)
