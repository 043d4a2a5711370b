"""Split-half internal-consistency ceiling (brainscore-vision ``internal_consistency``) and ceiled scores.

For each of 10 splits of the *repetitions* in halves (sklearn ``ShuffleSplit(train_size=0.5,
random_state=1)`` over the repetition indices, as brainscore-vision's ``CrossValidationSingle``),
average each half over its repetitions, correlate the halves per neuroid over stimuli (Pearson),
apply the Spearman-Brown correction ``2r / (1 + r)``, take the median over neuroids; the ceiling is
the mean over splits. Missing trials (NaN) are left out of the half averages, and a neuroid's
correlation uses the stimuli defined in both halves (brainscore-vision would give that neuroid NaN
and skip it in the median; both agree when no trial is missing).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import ShuffleSplit

from neuroalign.core.errors import ConfigError

from callbacks.brainscore.metrics.correlation import nanmedian, pearson_per_column
from callbacks.brainscore.types import CEILING_FORMULAS, check_ceiling_formula

__all__ = ["internal_consistency", "spearman_brown", "ceil_score"]


def spearman_brown(r: torch.Tensor, n: float = 2.0) -> torch.Tensor:
    """Spearman-Brown prophecy: reliability of ``n`` times as many trials."""
    return n * r / (1 + (n - 1) * r)


def internal_consistency(
    responses: torch.Tensor | np.ndarray,
    n_splits: int = 10,
    random_state: int = 1,
) -> dict[str, torch.Tensor]:
    """Split-half ceiling of ``(repetitions, stimuli, neuroids)`` responses (NaN = missing trial).

    Returns:
        dict with ``ceiling`` (scalar: mean over splits of the median over neuroids),
        ``per_split`` (S,) and ``per_neuroid`` ((S, neuroids) corrected consistencies, NaN where undefined).

    Raises:
        ConfigError: fewer than 2 repetitions (no ceiling can be estimated).
    """
    R = torch.as_tensor(responses, dtype=torch.float64)
    if R.dim() != 3:
        raise ConfigError(f"responses must be (repetitions, stimuli, neuroids), got shape {tuple(R.shape)}")
    n_rep = R.shape[0]
    if n_rep < 2:
        raise ConfigError(
            f"responses have {n_rep} repetition(s): the split-half ceiling needs at least 2 (responses.npy first axis)"
        )
    splits = ShuffleSplit(n_splits=n_splits, train_size=0.5, random_state=random_state).split(np.zeros(n_rep))
    halves = []
    for a, b in splits:
        halves.append((R[torch.as_tensor(a)].nanmean(0), R[torch.as_tensor(b)].nanmean(0)))
    h1 = torch.stack([h[0] for h in halves])
    h2 = torch.stack([h[1] for h in halves])
    mask = torch.isfinite(h1) & torch.isfinite(h2)
    r = spearman_brown(pearson_per_column(h1, h2, mask))
    per_split = nanmedian(r, dim=-1)
    return {"ceiling": per_split.mean(), "per_split": per_split, "per_neuroid": r}


def ceil_score(raw: float, ceiling: float, formula: str = "r2_over_ceiling") -> float:
    """Ceil a raw neural score with one of :data:`~callbacks.brainscore.types.CEILING_FORMULAS`.

    Args:
        raw: the raw score r (mean over splits of the median Pearson r).
        ceiling: the split-half ceiling.
        formula: ``r2_over_ceiling`` -- r^2 / ceiling (brainscore-vision 2.4.2, default) -- or
            ``squared_r_over_ceiling`` -- (r / ceiling)^2 (earlier releases, 2022 leaderboard).
    """
    if ceiling <= 0 or not np.isfinite(ceiling):
        raise ConfigError(f"ceiling {ceiling} is not positive: responses are not reliable enough to ceil a score")
    return CEILING_FORMULAS[check_ceiling_formula(formula)](raw, ceiling)
