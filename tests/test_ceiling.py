"""Split-half internal consistency with Spearman-Brown, and the two ceiling formulas."""

from __future__ import annotations

import numpy as np
import pytest

from callbacks.brainscore.metrics.ceiling import ceil_score, internal_consistency, spearman_brown
from callbacks.brainscore.types import CEILING_FORMULAS, check_ceiling_formula
from neuroalign.core.errors import ConfigError


def _responses(noise, reps=6, n=80, q=10, seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n, q))
    return signal[None] + noise * rng.normal(size=(reps, n, q))


def test_ceiling_tracks_reliability_and_matches_brute_force():
    clean, noisy = internal_consistency(_responses(0.2)), internal_consistency(_responses(2.0))
    assert clean["ceiling"] > 0.95 > noisy["ceiling"] > 0
    # brute force for one split with the same sklearn halves
    from sklearn.model_selection import ShuffleSplit

    R = _responses(1.0)
    a, b = next(ShuffleSplit(n_splits=10, train_size=0.5, random_state=1).split(np.zeros(6)))
    h1, h2 = R[a].mean(0), R[b].mean(0)
    r = np.array([np.corrcoef(h1[:, j], h2[:, j])[0, 1] for j in range(10)])
    expected = np.median(2 * r / (1 + r))
    assert internal_consistency(R)["per_split"][0].item() == pytest.approx(expected, abs=1e-10)


def test_missing_trials_are_skipped_and_one_repetition_is_an_error():
    R = _responses(1.0)
    R[0, :5, 0] = np.nan
    assert np.isfinite(internal_consistency(R)["ceiling"].item())
    with pytest.raises(ConfigError, match="at least 2"):
        internal_consistency(R[:1])


def test_formulas():
    assert ceil_score(0.5, 0.8) == pytest.approx(0.25 / 0.8)
    assert ceil_score(0.5, 0.8, "squared_r_over_ceiling") == pytest.approx((0.5 / 0.8) ** 2)
    assert spearman_brown(np.float64(0.5)) == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match="ceiling formula"):
        ceil_score(0.5, 0.8, "bogus")


def test_one_formula_registry_serves_the_metric_and_the_checks():
    for name, formula in CEILING_FORMULAS.items():
        assert ceil_score(0.5, 0.8, name) == formula(0.5, 0.8) and check_ceiling_formula(name) == name
    with pytest.raises(ConfigError, match=r"'r' \(MyKey `ceiling_formula`\); valid: r2_over_ceiling, squared_r_over_ceiling"):
        check_ceiling_formula("r", "MyKey `ceiling_formula`")
