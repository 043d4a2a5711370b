"""DDP on 2 CPU processes (gloo), both scenarios in one launch (each launch re-imports Lightning in every
process, the better part of its cost):

* evolution -- units are sharded over the ranks, the outputs merged on rank 0, and every rank retires the
  same dead unit at the same generation;
* Brain-Score -- a first scoring pass of 4.5 s under a 2-s process-group timeout (shortened once the
  processes have met: their start-up on a loaded CPU takes longer). Rank zero scores while rank one waits
  outside any collective; training goes on afterwards (the next gradient all-reduce would time out if
  rank one had waited in it) and both ranks log the same scores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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

_EVOLUTION = """
import json, sys
import lightning as L

trainer = L.Trainer(accelerator="cpu", strategy="ddp", devices=2, max_epochs=1, default_root_dir=f"{sys.argv[1]}/ddp",
                    logger=L.pytorch.loggers.CSVLogger(f"{sys.argv[1]}/ddp"), enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False)
module = build(UNITS, seed=0)
trainer.fit(module)
with open(f"{sys.argv[1]}/evolution_rank{trainer.global_rank}.json", "w") as handle:
    json.dump({"history_shape": list(module.history.shape), "retired_at": module.retired_at.tolist()}, handle)
"""

_SCORING = """
import json, sys, time
from datetime import timedelta

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from callbacks import BrainScoreCallback
from callbacks.brainscore.benchmarks.base import Benchmark
from callbacks.brainscore.types import RegionScore


class SlowBenchmark(Benchmark):
    identifier, region, kind = "slow.IT", "IT", "neural"
    calls = 0

    def score_model(self, model, region_layer_map, behavioral_readout_layer, context):
        self.calls += 1
        if self.calls == 1:
            time.sleep(4.5)  # over twice the process-group timeout, then an epoch of training
        value = float(torch.sigmoid(model[0].weight.sum()))  # depends on the (trained) weights
        return RegionScore(region="IT", ceiled=value, raw=value / 2, ceiling=0.8, benchmark=self.identifier)


class System(L.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(4, 3))

    def setup(self, stage):
        torch.distributed.distributed_c10d._set_pg_timeout(timedelta(seconds=2))

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val/loss", nn.functional.cross_entropy(self.model(x), y), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader():
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)), batch_size=2)


callback = BrainScoreCallback(benchmarks=[SlowBenchmark()], region_layer_map={"IT": "0"}, fail_on_error=True)
strategy = DDPStrategy(process_group_backend="gloo")
trainer = L.Trainer(accelerator="cpu", devices=2, strategy=strategy, max_epochs=2, logger=False, callbacks=[callback], enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=f"{sys.argv[1]}/bsv")
trainer.fit(System(), loader(), loader())
logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("brainscore/")}
history = {str(k): v for k, v in callback.history.items()}
out = f"{sys.argv[1]}/bsv_rank{trainer.global_rank}.json"
open(out, "w").write(json.dumps({"logged": logged, "history": history, "steps": trainer.global_step}))
"""


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Run both scenarios in one 2-process launch; the folder of their outputs."""
    root = tmp_path_factory.mktemp("ddp")
    script = root / "ddp_scenarios.py"
    script.write_text(textwrap.dedent(_BUILD) + textwrap.dedent(_EVOLUTION) + textwrap.dedent(_SCORING))
    repo = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(script), str(root)], env=env, capture_output=True, text=True, timeout=300, cwd=repo)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.mark.slow
def test_units_sharded_over_two_processes_and_merged(launched, tmp_path):
    for rank in (0, 1):  # every rank holds the merged history and agreed on the retirement
        state = json.loads((launched / f"evolution_rank{rank}.json").read_text())
        assert state == {"history_shape": [4, 4, 4], "retired_at": [-1, -1, -1, 2]}, (rank, state)
    folder = launched / "ddp" / "lightning_logs" / "version_0" / "evolution"
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


def test_scoring_longer_than_the_process_group_timeout_under_ddp(launched):
    ranks = [json.loads((launched / f"bsv_rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["steps"] == ranks[1]["steps"] == 4  # both epochs trained after the long scoring passes
    assert ranks[0]["logged"] == ranks[1]["logged"] and "brainscore/IT" in ranks[0]["logged"], ranks
    assert "brainscore/IT/slow.IT" in ranks[0]["logged"]
    assert ranks[0]["history"] == ranks[1]["history"] and set(ranks[0]["history"]) == {"0", "1"}
