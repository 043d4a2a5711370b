"""WarmupHalvingLR: the docs/recipes.md section 1 formula at epoch starts / middles / ends, resume mid-epoch, the plot."""

from __future__ import annotations

import csv

import pytest
import torch

from neuroalign.core.errors import ConfigError
from lightning_modules.robust.schedules import WarmupHalvingLR, plot_schedule

N = 10  # iterations per epoch


def recipe_lr(epoch: int, t: float) -> float:
    """docs/recipes.md section 1, written out independently of the implementation."""
    if epoch == 0:
        return 8e-5 + 1.2e-4 * t
    return 2e-4 * 2.0 ** -(epoch - 1) * (1 - t / 2)


def make(**kwargs) -> tuple[torch.optim.Optimizer, WarmupHalvingLR]:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))]}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.5}]
    opt = torch.optim.Adam(groups, lr=1.0, weight_decay=1e-4)
    return opt, WarmupHalvingLR(opt, **kwargs)


def run(opt, sched, steps: int) -> list[float]:
    """Learning rates used by the next ``steps`` optimiser steps."""
    seen = []
    for _ in range(steps):
        seen.append(opt.param_groups[0]["lr"])
        assert opt.param_groups[1]["lr"] == seen[-1]
        opt.step()
        sched.step()
    return seen


def test_values_match_recipe_at_epoch_starts_middles_and_ends():
    opt, sched = make(iterations_per_epoch=N)
    lrs = run(opt, sched, 6 * N)
    for epoch in range(6):
        for i in (0, N // 2, N - 1):
            assert lrs[epoch * N + i] == pytest.approx(recipe_lr(epoch, i / N), abs=1e-12, rel=0)
    # the named milestones: 8e-5 start, 2e-4 peak, then halving each epoch
    assert lrs[0] == pytest.approx(8e-5, abs=1e-12)
    assert [lrs[k * N] for k in range(1, 6)] == pytest.approx([2e-4, 1e-4, 5e-5, 2.5e-5, 1.25e-5], abs=1e-12)


def test_resume_mid_epoch_continues_on_the_same_curve():
    opt, sched = make(iterations_per_epoch=N, warmup_start=1e-5, peak=3e-4)
    first = run(opt, sched, 15)  # stop in the middle of epoch 1
    opt_state, sched_state = opt.state_dict(), sched.state_dict()

    opt2, _ = make(iterations_per_epoch=999)  # a fresh run with other settings, then restored
    sched2 = WarmupHalvingLR(opt2)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    rest = run(opt2, sched2, 3 * N)

    expected = [
        (1e-5 + 2.9e-4 * (s % N) / N) if s < N else 3e-4 * 2.0 ** -(s // N - 1) * (1 - (s % N) / N / 2)
        for s in range(15 + 3 * N)
    ]
    assert first + rest == pytest.approx(expected, abs=1e-12, rel=0)
    assert sched2.iterations_per_epoch == N


def test_unset_iterations_per_epoch_starts_at_warmup_and_then_asks_for_it():
    opt, sched = make()
    assert opt.param_groups[0]["lr"] == 8e-5
    opt.step()
    with pytest.raises(ConfigError, match="iterations_per_epoch"):
        sched.step()


@pytest.mark.parametrize(("kwargs", "needle"), [({"iterations_per_epoch": 0}, "0"), ({"peak": -1.0}, "-1.0")])
def test_bad_arguments_are_config_errors(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        make(**kwargs)


def test_plot_schedule_writes_png_and_csv_with_the_formula(tmp_path):
    out = tmp_path / "fig" / "schedule.png"
    assert plot_schedule(iterations_per_epoch=N, epochs=3, output=str(out)) == f"wrote {out}\nwrote {out.with_suffix('.csv')}"
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"
    with open(out.with_suffix(".csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * N
    for row in rows:
        step = int(row["iteration"])
        assert float(row["lr"]) == pytest.approx(recipe_lr(step // N, (step % N) / N), abs=1e-12)


def test_plot_schedule_command_runs_through_the_cli_and_prints_every_file(tmp_path, capsys):
    from neuroalign.cli import main

    out = tmp_path / "s.png"
    assert main(["plot-schedule", "--iterations_per_epoch", "4", "--epochs", "2", "--output", str(out)]) == 0
    assert out.is_file() and out.with_suffix(".csv").is_file()
    assert capsys.readouterr().out.splitlines() == [f"wrote {out}", f"wrote {out.with_suffix('.csv')}"]
    assert main(["plot-schedule", "--iterations_per_epoch", "0", "--output", str(out)]) == 2


def test_unwritable_output_is_one_line_naming_path_and_option(tmp_path, capsys):
    from neuroalign.cli import main

    (tmp_path / "afile").write_text("a regular file, not a folder")
    out = tmp_path / "afile" / "out" / "s.png"
    assert main(["plot-schedule", "--iterations_per_epoch", "4", "--epochs", "2", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuroalign: error: cannot write ")
    assert str(tmp_path / "afile") in err[0] and "`--output`" in err[0]
