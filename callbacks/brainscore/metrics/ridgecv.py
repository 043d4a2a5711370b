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
LOO residuals ``(Y_c - H Y_c)_i / (1 - H_ii)``. The fitted values of all alphas share few products:
the shrinkage matrix ``lam_k / (lam_k + alpha_j)`` (alphas x axes) has a low numerical rank (its
singular values fall fast: ~30 above ``1e-13`` of the largest for brainscore-vision's 86 alphas), so
``Q diag(g_j) Q^T Y_c`` is a combination of that many products ``Q diag(t / lam) Q^T Y_c``, one per
right singular vector ``t`` -- the ``n x p x q`` products once per singular vector instead of once per
alpha. The hat-matrix diagonals are exact (``n x p`` per alpha).
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


LOO_RANK_TOL = 1e-13
"""Relative cut-off of the singular values of the ``alphas x axes`` shrinkage matrix ``lam / (lam + alpha)``
kept by :func:`loo_alphas` (its numerical rank: ~30 for brainscore-vision's 86 alphas)."""

LOO_ALPHA_CHUNK = 8
"""Alphas whose LOO residuals :func:`loo_alphas` holds at once."""


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
    grid = torch.tensor(tuple(alphas), dtype=X.dtype, device=X.device)
    Q = (X[train] - spectra.x_mean.unsqueeze(1)) @ spectra.V  # (S, n_tr, r) principal scores
    Yc = Y[train] - spectra.y_mean.unsqueeze(1)  # (S, n_tr, q)
    B = spectra.V.transpose(1, 2) @ spectra.cross  # Q^T Y_c, (S, r, q)
    lam = torch.where(spectra.valid, spectra.lam, torch.ones_like(spectra.lam))
    gain = torch.where(spectra.valid.unsqueeze(1), 1.0 / (lam.unsqueeze(1) + grid[:, None]), torch.zeros_like(lam).unsqueeze(1))
    leverage = 1.0 / n_tr + (Q * Q) @ gain.transpose(1, 2)  # (S, n_tr, a) hat-matrix diagonals, exact
    shrink = gain * lam.unsqueeze(1)  # (S, a, r): lam / (lam + alpha) on valid axes
    basis, weight, axes = torch.linalg.svd(shrink, full_matrices=False)
    rank = int((weight > weight[:, :1] * LOO_RANK_TOL).sum(1).max())
    errors = []
    for s in range(len(Q)):  # one split at a time bounds the memory
        if rank < len(grid):  # fitted values of every alpha from `rank` products: shrink ~ basis weight axes
            terms = axes[s, :rank] / lam[s]  # (rank, r); fitted = sum_t basis weight (Q diag(terms_t) B)
            products = Q[s] @ (terms.T.unsqueeze(-1) * B[s].unsqueeze(1)).reshape(Q.shape[-1], -1)  # (n_tr, rank q)
            products = products.reshape(n_tr, rank, -1).transpose(0, 1).reshape(rank, -1)  # (rank, n_tr q)
            mix = basis[s, :, :rank] * weight[s, :rank]  # (a, rank)
        split_errors = []
        for start in range(0, len(grid), LOO_ALPHA_CHUNK):
            chunk = slice(start, start + LOO_ALPHA_CHUNK)
            if rank < len(grid):
                fitted = (mix[chunk] @ products).reshape(-1, *Yc.shape[1:])  # (c, n_tr, q)
            else:  # one product per alpha
                fitted = torch.stack([Q[s] @ (g.unsqueeze(-1) * B[s]) for g in gain[s, chunk]])
            resid = fitted.sub_(Yc[s]).square_()  # squared residuals, in place
            weights = (1.0 - leverage[s, :, chunk].T).pow(-2) / n_tr  # (c, n_tr): LOO scale, mean over rows
            split_errors.append((weights.unsqueeze(1) @ resid).squeeze(1))  # (c, q)
        errors.append(torch.cat(split_errors))
    errors = torch.stack(errors, 1)  # (a, S, q)
    if not alpha_per_target:
        errors = errors.mean(2, keepdim=True).expand_as(errors)
    return errors.argmin(0)  # first minimum on ties, as sklearn's strict update


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
