"""The perturbation strategies' steps equal their papers' formulas on a linear model (closed-form input gradient).

For logits ``z = W x + b`` and cross-entropy, ``d loss / d x = W^T (softmax(z) - onehot(y))`` per sample.
Inputs lie in [0.3, 0.7] and the radii are small, so the image box never clips the gradient.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.robust.fgsm import fgsm_rs_step
from lightning_modules.robust.module import RobustFinetuneModule
from lightning_modules.robust.strategies import FGSMRS, NFGSM, PGDK, GradAlign, PerturbResult, PerturbStrategy
from neuroalign.core.errors import ConfigError

C, SIDE, K = 2, 4, 5
EPS = 4 / 255


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.fc = nn.Linear(C * SIDE * SIDE, K)
        self.num_classes = K

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def analytic_grad(model: Linear, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = torch.softmax(model.fc(z.flatten(1)), dim=1) - F.one_hot(y, K).float()
    return (p @ model.fc.weight).view_as(z)


@pytest.fixture
def batch() -> tuple[Linear, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    x = 0.3 + 0.4 * torch.rand(6, C, SIDE, SIDE, generator=g)
    return Linear(), x, torch.randint(0, K, (6,), generator=g)


def test_fgsm_rs_is_wong_et_al(batch):
    model, x, y = batch
    alpha = 1.25 * EPS
    torch.manual_seed(3)
    result = FGSMRS()(model, x, y, EPS, alpha)
    torch.manual_seed(3)
    delta0 = torch.empty_like(x).uniform_(-EPS, EPS)
    expected = x + torch.clamp(delta0 + alpha * analytic_grad(model, x + delta0, y).sign(), -EPS, EPS)
    assert isinstance(result, PerturbResult) and result.extra_loss is None and result.nonfinite == 0
    torch.testing.assert_close(result.x_adv, expected)


def test_nfgsm_is_de_jorge_et_al_noise_2eps_step_eps_no_projection(batch):
    model, x, y = batch
    torch.manual_seed(4)
    result = NFGSM()(model, x, y, EPS, alpha=123.0)  # the module's alpha is not N-FGSM's step
    torch.manual_seed(4)
    eta = torch.empty_like(x).uniform_(-2 * EPS, 2 * EPS)
    expected = x + eta + EPS * analytic_grad(model, x + eta, y).sign()
    torch.testing.assert_close(result.x_adv, expected)
    assert (result.x_adv - x).abs().max() > 1.5 * EPS  # no projection to the eps ball
    assert (result.x_adv - x).abs().max() <= 3 * EPS + 1e-6


def test_nfgsm_options_and_errors(batch):
    model, x, y = batch
    torch.manual_seed(5)
    out = NFGSM(noise_multiplier=0.0, step="2/255")(model, x, y, EPS, EPS)
    torch.testing.assert_close(out.x_adv, x + 2 / 255 * analytic_grad(model, x, y).sign())
    with pytest.raises(ConfigError, match="noise multiplier"):
        NFGSM(noise_multiplier=-1.0)


def test_gradalign_adds_lambda_times_one_minus_cosine_and_backpropagates(batch):
    model, x, y = batch
    alpha = 1.25 * EPS
    torch.manual_seed(6)
    result = GradAlign(lambda_=0.7)(model, x, y, EPS, alpha)
    torch.manual_seed(6)
    delta0 = torch.empty_like(x).uniform_(-EPS, EPS)
    eta = torch.empty_like(x).uniform_(-EPS, EPS)
    expected_x = x + torch.clamp(delta0 + alpha * analytic_grad(model, x + delta0, y).sign(), -EPS, EPS)
    g1, g2 = analytic_grad(model, x, y).flatten(1), analytic_grad(model, x + eta, y).flatten(1)
    expected_reg = 0.7 * (1 - F.cosine_similarity(g1, g2, dim=1)).mean()
    torch.testing.assert_close(result.x_adv, expected_x)
    assert result.extra_loss is not None and result.extra_loss.item() > 0
    torch.testing.assert_close(result.extra_loss.detach(), expected_reg.detach(), rtol=1e-4, atol=1e-7)
    result.extra_loss.backward()  # double backprop reaches the weights
    assert model.fc.weight.grad is not None and model.fc.weight.grad.abs().sum() > 0


def test_pgdk_is_madry_et_al_with_step_2_5_eps_over_k(batch):
    model, x, y = batch
    torch.manual_seed(7)
    result = PGDK(steps=3)(model, x, y, EPS, alpha=123.0)
    torch.manual_seed(7)
    delta = torch.empty_like(x).uniform_(-EPS, EPS)
    for _ in range(3):
        delta = torch.clamp(delta + 2.5 * EPS / 3 * analytic_grad(model, x + delta, y).sign(), -EPS, EPS)
    torch.testing.assert_close(result.x_adv, x + delta)
    assert (result.x_adv - x).abs().max() <= EPS + 1e-6
    with pytest.raises(ConfigError, match="steps >= 1"):
        PGDK(steps=0)


def test_the_module_trains_with_any_strategy_and_adds_its_extra_loss(batch):
    model, x, y = batch

    class Constant(PerturbStrategy):
        """A user's strategy: no perturbation, a constant regulariser (no edit of the module needed)."""

        def __call__(self, model, x, y, eps, alpha, loss_fn=None, loss_scale=1.0):
            return PerturbResult(x, torch.tensor(5.0), 0)

    module = RobustFinetuneModule(model, perturb=Constant(), val_pgd_steps=0)
    extra: list[float] = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch_, batch_idx):
            with torch.no_grad():
                self.clean = F.cross_entropy(pl_module(batch_[0]), batch_[1]).item()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch_, batch_idx):
            extra.append(outputs["loss"].item() - self.clean)

    trainer = L.Trainer(
        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[Record()],
    )
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=6))
    assert extra == [pytest.approx(5.0, abs=1e-5)]  # the loss at x_adv (here x) plus the strategy's 5.0

    default = RobustFinetuneModule(Linear(), val_pgd_steps=0)
    assert isinstance(default.perturb_strategy, FGSMRS)
    torch.manual_seed(8)
    mine = default.perturb(x, y).x_adv
    torch.manual_seed(8)
    reference = fgsm_rs_step(default.model, x, y, default.eps, default.alpha)
    torch.testing.assert_close(mine, reference.x_adv)  # the seed-000 step, unchanged
    with pytest.raises(ConfigError, match="PerturbStrategy"):
        RobustFinetuneModule(Linear(), perturb="nfgsm")
