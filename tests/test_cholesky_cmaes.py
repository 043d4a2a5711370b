"""CholeskyCMAES: the constants of docs/recipes.md section 3, ask/tell semantics, convergence, rank-1 update, batching, resume."""

from __future__ import annotations

import math

import pytest
import torch

from neuroalign.core.errors import ConfigError
from lightning_modules.evolution import CholeskyCMAES, PixelGenerator, PyCMA


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matrix products (also used by test_pycma): one thread (a second, descheduled OpenMP thread costs ~20 ms a call)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _evals_to_target(es, target: torch.Tensor, tol: float = 1e-4, budget: int = 40000) -> int:
    """Evaluations until the best code of a generation is within ``tol`` (squared) of ``target``."""
    evals = 0
    while evals < budget:
        codes = es.ask()
        loss = ((codes - target) ** 2).sum(-1)
        es.tell(codes, -loss)
        evals += codes.shape[0]
        if loss.min() < tol:
            return evals
    raise AssertionError(f"{type(es).__name__} did not reach {tol} in {budget} evaluations")


def run_generations(es, generations: int, fn) -> list[torch.Tensor]:
    asked = []
    for _ in range(generations):
        codes = es.ask()
        asked.append(codes.clone())
        es.tell(codes, fn(codes))
    return asked


