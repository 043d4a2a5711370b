"""FGSM-RS and PGD: analytic step, budgets, monotone robustness, targeted success, bad input."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.robust.budgets import as_fraction
from lightning_modules.robust.fgsm import fgsm_rs_step
from lightning_modules.robust.pgd import pgd
from neuroalign.core.errors import ConfigError

SHAPE = (3, 4, 4)
DIM = 3 * 4 * 4


def linear_model(num_classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(DIM, num_classes))


def images(n: int, low: float = 0.0, high: float = 1.0, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = low + (high - low) * torch.rand(n, *SHAPE, generator=g)
    if low == 0.0 and high == 1.0:  # include the box corners
        x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 1.0
    return x


def test_fgsm_equals_analytic_sign_gradient_step_on_linear_model():
    model = linear_model()
    weight, bias = model[1].weight.detach(), model[1].bias.detach()
    x = images(6, 0.1, 0.9)  # far from the box: no clamp is active
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    eps, alpha = 0.03, 0.0375

    torch.manual_seed(123)
    x_adv = fgsm_rs_step(model, x, y, eps, alpha).x_adv
    torch.manual_seed(123)
    delta0 = torch.empty_like(x).uniform_(-eps, eps)  # the same random start

    # d CE / d x = W^T (softmax(Wx + b) - onehot(y))
    probs = torch.softmax((x + delta0).flatten(1) @ weight.T + bias, dim=1)
    grad = ((probs - F.one_hot(y, 3).float()) @ weight).view_as(x)
    expected = torch.clamp(x + torch.clamp(delta0 + alpha * grad.sign(), -eps, eps), 0, 1)
    torch.testing.assert_close(x_adv, expected, rtol=0, atol=1e-7)
    assert all(p.grad is None for p in model.parameters()), "the attack must not touch parameter gradients"


@pytest.mark.parametrize(
    "attack",
    [
        lambda m, x, y: fgsm_rs_step(m, x, y, 8 / 255, 10 / 255).x_adv,
        lambda m, x, y: pgd(m, x, y, 8 / 255, 2 / 255, 5, "linf", restarts=2),
        lambda m, x, y: pgd(m, x, y, 8 / 255, 2 / 255, 5, "linf", targeted=True),
    ],
    ids=["fgsm_rs", "pgd_linf", "pgd_linf_targeted"],
)
def test_linf_examples_stay_in_eps_ball_and_box(attack):
    model = linear_model()
    x, y = images(16), torch.randint(0, 3, (16,))
    x_adv = attack(model, x, y)
    assert x_adv.shape == x.shape
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv != x).any()


@pytest.mark.parametrize("targeted", [False, True])
def test_l2_examples_stay_in_l2_ball_and_box(targeted):
    model = linear_model()
    x, y = images(16), torch.randint(0, 3, (16,))
    eps = 0.5
    x_adv = pgd(model, x, y, eps, 0.2, 10, "l2", targeted=targeted, restarts=2)
    assert (x_adv - x).flatten(1).norm(dim=1).max() <= eps + 1e-5
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv != x).any()


@functools.lru_cache(maxsize=1)
def _trained_binary_model_cached() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    direction = torch.randn(DIM)
    x = torch.rand(256, *SHAPE)
    y = ((x.flatten(1) - 0.5) @ direction > 0).long()
    model = nn.Sequential(nn.Flatten(), nn.Linear(DIM, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(80):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval(), x, y


def _trained_binary_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model, x, y = _trained_binary_model_cached()
    return copy.deepcopy(model), x, y


def test_pgd_accuracy_decreases_monotonically_with_eps():
    model, x, y = _trained_binary_model()
    accuracies = []
    for eps in (0.0, 0.01, 0.03, 0.1, 0.3):
        x_adv = pgd(model, x, y, eps, max(eps, 1e-4) / 4, 20, "linf") if eps else x
        with torch.no_grad():
            accuracies.append((model(x_adv).argmax(1) == y).float().mean().item())
    assert accuracies[0] > 0.9, accuracies  # the tiny model did learn the task
    assert all(a >= b for a, b in zip(accuracies, accuracies[1:])), accuracies
    assert accuracies[-1] < 0.2, accuracies


def test_targeted_l2_attack_raises_target_probability():
    model, x, _ = _trained_binary_model()
    x = x[:8]
    target = torch.ones(8, dtype=torch.long)
    with torch.no_grad():
        before = model(x).softmax(1)[:, 1]
    assert (before < 0.5).sum() >= 2  # some images start in the other class
    x_adv = pgd(model, x, target, eps=2.0, alpha=0.25, steps=20, norm="l2", targeted=True, random_start=False)
    with torch.no_grad():
        after = model(x_adv).softmax(1)[:, 1]
    assert (after >= before).all()
    assert (after[before < 0.99] > before[before < 0.99]).all()
    assert (after[before < 0.5] > 0.5).float().mean() > 0.5  # most wrong-class images are pushed over


def test_attacks_work_inside_inference_mode_and_keep_parameter_grads_empty():
    model, x, y = _trained_binary_model()
    with torch.inference_mode():
        x_adv = pgd(model, x[:16], y[:16], 0.05, 0.01, 3, "linf")
        x_fgsm = fgsm_rs_step(model, x[:16], y[:16], 0.05, 0.06).x_adv
    assert (x_adv != x[:16]).any() and (x_fgsm != x[:16]).any()
    assert all(p.grad is None for p in model.parameters())


def test_fgsm_counts_nonfinite_gradients_and_falls_back_to_random_start():
    model = linear_model()
    x, y = images(6, 0.1, 0.9), torch.randint(0, 3, (6,))
    weights = torch.tensor([float("nan"), 1, 1, 1, float("inf"), 1])

    def poisoned_loss(logits, target):
        return F.cross_entropy(logits, target, reduction="none") * weights

    torch.manual_seed(7)
    result = fgsm_rs_step(model, x, y, 0.03, 0.0375, loss_fn=poisoned_loss)
    torch.manual_seed(7)
    start = torch.clamp(x + torch.empty_like(x).uniform_(-0.03, 0.03), 0, 1)
    assert result.nonfinite == 2
    assert torch.isfinite(result.x_adv).all()
    torch.testing.assert_close(result.x_adv[[0, 4]], start[[0, 4]])
    assert not torch.allclose(result.x_adv[1], start[1])


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"eps": -0.1, "alpha": 0.01}, "-0.1"),
        ({"eps": 1.5, "alpha": 0.01}, "1.5"),
        ({"eps": 0.1, "alpha": 2.0}, "2.0"),
        ({"eps": 0.1, "alpha": 0.0}, "0.0"),
    ],
)
def test_bad_budget_is_a_one_line_error_naming_the_value(kwargs, needle):
    model, x, y = linear_model(), images(2), torch.tensor([0, 1])
    for call in (lambda: fgsm_rs_step(model, x, y, **kwargs).x_adv, lambda: pgd(model, x, y, steps=1, **kwargs)):
        with pytest.raises(ConfigError, match=needle) as info:
            call()
        assert "\n" not in str(info.value)


def test_l2_radius_may_exceed_one_but_not_be_negative():
    model, x, y = linear_model(), images(2), torch.tensor([0, 1])
    pgd(model, x, y, 300.0, 1.0, 1, "l2")
    with pytest.raises(ConfigError, match="-1"):
        pgd(model, x, y, -1.0, 1.0, 1, "l2")


def test_target_class_out_of_range_is_a_config_error():
    model, x = linear_model(num_classes=3), images(2)
    with pytest.raises(ConfigError, match="target class 7"):
        pgd(model, x, torch.tensor([1, 7]), 1.0, 0.1, 2, "l2", targeted=True)


def test_as_fraction_parses_config_strings():
    assert as_fraction("2/255", "eps") == 2 / 255
    assert as_fraction("2.5/255", "alpha") == 2.5 / 255
    assert as_fraction(0.25, "eps") == 0.25
    assert as_fraction("0.5", "eps") == 0.5
    with pytest.raises(ConfigError, match="two/255"):
        as_fraction("two/255", "model.init_args.eps")


def test_attacks_restore_each_parameters_requires_grad():
    model = nn.Sequential(nn.Flatten(), nn.Linear(DIM, 8), nn.ReLU(), nn.Linear(8, 3))
    model[1].weight.requires_grad_(False)  # a frozen parameter stays frozen
    before = [p.requires_grad for p in model.parameters()]
    x, y = images(4), torch.tensor([0, 1, 2, 0])
    fgsm_rs_step(model, x, y, 0.1, 0.1).x_adv
    pgd(model, x, y, 0.1, 0.05, 2, "linf", restarts=2)
    assert [p.requires_grad for p in model.parameters()] == before == [False, True, True, True]
