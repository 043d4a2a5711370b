"""brainscore-vision's ``neuron_to_neuron`` metric in torch, batched over splits.

brainscore-vision's ``SingleRegression`` maps each neuroid to the single feature with the highest
Pearson r on the train rows (``nanargmax``: constant features are skipped, ties go to the first
feature) and predicts it by that feature's raw values; the metric then correlates prediction and
response per neuroid on the test rows. Aggregation as the other regressions: median over neuroids
per split, mean over splits.

All feature-neuroid correlations of every split come from one ``p x q`` cross-product per split,
computed as that of all rows minus that of the left-out rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from callbacks.brainscore.metrics.correlation import pearson_per_column
from callbacks.brainscore.metrics.ridge import prepare_cv_inputs

__all__ = ["best_features", "neuron_to_neuron_cv_correlations"]


def best_features(X: torch.Tensor, Y: torch.Tensor, train: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``(S, q)`` index of the feature most correlated (Pearson r on the train rows) with each target.

    Args:
        X: ``(n, p)`` globally centred features.
        Y: ``(n, q)`` globally centred targets.
        train: ``(S, n_train)`` train row indices.
        out: ``(S, n_out)`` the complementary rows.
    """
    n_tr = train.shape[1]
    Xo, Yo = X[out], Y[out]
    mu, ymu = X[train].mean(1), Y[train].mean(1)
    cross = X.T @ Y - Xo.transpose(1, 2) @ Yo - n_tr * mu.unsqueeze(-1) * ymu.unsqueeze(1)  # (S, p, q)
    xx = (X * X).sum(0) - (Xo * Xo).sum(1) - n_tr * mu * mu  # centred sums of squares, (S, p)
    yy = (Y * Y).sum(0) - (Yo * Yo).sum(1) - n_tr * ymu * ymu
    tiny = torch.finfo(X.dtype).eps * 10
    xs = torch.where(xx > tiny * (X * X).sum(0).clamp_min(tiny), xx.clamp_min(0).sqrt(), torch.full_like(xx, float("nan")))
    r = cross / xs.unsqueeze(-1) / yy.clamp_min(0).sqrt().unsqueeze(1)
    return torch.nan_to_num(r, nan=-torch.inf).argmax(1)  # first maximum, NaN skipped (as nanargmax)


def neuron_to_neuron_cv_correlations(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    return_mapping: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """brainscore-vision's ``neuron_to_neuron`` metric before aggregation: Pearson r per split and neuroid.

    Args:
        X: ``(n_stimuli, n_features)`` model features.
        Y: ``(n_stimuli, n_neuroids)`` responses, rows matching ``X``.
        splits: ``(train_indices, test_indices)`` pairs (all with the same number of train rows).
        dtype: computation dtype.
        device: where to compute (default: ``X``'s device).
        return_mapping: also return the ``(S, q)`` chosen feature of every neuroid.

    Returns:
        ``(n_splits, n_neuroids)`` correlations on the held-out rows (and the mapping when asked).
    """
    X, Y, train, out, test, _ = prepare_cv_inputs(X, Y, splits, dtype, device)
    mapping = best_features(X, Y, train, out)  # (S, q)
    Xte = X[test]  # (S, n_test, p)
    pred = Xte.gather(2, mapping.unsqueeze(1).expand(-1, Xte.shape[1], -1))  # each neuroid's feature
    r = pearson_per_column(pred, Y[test])
    return (r, mapping) if return_mapping else r
