"""DDP-safe scoring: 2 CPU processes (gloo), a 2-s process-group timeout, a first scoring pass of 4.5 s.

The timeout is shortened once the processes have met (their start-up on a loaded CPU takes longer).
Rank zero scores while rank one waits outside any collective; training goes on afterwards (the next
gradient all-reduce would time out if rank one had waited in it) and both ranks log the same scores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

_SCRIPT = """
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
                    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=sys.argv[1])
trainer.fit(System(), loader(), loader())
logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("brainscore/")}
history = {str(k): v for k, v in callback.history.items()}
out = f"{sys.argv[1]}/rank{trainer.global_rank}.json"
open(out, "w").write(json.dumps({"logged": logged, "history": history, "steps": trainer.global_step}))
"""


def test_scoring_longer_than_the_process_group_timeout_under_ddp(tmp_path):
    script = tmp_path / "score_ddp.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=120, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["steps"] == ranks[1]["steps"] == 4  # both epochs trained after the long scoring passes
    assert ranks[0]["logged"] == ranks[1]["logged"] and "brainscore/IT" in ranks[0]["logged"], ranks
    assert "brainscore/IT/slow.IT" in ranks[0]["logged"]
    assert ranks[0]["history"] == ranks[1]["history"] and set(ranks[0]["history"]) == {"0", "1"}
