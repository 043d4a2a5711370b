"""Ridge and ordinary least squares regression in torch, batched over cross-validation splits.

brainscore-vision's ``ridge`` metric fits sklearn ``Ridge(alpha=1)`` (``fit_intercept=True``, the
sklearn default; its ``ridge_regression()``) and ``linear_predictivity`` fits ``LinearRegression()``
(least squares with an intercept; the minimum-norm solution when features outnumber stimuli), each
on the train rows of 10 splits, then correlates predictions and responses per neuroid on the test
rows (Pearson r). Aggregation, as brainscore-vision's ``CrossRegressedCorrelation``: median over
neuroids per split, mean over splits.

Both are solved exactly from one symmetric eigendecomposition per split, all splits in one batched
call: of the ``p x p`` feature Gram matrix of the train rows when ``p <= n_train`` (computed as the
Gram matrix of all rows minus that of the left-out rows), else of the ``n_train x n_train`` kernel
(the dual). Every split then has principal axes ``V`` and eigenvalues ``lam`` of its centred train
features, and a penalty ``alpha`` gives the coefficients ``W = V diag(1 / (lam + alpha)) V^T X_c^T Y_c``
(``alpha = 0``: the pseudo-inverse over the numerically non-zero eigenvalues, as ``lstsq``). The same
decomposition serves the ridge-CV metric (``ridgecv.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from callbacks.brainscore.metrics.correlation import pearson_per_column
from callbacks.brainscore.metrics.splits import split_masks

__all__ = [
    "FoldSpectra",
    "fold_spectra",
    "fold_index",
    "spectral_coefficients",
    "ridge_cv_correlations",
    "linear_cv_correlations",
    "paired_tensors",
    "prepare_cv_inputs",
    "predict_folds",
]


@dataclass
class FoldSpectra:
    """Principal axes of each split's centred train features (all tensors batched over splits ``S``).

    Attributes:
        V: ``(S, p, r)`` unit principal axes (zero columns where ``valid`` is false).
        lam: ``(S, r)`` eigenvalues of ``X_c^T X_c`` (squared singular values of the centred train rows).
        valid: ``(S, r)`` eigenvalues above the numerical rank threshold.
        x_mean: ``(S, p)`` train means of ``X``.
        y_mean: ``(S, q)`` train means of ``Y``.
        cross: ``(S, p, q)`` centred cross products ``X_c^T Y_c`` of the train rows.
    """

    V: torch.Tensor
    lam: torch.Tensor
    valid: torch.Tensor
    x_mean: torch.Tensor
    y_mean: torch.Tensor
    cross: torch.Tensor


def fold_index(splits: Sequence[tuple[np.ndarray, np.ndarray]], n: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, left_out)`` row indices of shape ``(S, n_train)`` and ``(S, n - n_train)``.

    Raises:
        ValueError: when the splits do not all have the same number of train rows (brainscore-vision's
            shuffle splitters always do).
    """
    sizes = {len(tr) for tr, _ in splits}
    if len(sizes) != 1:
        raise ValueError(f"splits must all have the same number of train rows, got sizes {sorted(sizes)}")
    train = torch.stack([torch.as_tensor(np.sort(tr), dtype=torch.long) for tr, _ in splits]).to(device)
    keep = torch.zeros(len(splits), n, dtype=torch.bool, device=device)
    keep.scatter_(1, train, True)
    out = torch.stack([(~k).nonzero().squeeze(1) for k in keep])
    return train, out


def fold_spectra(X: torch.Tensor, Y: torch.Tensor, train: torch.Tensor, out: torch.Tensor) -> FoldSpectra:
    """Eigendecomposition of every split's centred train features, batched.

    Args:
        X: ``(n, p)`` features, centred globally (any constant shift is fine; centring keeps precision).
        Y: ``(n, q)`` targets, centred globally likewise.
        train: ``(S, n_train)`` train row indices (see :func:`fold_index`).
        out: ``(S, n_out)`` the complementary rows.
    """
    n, p = X.shape
    n_tr = train.shape[1]
    Xtr, Ytr = X[train], Y[train]  # (S, n_tr, p), (S, n_tr, q)
    mu, ymu = Xtr.mean(1), Ytr.mean(1)
    Xo, Yo = X[out], Y[out]
    cross = (X.T @ Y) - Xo.transpose(1, 2) @ Yo - n_tr * mu.unsqueeze(-1) * ymu.unsqueeze(1)
    eps = torch.finfo(X.dtype).eps
    if p <= n_tr:  # primal: p x p Gram of the train rows = all rows minus the left-out ones
        G = (X.T @ X) - Xo.transpose(1, 2) @ Xo - n_tr * mu.unsqueeze(-1) * mu.unsqueeze(1)
        lam, V = torch.linalg.eigh(G)
        valid = lam > lam[:, -1:].clamp_min(0) * (max(n_tr, p) * eps)
    else:  # dual: n_train x n_train kernel; V = X_c^T U / s
        Xc = Xtr - mu.unsqueeze(1)
        lam, U = torch.linalg.eigh(Xc @ Xc.transpose(1, 2))
        valid = lam > lam[:, -1:].clamp_min(0) * (max(n_tr, p) * eps)
        s = torch.where(valid, lam, torch.ones_like(lam)).sqrt()
        V = (Xc.transpose(1, 2) @ U) / s.unsqueeze(1)
    lam = torch.where(valid, lam, torch.zeros_like(lam))
    V = V * valid.unsqueeze(1)
    return FoldSpectra(V=V, lam=lam, valid=valid, x_mean=mu, y_mean=ymu, cross=cross)


