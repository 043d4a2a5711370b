"""AutoAttack (torchattacks, standard version) in the robust evaluation of ``neuroalign test``, on sklearn's digits.

One test: the standard AutoAttack (Square: 5000 queries on the images the gradient attacks left) is the
slow part, so the subset is small.
"""

from __future__ import annotations

import sys

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from digits_data import digits, mlp
from lightning_modules.robust.autoattack import autoattack
from lightning_modules.robust.fgsm import fgsm_rs_step
from lightning_modules.robust.module import RobustFinetuneModule
from neuroalign.core.errors import ConfigError

pytest.importorskip("torchattacks")

EPS = 16 / 255


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny ops (Square's 5000 queries, a 64-wide MLP): on a busy CPU extra threads make them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def test_neuroalign_test_reports_autoattack_on_a_seeded_subset(trained, capsys):
    net, x, y = trained
    module = RobustFinetuneModule(
        net, eps=EPS, test_pgd_steps=10, test_pgd_step_size=EPS / 4, test_pgd_restarts=1, test_robust_samples=16,
        autoattack=True, autoattack_n_examples=24, autoattack_seed=1,
    )
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (results,) = trainer.test(module, DataLoader(TensorDataset(x, y), batch_size=128), verbose=False)
    report = module.autoattack_report
    assert report is not None and report["n_examples"] == 24
    for key in ("clean_acc", "pgd_acc", "autoattack_acc", "worst_case_acc"):
        assert results[f"test/aa_{key}"] == pytest.approx(report[key])
    assert report["eps_255"] == pytest.approx(16.0)
    assert report["clean_acc"] > 0.6 and 0.1 < report["pgd_acc"] < report["clean_acc"]  # a non-trivial case: PGD bites
    assert report["autoattack_acc"] <= report["pgd_acc"]  # AutoAttack is at least as strong as PGD here
    assert report["worst_case_acc"] <= min(report["clean_acc"], report["pgd_acc"], report["autoattack_acc"])
    assert "eps 16/255" in capsys.readouterr().out


def test_without_torchattacks_the_error_names_the_package_and_the_key(trained, monkeypatch):
    net, x, y = trained
    monkeypatch.setitem(sys.modules, "torchattacks", None)  # import torchattacks raises ImportError
    with pytest.raises(ConfigError, match=r"torchattacks==3\.3\.0.*model\.init_args\.autoattack"):
        autoattack(net, x[:4], y[:4], EPS, 10)
