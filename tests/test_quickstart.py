"""The main job end to end, exactly as the README runs it (configs/quickstart.yaml, then the evolution).

Slow (a few CPU minutes) but it is the claim of the README: the robust training logs `train/loss`,
`val/acc`, `val/robust_acc` and every `brainscore/*` key each epoch, writes the per-epoch Brain-Score
JSON files, reaches well above chance accuracy on the built-in shapes, and the evolution on its
checkpoint raises every unit's activation.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from lightning_modules.cli import main

ROOT = Path(__file__).resolve().parents[1]
BRAINSCORE_KEYS = [f"brainscore/{r}{s}" for r in ("V1", "V2", "V4", "IT") for s in ("", "_raw", "_ceiling")]
BRAINSCORE_KEYS += ["brainscore/behavior", "brainscore/average", "brainscore/rho_hierarchy"]


@pytest.mark.slow
def test_main_job_end_to_end(tmp_path, monkeypatch):
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
    assert (tmp_path / "runs" / "quickstart" / "checkpoints" / "last.ckpt").is_file()

    assert main(["fit", "-c", "configs/evolution/quickstart.yaml", "--model.init_args.n_generations", "30"]) == 0
    evo = tmp_path / "runs" / "evolution" / "quickstart" / "version_0" / "evolution"
    with open(evo / "scores.csv") as handle:
        scores = list(csv.DictReader(handle))
    units = {r["unit"] for r in scores}
    assert len(units) == 4 and len(scores) == 30 * 4
    for unit in units:
        mine = [r for r in scores if r["unit"] == unit]
        assert float(mine[-1]["best_so_far"]) > float(mine[0]["max"]), unit
        assert (evo / "best" / f"{unit}.png").is_file()
    assert (evo / "prototypes.pt").is_file()