def spectral_coefficients(spectra: FoldSpectra, gain: torch.Tensor) -> torch.Tensor:
    """Coefficients ``W = V (gain * V^T X_c^T Y_c)`` of shape ``(S, p, q)``.

    Args:
        spectra: the splits' decompositions.
        gain: ``(S, r)`` one gain per axis (ridge: ``1 / (lam + alpha)``) or ``(S, r, q)`` one per axis
            and target (ridge with one alpha per target).
    """
    B = spectra.V.transpose(1, 2) @ spectra.cross  # (S, r, q)
    g = gain.unsqueeze(-1) if gain.dim() == 2 else gain
    return spectra.V @ (torch.where(spectra.valid.unsqueeze(-1), g, torch.zeros_like(g)) * B)


def predict_folds(X: torch.Tensor, spectra: FoldSpectra, W: torch.Tensor) -> torch.Tensor:
    """``(S, n, q)`` predictions of every split's fit for all rows of ``X``."""
    offset = spectra.y_mean - (spectra.x_mean.unsqueeze(1) @ W).squeeze(1)  # (S, q)
    S, p, q = W.shape
    pred = (X @ W.permute(1, 0, 2).reshape(p, S * q)).reshape(X.shape[0], S, q).transpose(0, 1)
    return pred + offset.unsqueeze(1)


def paired_tensors(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and responses as 2-D ``(n, -1)`` tensors in ``dtype`` on ``device`` (default: ``X``'s)."""
    X = torch.as_tensor(X)
    device = torch.device(device) if device is not None else X.device
    X = X.to(device=device, dtype=dtype)
    Y = torch.as_tensor(Y).to(device=device, dtype=dtype)
    return X.reshape(len(X), -1), Y.reshape(len(Y), -1)


def prepare_cv_inputs(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> tuple[torch.Tensor, ...]:
    """``(X, Y, train, out, test, y_shift)``: the data on the device in ``dtype``, centred globally (``y_shift``
    is the removed mean of ``Y``), the train / left-out indices (:func:`fold_index`) and ``(S, n)`` test masks."""
    X, Y = paired_tensors(X, Y, dtype, device)
    device = X.device
    y_shift = Y.mean(0)
    X, Y = X - X.mean(0), Y - y_shift
    train, out = fold_index(splits, X.shape[0], device=device)
    _, test = split_masks(splits, X.shape[0], device=device, dtype=dtype)
    return X, Y, train, out, test, y_shift


def ridge_cv_correlations(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    alpha: float = 1.0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """brainscore-vision's ``ridge`` metric before aggregation: Pearson r per split and neuroid on held-out rows.

    Args:
        X: ``(n_stimuli, n_features)`` model features.
        Y: ``(n_stimuli, n_neuroids)`` responses, rows matching ``X``.
        splits: ``(train_indices, test_indices)`` pairs (see :func:`~.splits.brainscore_splits`).
        alpha: ridge penalty (brainscore-vision: 1, with an unpenalised intercept).
        dtype: computation dtype (float64 matches sklearn).
        device: where to compute (default: ``X``'s device).

    Returns:
        ``(n_splits, n_neuroids)`` correlations (NaN where a prediction or target is constant).
    """
    X, Y, train, out, test, _ = prepare_cv_inputs(X, Y, splits, dtype, device)
    spectra = fold_spectra(X, Y, train, out)
    W = spectral_coefficients(spectra, 1.0 / (spectra.lam + alpha))
    return pearson_per_column(predict_folds(X, spectra, W), Y.unsqueeze(0), test)


def linear_cv_correlations(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """brainscore-vision's ``linear_predictivity`` metric (sklearn ``LinearRegression``) before aggregation.

    Least squares with an intercept; the minimum-norm solution when the centred train features are
    rank deficient (eigenvalues below ``max(n_train, p) * eps`` of the largest are dropped).

    Args:
        X: ``(n_stimuli, n_features)`` model features.
        Y: ``(n_stimuli, n_neuroids)`` responses, rows matching ``X``.
        splits: ``(train_indices, test_indices)`` pairs.
        dtype: computation dtype.
        device: where to compute (default: ``X``'s device).

    Returns:
        ``(n_splits, n_neuroids)`` correlations on the held-out rows.
    """
    X, Y, train, out, test, _ = prepare_cv_inputs(X, Y, splits, dtype, device)
    spectra = fold_spectra(X, Y, train, out)
    gain = torch.where(spectra.valid, 1.0 / torch.where(spectra.valid, spectra.lam, torch.ones_like(spectra.lam)),
                       torch.zeros_like(spectra.lam))
    W = spectral_coefficients(spectra, gain)
    return pearson_per_column(predict_folds(X, spectra, W), Y.unsqueeze(0), test)
