"""DDP: units are sharded over 2 CPU processes (gloo), the outputs merged on rank 0, and every rank
retires the same dead unit at the same generation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import lightning as L
import pytest
import torch

from lightning_modules.evolution.outputs import read_scores, read_summary

_BUILD = """
import torch
from torch import nn
from lightning_modules.evolution.generators.pixels import PixelGenerator
from lightning_modules.evolution.module import EvolutionModule
from lightning_modules.evolution.units import Unit

def build(units, seed):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))
    with torch.no_grad():
        net[0].bias[3] = -1e3  # ReLU channel 3 is dead: unit ("1", 3) is retired after dead_patience=2
    return EvolutionModule(net, [Unit(*u) for u in units], PixelGenerator(8), n_generations=4, snapshot_every=2, seed=seed, dead_patience=2)

UNITS = [("4", 0), ("0", 1), ("4", 2), ("1", 3)]
"""

_SCRIPT = _BUILD + """
import sys
import lightning as L

trainer = L.Trainer(accelerator="cpu", strategy="ddp", devices=2, max_epochs=1, default_root_dir=sys.argv[1],
                    logger=L.pytorch.loggers.CSVLogger(sys.argv[1]), enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False)
module = build(UNITS, seed=0)
trainer.fit(module)
assert module.history.shape == (4, 4, 4), module.history.shape  # every rank holds the merged history
assert module.retired_at.tolist() == [-1, -1, -1, 2], (trainer.global_rank, module.retired_at)  # agreed on every rank
"""


@pytest.mark.slow
def test_units_sharded_over_two_processes_and_merged(tmp_path):
    script = tmp_path / "evolve_ddp.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "ddp")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "ddp" / "lightning_logs" / "version_0" / "evolution"
    merged = read_scores(folder / "scores.csv")
    assert [r["unit"] for r in merged[:4]] == ["4_0", "0_1", "4_2", "1_3"]
    assert len(merged) == 4 * 3 + 3  # the dead unit's rows end at its retirement (generation 2)
    summary = {row["unit"]: row for row in read_summary(folder / "summary.csv")}
    assert [summary[u]["status"] for u in ("4_0", "0_1", "4_2", "1_3")] == ["active"] * 3 + ["retired"]
    assert summary["1_3"]["retired_generation"] == "2"
    assert sorted(p.name for p in (folder / "best").iterdir()) == ["0_1.png", "1_3.png", "4_0.png", "4_2.png"]
    assert torch.load(folder / "prototypes.pt", weights_only=True)["codes"].shape == (4, 192)
    # rank 0 evolved units 0-1 with seed 0, rank 1 units 2-3 with seed 1: same numbers as single-process runs
    namespace: dict = {}
    exec(_BUILD, namespace)
    for units, seed, labels in ((namespace["UNITS"][:2], 0, ["4_0", "0_1"]), (namespace["UNITS"][2:], 1, ["4_2", "1_3"])):
        single = namespace["build"](units, seed)
        L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path).fit(single)
        for j, label in enumerate(labels):
            ours = torch.tensor([[r["mean"], r["max"], r["best_so_far"], r["sigma"]] for r in merged if r["unit"] == label])
            torch.testing.assert_close(ours, single.history[: len(ours), j].double(), rtol=0, atol=0, check_dtype=False)
        assert single.retired_at.tolist() == ([-1, -1] if seed == 0 else [-1, 2])
