"""Ridge regression with the penalty chosen by exact leave-one-out error, batched over splits, in torch.

The same model as sklearn ``RidgeCV(alphas=grid)`` (efficient LOO, ``cv=None``, ``fit_intercept=True``,
squared-error criterion), with ``alpha_per_target=True`` by default: every neuroid gets the alpha of
the grid with the smallest mean squared LOO error on the train rows (ties: the first in the grid,
as sklearn). brainscore-vision's ``ridgecv_split`` metric (its ``ridge_cv_regression()``) uses
``RidgeCV(alphas=ALPHA_LIST)`` with one alpha shared by all neuroids (``alpha_per_target=False``:
the alpha with the smallest LOO error averaged over neuroids) on one fixed train/test split; pass
``alpha_per_target=False`` and :data:`BRAINSCORE_ALPHAS` for that model. Aggregation as the other
regressions: median over neuroids per split (mean over splits when there are several).

From one eigendecomposition per split (:func:`~.ridge.fold_spectra`: principal axes ``V``,
eigenvalues ``lam`` of the centred train features) the LOO residuals of every alpha follow without
refitting: with ``Q = X_c V`` (principal scores), ``g = 1 / (lam + alpha)``, the hat matrix is
``H = 11^T / n + Q diag(g) Q^T`` (unpenalised intercept), fitted values ``Q diag(g) Q^T Y_c`` and
LOO residuals ``(Y_c - H Y_c)_i / (1 - H_ii)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from callbacks.brainscore.metrics.correlation import pearson_per_column
from callbacks.brainscore.metrics.ridge import (
    FoldSpectra,
    fold_grams,
    fold_spectra,
    predict_folds,
    prepare_cv_inputs,
    spectral_coefficients,
)
from neuroalign.core.errors import ConfigError

__all__ = ["BRAINSCORE_ALPHAS", "check_alphas", "loo_alphas", "ridgecv_cv_correlations"]

#: brainscore-vision's ``ALPHA_LIST`` (its ``ridge_cv_regression`` default grid): 0.01 .. 1e7.
BRAINSCORE_ALPHAS: tuple[float, ...] = tuple(
    float(a)
    for a in [
        0.01, 0.1, 0.5, 1.0,
        *np.linspace(1e1, 1e2, 4, endpoint=False),
        *np.linspace(1e2, 1e3, 18, endpoint=False),
        *np.linspace(1e3, 1e4, 18, endpoint=False),
        *np.linspace(1e4, 1e5, 18, endpoint=False),
        *np.linspace(1e5, 1e6, 18, endpoint=False),
        *np.linspace(1e6, 1e7, 19),
    ]
)


def check_alphas(alphas: Sequence[float], config_key: str = "alphas") -> tuple[float, ...]:
    """The grid as floats; one ``ConfigError`` line naming ``config_key`` when it is empty or not all positive."""
    grid = tuple(float(a) for a in alphas)
    if not grid or not all(a > 0 and np.isfinite(a) for a in grid):
        bad = [a for a in grid if not (a > 0 and np.isfinite(a))]
        raise ConfigError(f"ridge-CV alphas must be positive and finite, got {bad or 'an empty grid'} (set `{config_key}`)")
    return grid


def loo_alphas(
    X: torch.Tensor,
    Y: torch.Tensor,
    train: torch.Tensor,
    spectra: FoldSpectra,
    alphas: Sequence[float],
    alpha_per_target: bool = True,
) -> torch.Tensor:
    """Index into ``alphas`` of the smallest mean squared LOO error, ``(S, q)`` (equal across ``q`` if shared).

    Args:
        X: ``(n, p)`` globally centred features.
        Y: ``(n, q)`` globally centred targets.
        train: ``(S, n_train)`` train row indices.
        spectra: :func:`~.ridge.fold_spectra` of the same rows.
        alphas: the grid.
        alpha_per_target: one alpha per target (else one per split, by the error averaged over targets).
    """
    n_tr = train.shape[1]
    Q = (X[train] - spectra.x_mean.unsqueeze(1)) @ spectra.V  # (S, n_tr, r)
    Yc = Y[train] - spectra.y_mean.unsqueeze(1)  # (S, n_tr, q)
    B = spectra.V.transpose(1, 2) @ spectra.cross  # Q^T Y_c, (S, r, q)
    Q2 = Q * Q
    errors = []
    for alpha in alphas:  # one matrix product per alpha, all splits and targets at once
        g = torch.where(spectra.valid, 1.0 / (spectra.lam + alpha), torch.zeros_like(spectra.lam))
        h = 1.0 / n_tr + (Q2 @ g.unsqueeze(-1))  # (S, n_tr, 1) hat-matrix diagonal
        resid = (Yc - Q @ (g.unsqueeze(-1) * B)) / (1.0 - h)
        err = (resid * resid).mean(1)  # (S, q)
        errors.append(err if alpha_per_target else err.mean(1, keepdim=True).expand_as(err))
    return torch.stack(errors).argmin(0)  # first minimum on ties, as sklearn's strict update


def ridgecv_cv_correlations(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    alphas: Sequence[float] = BRAINSCORE_ALPHAS,
    alpha_per_target: bool = True,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    return_predictions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ridge-CV per split: alpha by LOO on the train rows, then Pearson r per neuroid on the test rows.

    Args:
        X: ``(n_stimuli, n_features)`` model features.
        Y: ``(n_stimuli, n_neuroids)`` responses, rows matching ``X``.
        splits: ``(train_indices, test_indices)`` pairs (all with the same number of train rows).
        alphas: positive penalties to choose from (default: brainscore-vision's grid).
        alpha_per_target: one alpha per neuroid (sklearn ``alpha_per_target=True``) or one per split.
        dtype: computation dtype (float64 matches sklearn).
        device: where to compute (default: ``X``'s device).
        return_predictions: also return the ``(S, n, q)`` predictions of every split for all rows.

    Returns:
        ``(r, chosen)``: ``(n_splits, n_neuroids)`` correlations and the chosen alphas, same shape
        (plus the predictions when asked).

    Raises:
        ConfigError: when a grid value is not positive.
    """
    grid = check_alphas(alphas)
    X, Y, train, out, test, y_shift = prepare_cv_inputs(X, Y, splits, dtype, device)
    spectra = fold_spectra(fold_grams(X, Y, train, out))
    index = loo_alphas(X, Y, train, spectra, grid, alpha_per_target)  # (S, q)
    chosen = torch.tensor(grid, dtype=X.dtype, device=X.device)[index]
    gain = 1.0 / (spectra.lam.unsqueeze(-1) + chosen.unsqueeze(1))  # (S, r, q)
    pred = predict_folds(X, spectra, spectral_coefficients(spectra, gain))
    r = pearson_per_column(pred.gather(1, test.unsqueeze(-1).expand(-1, -1, pred.shape[-1])), Y[test])
    return (r, chosen, pred + y_shift) if return_predictions else (r, chosen)
