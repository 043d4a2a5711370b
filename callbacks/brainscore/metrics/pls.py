"""Partial least squares regression in torch -- the same model as sklearn ``PLSRegression(scale=False)``.

Brain-Score's ``pls`` metric fits ``PLSRegression(n_components=25, scale=False)`` (PLS2, NIPALS,
regression-mode deflation) on each of 10 train splits. This module computes the same model, batched
over all splits at once, on the device of the data:

* each component's weight vector is the top left singular vector of the deflated cross-covariance
  ``C_k = X_k^T Y_k`` -- what sklearn's power iteration converges to (sklearn stops at a tolerance,
  so the two agree to ~1e-6 in the weights, far below 0.005 in scores);
* nothing of size ``n x p`` is deflated or copied per split: splits are 0/1 row masks over one
  shared, globally centred ``X``. Using that the scores ``t_k`` are orthogonal,
  ``X_k w = X_c w - T (P^T w)``, ``C_{k+1} = C_k - (X_c^T t_k) c_k^T`` and the small Gram matrix
  ``C_k^T C_k`` is updated by rank-one terms, so a component costs two ``n x p`` matrix-vector
  products per split (done as one matrix-matrix product over all splits) plus ``O(p q)`` work;
* predictions use ``coef = W (P^T W)^+ C^T`` (sklearn's ``x_rotations_ @ y_loadings_.T``).

Float64 by default (agreement with sklearn); float32 is accepted for speed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from callbacks.brainscore.metrics.correlation import pearson_per_column
from callbacks.brainscore.metrics.splits import split_masks

__all__ = ["PLSRegression", "fit_pls_masked", "pls_cv_correlations"]


def _top_singular_left(C: torch.Tensor, G: torch.Tensor, right: bool, refine: int = 1) -> torch.Tensor:
    """Unit top left singular vectors of ``C`` (S, p, q) given its Gram ``G`` (C^T C if ``right`` else C C^T)."""
    vecs = torch.linalg.eigh(G)[1][..., -1]  # (S, q) or (S, p)
    if right:
        w = torch.bmm(C, vecs.unsqueeze(-1)).squeeze(-1)
    else:
        w = vecs
    for _ in range(refine):  # polish against drift of the incrementally updated Gram matrix
        v = torch.bmm(C.transpose(1, 2), w.unsqueeze(-1))
        w = torch.bmm(C, v).squeeze(-1)
        w = w / w.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    return w / w.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)


def fit_pls_masked(
    X: torch.Tensor,
    Y: torch.Tensor,
    train: torch.Tensor,
    n_components: int = 25,
) -> dict[str, torch.Tensor]:
    """Fit one PLS regression per row mask, all at once.

    Args:
        X: ``(n, p)`` features, already centred globally (any constant shift is fine).
        Y: ``(n, q)`` targets, centred globally likewise.
        train: ``(S, n)`` 0/1 masks of the rows each fit uses.
        n_components: PLS components (clipped to ``p``).

    Returns:
        dict with ``x_mean`` (S, p), ``y_mean`` (S, q), ``rotations`` (S, p, K) and
        ``y_loadings`` (S, q, K); a split predicts ``(x - x_mean) @ rotations @ y_loadings.T + y_mean``.
    """
    n, p = X.shape
    q = Y.shape[1]
    S = train.shape[0]
    K = int(min(n_components, p))
    m = train.to(X.dtype)
    n_s = m.sum(1, keepdim=True)
    mu = (m @ X) / n_s  # (S, p)
    ymu = (m @ Y) / n_s  # (S, q)

    # cross-covariance per split: full product minus the (smaller) left-out rows, then centre
    full = X.T @ Y
    C = torch.empty(S, p, q, dtype=X.dtype, device=X.device)
    for s in range(S):  # loop over splits (10), each a small matmul -- never over neuroids
        out = (m[s] == 0).nonzero().squeeze(1)
        if len(out) <= n // 2:
            C[s] = full - X[out].T @ Y[out]
        else:
            keep = (m[s] != 0).nonzero().squeeze(1)
            C[s] = X[keep].T @ Y[keep]
    C -= n_s.unsqueeze(-1) * mu.unsqueeze(-1) * ymu.unsqueeze(1)

    right = q <= p
    G = C.transpose(1, 2) @ C if right else C @ C.transpose(1, 2)
    W = X.new_zeros(S, p, K)
    P = X.new_zeros(S, p, K)
    Cl = X.new_zeros(S, q, K)
    T = X.new_zeros(S, n, K)
    tiny = torch.finfo(X.dtype).eps * 1e3
    for k in range(K):
        w = _top_singular_left(C, G, right)  # (S, p)
        t = (X @ w.T).T - (mu * w).sum(1, keepdim=True)  # X_c w, (S, n)
        if k:
            t = t - torch.bmm(T[:, :, :k], torch.bmm(P[:, :, :k].transpose(1, 2), w.unsqueeze(-1))).squeeze(-1)
        t = t * m
        tt = (t * t).sum(1, keepdim=True)
        ok = tt > tiny * (torch.linalg.matrix_norm(C, ord="fro").unsqueeze(-1) + 1)
        tt = torch.where(ok, tt, torch.ones_like(tt))
        t = torch.where(ok, t, torch.zeros_like(t))
        tsum = t.sum(1, keepdim=True)
        a = (X.T @ t.T).T - mu * tsum  # X_c^T t, (S, p)
        c = ((Y.T @ t.T).T - ymu * tsum) / tt  # y loadings, (S, q)
        # rank-one deflation of C and of its Gram matrix
        if right:
            Cta = torch.bmm(C.transpose(1, 2), a.unsqueeze(-1)).squeeze(-1)  # (S, q)
            G = G - c.unsqueeze(-1) * Cta.unsqueeze(1) - Cta.unsqueeze(-1) * c.unsqueeze(1)
            G = G + (a * a).sum(1)[:, None, None] * c.unsqueeze(-1) * c.unsqueeze(1)
        else:
            Cc = torch.bmm(C, c.unsqueeze(-1)).squeeze(-1)  # (S, p)
            G = G - a.unsqueeze(-1) * Cc.unsqueeze(1) - Cc.unsqueeze(-1) * a.unsqueeze(1)
            G = G + (c * c).sum(1)[:, None, None] * a.unsqueeze(-1) * a.unsqueeze(1)
        C.baddbmm_(a.unsqueeze(-1), c.unsqueeze(1), alpha=-1)  # C -= a c^T, in place
        W[:, :, k] = torch.where(ok, w, torch.zeros_like(w))
        P[:, :, k] = a / tt
        Cl[:, :, k] = c
        T[:, :, k] = t
    rotations = W @ torch.linalg.pinv(P.transpose(1, 2) @ W)
    return {"x_mean": mu, "y_mean": ymu, "rotations": rotations, "y_loadings": Cl}


def _predict(X: torch.Tensor, fit: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(S, n, q)`` predictions of every fitted split for all rows of ``X`` (centred like the fit)."""
    R = fit["rotations"]  # (S, p, K)
    S, p, K = R.shape
    Z = (X @ R.permute(1, 0, 2).reshape(p, S * K)).reshape(X.shape[0], S, K).transpose(0, 1)
    Z = Z - torch.bmm(fit["x_mean"].unsqueeze(1), R)
    return torch.bmm(Z, fit["y_loadings"].transpose(1, 2)) + fit["y_mean"].unsqueeze(1)