def test_recipes_constants_at_4096():
    n = 4096
    es = CholeskyCMAES(n, seed=0)
    assert es.population_size == 40 == 4 + math.floor(3 * math.log2(n))
    assert es.mu == 20
    w = es.weights.double()
    assert w.shape == (20,) and torch.isclose(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert torch.all(w[:-1] > w[1:])  # decreasing log weights
    assert w[0] / w[-1] == pytest.approx(math.log(20.5) / math.log(20.5 / 20), rel=1e-5)
    mueff = 1 / (w**2).sum().item()
    assert es.mueff == pytest.approx(mueff, rel=1e-5) and 10 < es.mueff < 20
    assert es.cc == pytest.approx(4 / (n + 4))
    assert es.cs == pytest.approx(math.sqrt(mueff) / (math.sqrt(mueff) + math.sqrt(n)), rel=1e-6)
    assert es.c1 == pytest.approx(1.1912701410022985e-07, rel=1e-6)  # 2 / (N + sqrt 2)^2
    assert es.damps == pytest.approx(1 + es.cs)  # the max(0, ...) term vanishes at N = 4096
    assert es.sigma.item() == 3.0 and es.a_update_freq == 10
    assert es._a.dtype == torch.float32 and es._a.shape == (1, n, n)


def test_generation_zero_is_the_single_init_code_then_lambda_samples():
    es = CholeskyCMAES(30, seed=1)
    first = es.ask()
    assert first.shape == (1, 30) and torch.all(first == 0)
    es.tell(first, torch.tensor([1.5]))
    assert es.generation == 1 and es.best_score.item() == 1.5
    assert torch.all(es.mean == 0) and es.sigma.item() == 3.0  # no update from the lone code
    codes = es.ask()
    assert codes.shape == (es.population_size, 30) and codes.dtype == torch.float32
    assert 2.0 < codes.std().item() < 4.0  # N(0, sigma0^2 I)

    start = torch.linspace(-1, 1, 30)
    es = CholeskyCMAES(30, init_code=start, seed=1)
    assert torch.equal(es.ask()[0], start)


def test_higher_scores_are_better_and_nan_ranks_last():
    es = CholeskyCMAES(10, population_size=8, seed=0)
    es.tell(es.ask(), torch.zeros(1))
    codes = es.ask()
    scores = codes[:, 0].clone()  # reward the first coordinate
    scores[scores.argmax()] = float("nan")  # the best one is "broken"
    es.tell(codes, scores)
    assert es.mean[0] > 0
    assert torch.isfinite(es.best_score)


def test_sphere_converges_like_pycma():
    torch.manual_seed(0)
    for dim in (20, 50):
        target = torch.randn(dim)
        ours = [_evals_to_target(CholeskyCMAES(dim, seed=s), target) for s in range(2)]
        ref = [_evals_to_target(PyCMA(dim, init_sigma=3.0, seed=s), target) for s in range(2)]
        ratio = sum(ours) / sum(ref)
        assert 0.5 <= ratio <= 2.0, (dim, ours, ref)


def test_linear_filter_on_pixels_reaches_90_percent_of_optimum():
    torch.manual_seed(3)
    gen = PixelGenerator(image_size=8)
    weight = torch.randn(3, 8, 8)
    optimum = weight.clamp_min(0).sum()  # image = 1 where the filter is positive, 0 elsewhere
    es = CholeskyCMAES(gen.code_dim, seed=0)
    run_generations(es, 120, lambda c: (gen(c) * weight).sum((1, 2, 3)))
    assert es.best_score >= 0.9 * optimum
    best_image = gen(es.best_code[None])[0]
    assert (best_image * weight).sum() == pytest.approx(es.best_score.item(), rel=1e-5)


def test_rank_one_update_every_a_update_freq_generations():
    dim = 5
    es = CholeskyCMAES(dim, population_size=10, a_update_freq=4, seed=0)
    eye = torch.eye(dim)
    fn = lambda c: -((c - 2.0) ** 2).sum(-1)  # noqa: E731
    run_generations(es, 4, fn)  # generations 0..3: no update yet
    assert torch.equal(es._a[0], eye)
    a_old = es._a[0].clone().double()
    codes = es.ask()
    es.tell(codes, fn(codes))  # generation 4 triggers the update
    a, a_inv, pc = es._a[0].double(), es._ainv[0].double(), es._pc[0].double()
    assert not torch.equal(es._a[0], eye)
    c_new = (1 - es.c1) * a_old.T @ a_old + es.c1 * torch.outer(pc, pc)
    torch.testing.assert_close(a.T @ a, c_new, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a @ a_inv, torch.eye(dim, dtype=torch.float64), rtol=1e-5, atol=1e-5)
    a_after = es._a.clone()
    run_generations(es, 3, fn)  # generations 5..7: unchanged
    assert torch.equal(es._a, a_after)
    run_generations(es, 1, fn)  # generation 8: second update
    assert not torch.equal(es._a, a_after)


def test_state_dict_round_trip_reproduces_trajectory(tmp_path):
    fn = lambda c: -((c - 1.0) ** 2).sum(-1)  # noqa: E731
    full = CholeskyCMAES(12, a_update_freq=3, seed=7)
    expected = run_generations(full, 14, fn)

    first = CholeskyCMAES(12, a_update_freq=3, seed=7)
    run_generations(first, 6, fn)
    pending = first.ask()  # interrupted between ask and tell
    torch.save(first.state_dict(), tmp_path / "es.pt")
    state = torch.load(tmp_path / "es.pt", weights_only=True)  # fits a Lightning checkpoint

    resumed = CholeskyCMAES(12, a_update_freq=3, seed=123)  # seed comes from the state
    resumed.load_state_dict(state)
    assert resumed.generation == 6
    resumed.tell(pending, fn(pending))
    rest = run_generations(resumed, 7, fn)
    for got, want in zip([pending] + rest, expected[6:]):
        assert torch.equal(got, want)
    assert torch.equal(resumed.mean, full.mean) and torch.equal(resumed.sigma, full.sigma)

    with pytest.raises(ConfigError, match="dim"):
        CholeskyCMAES(13, seed=0).load_state_dict(state)


def _bytes(state, tmp_path) -> int:
    torch.save(state, tmp_path / "state.pt")
    return (tmp_path / "state.pt").stat().st_size


def test_state_dict_stores_the_rank_one_updates_not_the_matrices(tmp_path):
    dim, k = 512, 2
    fn = lambda c: -((c - 1.0) ** 2).sum(-1)  # noqa: E731
    es = CholeskyCMAES(dim, num_units=k, population_size=8, a_update_freq=2, seed=3)
    run_generations(es, 9, fn)  # 4 rank-1 updates
    es.ask()  # a pending ask: its draws are made again on load, not stored
    state = es.state_dict()
    assert "a" not in state and "ainv" not in state and "z" not in state and "asked" not in state
    assert state["a_updates"]["v"].shape == (4, k, dim)
    dense = 2 * k * dim * dim * 4
    assert _bytes(state, tmp_path) < dense / 20  # 4.2 MB of matrices -> ~0.1 MB
    back = CholeskyCMAES(dim, num_units=k, population_size=8, a_update_freq=2, seed=0)
    back.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert torch.equal(back._a, es._a) and torch.equal(back._ainv, es._ainv)  # replayed bit for bit
    assert torch.equal(back._asked, es._asked) and torch.equal(back._z, es._z)
    assert torch.equal(back._rng.get_state(), es._rng.get_state())


def test_long_runs_fall_back_to_the_matrices_and_resume_exactly(tmp_path):
    fn = lambda c: -((c - 1.0) ** 2).sum(-1)  # noqa: E731
    full = CholeskyCMAES(8, a_update_freq=1, seed=4)  # dim // 8 = 1 update kept in the log
    expected = run_generations(full, 9, fn)
    first = CholeskyCMAES(8, a_update_freq=1, seed=4)
    run_generations(first, 5, fn)
    state = first.state_dict()
    assert "a_updates" not in state and state["a"].shape == (1, 8, 8)
    resumed = CholeskyCMAES(8, a_update_freq=1, seed=0)
    resumed.load_state_dict(state)
    for got, want in zip(run_generations(resumed, 4, fn), expected[5:]):
        assert torch.equal(got, want)


def test_batched_units_are_independent_states():
    k, dim = 3, 16
    targets = torch.stack([torch.full((dim,), v) for v in (-2.0, 0.5, 3.0)])
    es = CholeskyCMAES(dim, num_units=k, seed=0)
    first = es.ask()
    assert first.shape == (k, 1, dim)
    es.tell(first, torch.zeros(k, 1))
    codes = es.ask()
    assert codes.shape == (k, es.population_size, dim)
    assert es.sigma.shape == (k,) and es.mean.shape == (k, dim) and es.best_code.shape == (k, dim)
    es.tell(codes, -((codes - targets[:, None]) ** 2).sum(-1))
    run_generations(es, 150, lambda c: -((c - targets[:, None]) ** 2).sum(-1))
    torch.testing.assert_close(es.mean, targets, atol=0.05, rtol=0)
    assert len(set(es.sigma.tolist())) == k  # each unit adapts its own step size
    with pytest.raises(ValueError, match="tell"):
        es.tell(codes[:2], torch.zeros(2, codes.shape[1]))


def test_tell_with_foreign_codes_recovers_the_normal_draws():
    a = CholeskyCMAES(8, population_size=6, seed=2)
    b = CholeskyCMAES(8, population_size=6, seed=2)
    fn = lambda c: -(c**2).sum(-1)  # noqa: E731
    for es in (a, b):
        run_generations(es, 3, fn)
    codes = a.ask()
    a.tell(codes, fn(codes))  # uses the stored draws
    b.tell(codes, fn(codes))  # b never asked them: draws recovered through A^-1
    torch.testing.assert_close(a.mean, b.mean)
    torch.testing.assert_close(a.sigma, b.sigma)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="init_sigma"):
        CholeskyCMAES(4, init_sigma=0.0)
    with pytest.raises(ConfigError, match="population_size"):
        CholeskyCMAES(4, population_size=1)
    with pytest.raises(ConfigError, match="a_update_freq"):
        CholeskyCMAES(4, a_update_freq=0)
