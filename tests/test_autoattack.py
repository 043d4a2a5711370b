"""AutoAttack (torchattacks, standard version) in the robust evaluation of ``neuroalign test``, on sklearn's digits.

One test: the standard AutoAttack (Square: 5000 queries) is the slow part.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from digits_data import digits, mlp
from lightning_modules.robust.fgsm import fgsm_rs_step
from lightning_modules.robust.module import RobustFinetuneModule

pytest.importorskip("torchattacks")

EPS = 16 / 255


@pytest.fixture(scope="module")
def trained():
    """A small MLP trained with FGSM-RS at eps 16/255 for 150 steps (some robustness, far from all)."""
    x, y = digits()
    net = mlp(width=64, seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        idx = torch.randint(0, 1400, (64,), generator=g)
        x_adv = fgsm_rs_step(net, x[idx], y[idx], EPS, 1.25 * EPS).x_adv
        opt.zero_grad()
        F.cross_entropy(net(x_adv), y[idx]).backward()
        opt.step()
    return net.eval(), x[1400:], y[1400:]


@pytest.mark.slow
def test_neuroalign_test_reports_autoattack_on_a_seeded_subset(trained, capsys):
    net, x, y = trained
    module = RobustFinetuneModule(
        net, eps=EPS, test_pgd_steps=10, test_pgd_step_size=EPS / 4, test_pgd_restarts=1, test_robust_samples=16,
        autoattack=True, autoattack_n_examples=32, autoattack_seed=1,
    )
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (results,) = trainer.test(module, DataLoader(TensorDataset(x, y), batch_size=64), verbose=False)
    report = module.autoattack_report
    assert report is not None and report["n_examples"] == 32
    for key in ("clean_acc", "pgd_acc", "autoattack_acc", "worst_case_acc"):
        assert results[f"test/aa_{key}"] == pytest.approx(report[key])
    assert report["eps_255"] == pytest.approx(16.0)
    assert report["clean_acc"] > 0.6 and report["pgd_acc"] > 0.1  # a non-trivial case
    assert report["autoattack_acc"] <= report["pgd_acc"]  # AutoAttack is at least as strong as PGD here
    assert report["worst_case_acc"] <= min(report["clean_acc"], report["pgd_acc"], report["autoattack_acc"])
    assert "eps 16/255" in capsys.readouterr().out