def pls_cv_correlations(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    n_components: int = 25,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Brain-Score's ``pls`` metric before aggregation: Pearson r per split and neuroid on held-out rows.

    Args:
        X: ``(n_stimuli, n_features)`` model features.
        Y: ``(n_stimuli, n_neuroids)`` responses (averaged over repetitions), rows matching ``X``.
        splits: ``(train_indices, test_indices)`` pairs (see :func:`~.splits.brainscore_splits`).
        n_components: PLS components (Brain-Score: 25).
        dtype: computation dtype (float64 matches sklearn to ~1e-10).
        device: where to compute (default: ``X``'s device).

    Returns:
        ``(n_splits, n_neuroids)`` correlations (NaN where a prediction or target is constant).
    """
    X = torch.as_tensor(X)
    device = torch.device(device) if device is not None else X.device
    X = X.to(device=device, dtype=dtype)
    Y = torch.as_tensor(Y).to(device=device, dtype=dtype)
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    train, test = split_masks(splits, X.shape[0], device=device, dtype=dtype)
    fit = fit_pls_masked(X, Y, train, n_components)
    pred = _predict(X, fit)
    return pearson_per_column(pred, Y.unsqueeze(0), test)


class PLSRegression:
    """Single PLS regression with sklearn's ``fit`` / ``predict`` API (``scale=False``).

    Args:
        n_components: number of components.
        dtype: computation dtype.
    """

    def __init__(self, n_components: int = 25, dtype: torch.dtype = torch.float64) -> None:
        self.n_components = n_components
        self.dtype = dtype
        self.coef_: torch.Tensor | None = None

    def fit(self, X: torch.Tensor | np.ndarray, Y: torch.Tensor | np.ndarray) -> "PLSRegression":
        """Fit on ``(n, p)`` features and ``(n, q)`` (or ``(n,)``) targets."""
        X = torch.as_tensor(X).to(self.dtype)
        Y = torch.as_tensor(Y).to(device=X.device, dtype=self.dtype)
        self._1d = Y.dim() == 1
        Y = Y.reshape(len(Y), -1)
        self._x_shift, self._y_shift = X.mean(0), Y.mean(0)
        fit = fit_pls_masked(X - self._x_shift, Y - self._y_shift, X.new_ones(1, len(X)), self.n_components)
        self._fit = fit
        self.x_mean_ = fit["x_mean"][0] + self._x_shift
        self.intercept_ = fit["y_mean"][0] + self._y_shift
        self.coef_ = (fit["rotations"][0] @ fit["y_loadings"][0].T).T  # (q, p) as sklearn
        return self

    def predict(self, X: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Predict targets for ``(m, p)`` features."""
        if self.coef_ is None:
            raise RuntimeError("PLSRegression.predict called before fit")
        X = torch.as_tensor(X).to(device=self.coef_.device, dtype=self.dtype)
        out = (X - self.x_mean_) @ self.coef_.T + self.intercept_
        return out.squeeze(1) if self._1d else out
