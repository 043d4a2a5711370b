"""PyCMA wrapper: maximisation, seeding without global side effects, no files, diagonal mode, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroalign.core.errors import ConfigError
from lightning_modules.evolution import PyCMA
from test_cholesky_cmaes import one_thread, run_generations  # noqa: F401 (autouse fixture)


def _toward(target: float):
    return lambda c: -((c - target) ** 2).sum(-1)


def test_maximises_and_writes_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    es = PyCMA(10, seed=0)
    assert es.population_size == 4 + 9  # 4 + floor(3 log2 10), like CholeskyCMAES
    assert es.sigma.item() == 2.0 and torch.all(es.mean == 0)
    codes = es.ask()
    assert codes.shape == (13, 10) and codes.dtype == torch.float32
    es.tell(codes, codes[:, 0])  # reward the first coordinate
    assert es.mean[0] > 0
    assert es.best_score == codes[:, 0].max()
    run_generations(es, 60, _toward(1.5))
    torch.testing.assert_close(es.mean, torch.full((10,), 1.5), atol=0.05, rtol=0)
    assert list(tmp_path.iterdir()) == []  # no outcmaes/ folder


def test_seeded_and_isolated_from_numpy_global_rng():
    np.random.seed(5)
    expected_global = np.random.rand(3)
    np.random.seed(5)
    a, b = PyCMA(6, seed=3), PyCMA(6, seed=3)
    first = run_generations(a, 5, _toward(1.0))
    assert np.array_equal(np.random.rand(3), expected_global)  # pycma did not touch the global RNG
    np.random.seed(99)  # nor does the global RNG drive pycma
    second = run_generations(b, 5, _toward(1.0))
    for x, y in zip(first, second):
        assert torch.equal(x, y)
    c = PyCMA(6, seed=4)
    assert not torch.equal(c.ask(), first[0])


def test_same_samples_as_plain_pycma_with_seed_option():
    import cma

    fn = _toward(0.3)
    ours = PyCMA(7, seed=21, population_size=10)
    ref = cma.CMAEvolutionStrategy(np.zeros(7), 2.0, {"seed": 21, "popsize": 10, "verbose": -9, "verb_log": 0})
    for _ in range(4):
        codes, ref_codes = ours.ask(), np.asarray(ref.ask())
        np.testing.assert_allclose(codes.numpy(), ref_codes, rtol=1e-6, atol=1e-6)
        ours.tell(codes, fn(codes))
        ref.tell(list(ref_codes), (-fn(torch.from_numpy(ref_codes))).tolist())


def test_diagonal_option_is_separable_cma():
    full, diag = PyCMA(8, seed=0), PyCMA(8, seed=0, diagonal=True)
    assert full._es[0].opts["CMA_diagonal"] is False and diag._es[0].opts["CMA_diagonal"] is True
    assert full._es[0].sm.C.shape == (8, 8) and not hasattr(diag._es[0].sm, "C")  # no full covariance
    run_generations(diag, 60, _toward(-1.0))
    torch.testing.assert_close(diag.mean, torch.full((8,), -1.0), atol=0.1, rtol=0)


def test_state_dict_round_trip_reproduces_trajectory(tmp_path):
    fn = _toward(0.7)
    full = PyCMA(9, seed=11)
    expected = run_generations(full, 10, fn)

    first = PyCMA(9, seed=11)
    run_generations(first, 4, fn)
    pending = first.ask()  # interrupted between ask and tell
    torch.save(first.state_dict(), tmp_path / "es.pt")
    state = torch.load(tmp_path / "es.pt", weights_only=True)
    np.random.seed(0)  # the global RNG in between does not matter

    resumed = PyCMA(9, seed=1)
    resumed.load_state_dict(state)
    assert resumed.generation == 4
    resumed.tell(pending, fn(pending))
    rest = run_generations(resumed, 5, fn)
    for got, want in zip([pending] + rest, expected[4:]):
        assert torch.equal(got, want)
    with pytest.raises(ConfigError, match="class"):
        from lightning_modules.evolution import CholeskyCMAES

        CholeskyCMAES(9, seed=0).load_state_dict(state)


def test_units_are_separate_strategies():
    targets = torch.tensor([[-1.0] * 5, [2.0] * 5])
    es = PyCMA(5, num_units=2, seed=0, population_size=8)
    codes = es.ask()
    assert codes.shape == (2, 8, 5)
    run_generations(es, 80, lambda c: -((c - targets[:, None]) ** 2).sum(-1))
    assert es.sigma.shape == (2,) and es.best_score.shape == (2,)
    torch.testing.assert_close(es.mean, targets, atol=0.05, rtol=0)
    with pytest.raises(ValueError, match="tell"):
        es.tell(es.ask()[0], torch.zeros(8))


def test_bad_arguments():
    with pytest.raises(ConfigError, match="init_sigma"):
        PyCMA(4, init_sigma=-1.0)
    with pytest.raises(ConfigError, match="num_units"):
        PyCMA(4, num_units=0)
