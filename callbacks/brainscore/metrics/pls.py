"""Partial least squares regression in torch -- the same model as sklearn ``PLSRegression(scale=False)``.

Brain-Score's ``pls`` metric fits ``PLSRegression(n_components=25, scale=False)`` (PLS2, NIPALS,
regression-mode deflation) on each of 10 train splits. This module computes the same model, exactly
(each weight vector is the exact top singular vector where sklearn stops its power iteration at
``tol=1e-6``), batched over all splits at once, on the device of the data. Two paths, chosen by
:func:`uses_kernel` (the kernel path when the features outnumber the stimuli):

* **primal** (this module, :func:`fit_pls_masked`): one float64 centred copy of ``X`` (``n x p``,
  at most ``n x n`` values since ``p <= n``). The cross-covariances ``C_s = X_c^T Y_c`` of the
  splits come from the shared ``X^T Y`` minus the left-out rows; they are never deflated:
  ``C_k = C_0 - A C^T`` with ``A`` the products ``X_c^T t`` and ``C`` the y loadings so far, and
  ``G_k = C_k^T C_k`` follows by a rank-two update (:func:`~.kernel_pls.deflate_cross_gram`). A
  component is one exact top eigenvector of ``G_k`` per split (``q x q``) and one pass over the
  rows of ``X`` (cache-sized row blocks on CPU) that gives the deflated scores
  ``t = X_c w - T P^T w`` of every row and accumulates ``X_c^T t`` for all splits;
* **kernel** (:mod:`~.kernel_pls`): the float64 Gram matrix ``X_g X_g^T`` (``n x n``) built by
  chunks of columns, so a layer far wider than the number of stimuli is scored exactly without a
  copy of its features, then the same NIPALS in the stimulus space.

Held-out predictions come from the held-out scores (``(x - x_mean) @ x_rotations_``, produced by
the same deflation), so no rotation matrix is formed for cross-validation.

What is float64: everything but the work on ``X`` itself. ``dtype`` (float64 by default, the
agreement with sklearn to ~1e-10) is the dtype of the products with ``X``: its centred copy and the
two per-component products on the primal path, the column chunks of the Gram products on the kernel
path. With ``dtype=torch.float32`` (for GPUs) ``X^T Y`` and the Gram matrix are still accumulated in
float64, and ``C``, ``G``, the eigenvectors, scores and loadings stay float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from callbacks.brainscore.metrics.correlation import pearson_per_column
from callbacks.brainscore.metrics.kernel_pls import (
    EXHAUSTED,
    GRAM_CHUNK_BYTES,
    centred_gram,
    deflate_cross_gram,
    fit_kernel_pls_masked,
    top_eigenvectors,
)
from callbacks.brainscore.metrics.splits import split_masks

__all__ = ["PLSRegression", "fit_pls_masked", "pls_cv_correlations", "pls_memory_bytes", "uses_kernel"]

_BLOCK_BYTES = 2**20  # CPU: bytes of X per row block of the score pass (cache-sized)
_CPU_COLUMNS = 12  # CPU: split columns of the score pass padded to a multiple of this (MKL's double
# kernels run a 10-column product ~1.5x slower than a 12-column one)
_XTY_ROWS = 4096  # float32 X^T Y: rows per float32 product, summed in float64


def uses_kernel(n_stimuli: int, n_features: int) -> bool:
    """The path rule: the kernel (Gram matrix) path exactly when features outnumber stimuli (``p > n``).

    There the ``n x n`` Gram matrix is the smaller object and no copy of the features is needed; at
    ``p <= n`` the primal path's float64 copy of ``X`` is no larger than the Gram matrix, and it skips
    the ``n^2 p`` Gram products.
    """
    return n_features > n_stimuli


def _xty(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """``X^T Y`` in float64 (float32 ``X``: float32 products over row chunks, summed in float64)."""
    if X.dtype == torch.float64:
        return X.T @ Y
    out = Y.new_zeros(X.shape[1], Y.shape[1])
    for i in range(0, X.shape[0], _XTY_ROWS):
        out += (X[i : i + _XTY_ROWS].T @ Y[i : i + _XTY_ROWS].to(X.dtype)).double()
    return out


def _split_moments(X: torch.Tensor, Y: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Train means ``(S, p)``, ``(S, q)`` and train-centred ``X_c^T Y_c`` ``(S, p, q)`` of every split (float64).

    Each comes from the statistic over all rows minus the split's left-out rows (or, for a split that
    leaves out most rows, from its train rows).
    """
    n = X.shape[0]
    S = m.shape[0]
    n_s = m.sum(1, keepdim=True)
    full, x_full, y_full = _xty(X, Y), X.sum(0, dtype=torch.float64), Y.sum(0)
    C = Y.new_empty(S, X.shape[1], Y.shape[1])
    x_sum, y_sum = Y.new_empty(S, X.shape[1]), Y.new_empty(S, Y.shape[1])
    for s in range(S):  # 10 splits, each a small product -- never a loop over neuroids
        out = (m[s] == 0).nonzero().squeeze(1)
        if len(out) <= n // 2:
            rows, ys = X.index_select(0, out), Y.index_select(0, out)
            C[s], x_sum[s], y_sum[s] = full, x_full, y_full
            C[s] -= _xty(rows, ys)
            x_sum[s] -= rows.sum(0, dtype=torch.float64)
            y_sum[s] -= ys.sum(0)
        else:
            keep = (m[s] != 0).nonzero().squeeze(1)
            rows, ys = X.index_select(0, keep), Y.index_select(0, keep)
            C[s], x_sum[s], y_sum[s] = _xty(rows, ys), rows.sum(0, dtype=torch.float64), ys.sum(0)
    x_mean, y_mean = x_sum / n_s, y_sum / n_s
    C.baddbmm_((n_s * x_mean).unsqueeze(2), y_mean.unsqueeze(1), alpha=-1)
    return x_mean, y_mean, C


def _row_blocks(X: torch.Tensor) -> list[torch.Tensor]:
    """Views of consecutive rows of ``X``: cache-sized blocks on CPU, all rows at once elsewhere."""
    if X.device.type != "cpu":
        return [X]
    return list(X.split(max(16, _BLOCK_BYTES // (X.shape[1] * X.element_size()))))


def _score_pass(
    blocks: list[torch.Tensor], W: torch.Tensor, shift: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass over the rows of ``X``: scores ``X w - shift`` of every row, and ``X^T t`` of the train scores.

    Each block of rows serves both products while it is in cache.

    Args:
        blocks: ``X`` (``n x p``) as consecutive row blocks (:func:`_row_blocks`).
        W: ``(p, S)`` weight vectors, one per split.
        shift: ``(n, S)`` what to subtract from ``X W`` (centring and deflation).
        mask: ``(n, S)`` 0/1 train masks.

    Returns:
        ``(n, S)`` scores of every row, ``(n, S)`` train scores ``t`` (masked) and ``(S, p)`` ``t^T X``.
    """
    scores = torch.empty_like(shift)
    train = torch.empty_like(shift)
    tx = W.new_zeros(W.shape[1], W.shape[0])
    sizes = [len(rows) for rows in blocks]
    for rows, score, t, shift_b, mask_b in zip(
        blocks, scores.split(sizes), train.split(sizes), shift.split(sizes), mask.split(sizes)
    ):
        torch.addmm(shift_b, rows, W, beta=-1, out=score)
        torch.mul(score, mask_b, out=t)
        tx.addmm_(t.T, rows)
    return scores, train, tx


def fit_pls_masked(
    X: torch.Tensor,
    Y: torch.Tensor,
    train: torch.Tensor,
    n_components: int = 25,
) -> dict[str, torch.Tensor]:
    """Fit one PLS regression per row mask, all at once (the primal path).

    Args:
        X: ``(n, p)`` features, centred globally (any constant shift is fine), float64 or float32 (the
            dtype of the products with ``X``).
        Y: ``(n, q)`` float64 targets, centred globally likewise.
        train: ``(S, n)`` 0/1 masks of the rows each fit uses.
        n_components: PLS components (clipped to ``p``).

    Returns:
        float64 tensors: ``x_scores`` (S, n, k), the scores of every row under each split's fit (train
        rows: NIPALS scores; other rows: held-out scores), ``y_loadings`` (S, q, k), ``y_mean`` (S, q),
        ``x_mean`` (S, p), ``x_weights`` (S, p, k) and ``x_loadings`` (S, p, k). A split predicts
        ``x_scores @ y_loadings.T + y_mean``, or for new rows
        ``(x - x_mean) @ x_weights @ pinv(x_loadings.T @ x_weights) @ y_loadings.T + y_mean``.
    """
    n, p = X.shape
    q = Y.shape[1]
    S = train.shape[0]
    K = int(min(n_components, p))
    m = train.to(torch.float64)
    x_mean, y_mean, C = _split_moments(X, Y, m)
    G = C.transpose(1, 2) @ C
    blocks = _row_blocks(X)
    cols = -(-S // _CPU_COLUMNS) * _CPU_COLUMNS if X.device.type == "cpu" else S
    W_pass = X.new_zeros(p, cols)  # the score pass's operands, zero beyond the S splits
    shift_pass = X.new_zeros(n, cols)
    mask = X.new_zeros(n, cols)
    mask[:, :S] = m.T
    weights = Y.new_zeros(S, p, K)
    A = Y.new_zeros(S, p, K)  # X_c^T t per component (x loadings times t^T t)
    loadings = Y.new_zeros(S, q, K)
    T = Y.new_zeros(S, K, n)
    tts = Y.new_ones(S, K)
    first = None
    for k in range(K):
        value, v = top_eigenvectors(G)
        first = value if first is None else first
        ok = value > EXHAUSTED * first
        w = torch.bmm(C, v.unsqueeze(2))  # C_k v = C_0 v - A (loadings^T v)
        if k:
            w -= torch.bmm(A[:, :, :k], torch.bmm(loadings[:, :, :k].transpose(1, 2), v.unsqueeze(2)))
        w = w.squeeze(2)
        w = torch.where(ok.unsqueeze(1), w / w.norm(dim=1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny), 0.0)
        shift = (x_mean * w).sum(1, keepdim=True)  # centring on the train mean
        if k:  # deflation: X_k w = X_c w - T P^T w
            pw = torch.bmm(w.unsqueeze(1), A[:, :, :k]) / tts[:, None, :k]
            shift = shift + torch.bmm(pw, T[:, :k]).squeeze(1)
        W_pass[:, :S] = w.T
        shift_pass[:, :S] = shift.T
        scores, t, tx = _score_pass(blocks, W_pass, shift_pass, mask)
        t = t[:, :S].T.double().contiguous()
        tsum = t.sum(1)
        tt = torch.where(ok, (t * t).sum(1), 1.0)
        a = tx[:S].double() - x_mean * tsum.unsqueeze(1)
        c = (t @ Y - tsum.unsqueeze(1) * y_mean) / tt.unsqueeze(1)
        if k < K - 1:  # the next component's C_k^T C_k
            b = torch.bmm(a.unsqueeze(1), C)  # C_k^T a
            if k:
                b -= torch.bmm(torch.bmm(a.unsqueeze(1), A[:, :, :k]), loadings[:, :, :k].transpose(1, 2))
            deflate_cross_gram(G, b.squeeze(1), c, (a * a).sum(1))
        T[:, k] = scores[:, :S].T
        A[:, :, k] = a
        tts[:, k] = tt
        loadings[:, :, k] = c
        weights[:, :, k] = w
    return {
        "x_scores": T.transpose(1, 2),
        "y_loadings": loadings,
        "y_mean": y_mean,
        "x_mean": x_mean,
        "x_weights": weights,
        "x_loadings": A / tts.unsqueeze(1),
    }


def _centred_copy(X: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A copy of ``X`` in ``dtype`` on ``device``, centred on its column means."""
    X = X.to(device=device, dtype=dtype, copy=True)
    return X.sub_(X.mean(0))


def _held_out_correlations(
    fit: dict[str, torch.Tensor], Y: torch.Tensor, splits: Sequence[tuple[np.ndarray, np.ndarray]]
) -> torch.Tensor:
    """``(S, q)`` Pearson r of each split's predictions and ``Y`` over the split's test rows."""
    longest = max(len(test) for _, test in splits)
    index = torch.zeros(len(splits), longest, dtype=torch.long)
    valid = torch.zeros(len(splits), longest, dtype=torch.float64)
    for s, (_, test) in enumerate(splits):
        index[s, : len(test)] = torch.as_tensor(test, dtype=torch.long)
        valid[s, : len(test)] = 1
    index, valid = index.to(Y.device), valid.to(Y.device)
    scores = fit["x_scores"]
    scores = scores.gather(1, index.unsqueeze(2).expand(-1, -1, scores.shape[2]))
    pred = torch.baddbmm(fit["y_mean"].unsqueeze(1), scores, fit["y_loadings"].transpose(1, 2))
    return pearson_per_column(pred, Y[index], valid)


def pls_cv_correlations(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    n_components: int = 25,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Brain-Score's ``pls`` metric before aggregation: Pearson r per split and neuroid on held-out rows.

    The path follows :func:`uses_kernel`; both give the same numbers (to ~1e-10 in float64).

    Args:
        X: ``(n_stimuli, n_features)`` model features, any float dtype. On the kernel path (more
            features than stimuli) ``X`` is only read, by chunks of columns, so it may stay a float32
            CPU tensor larger than the rest of the computation (see :func:`pls_memory_bytes`).
        Y: ``(n_stimuli, n_neuroids)`` responses (averaged over repetitions), rows matching ``X``.
        splits: ``(train_indices, test_indices)`` pairs (see :func:`~.splits.brainscore_splits`).
        n_components: PLS components (Brain-Score: 25).
        dtype: dtype of the products with ``X`` (float64: sklearn to ~1e-10; float32 for GPUs, with
            float64 accumulation; see the module docstring).
        device: where to compute (default: ``X``'s device).

    Returns:
        ``(n_splits, n_neuroids)`` float64 correlations (NaN where a prediction or target is constant).
    """
    X = torch.as_tensor(X)
    device = torch.device(device) if device is not None else X.device
    n, p = X.shape
    Y = torch.as_tensor(Y).to(device=device, dtype=torch.float64)
    Y = Y - Y.mean(0)
    train, _ = split_masks(splits, n, device=device)
    if uses_kernel(n, p):
        fit = fit_kernel_pls_masked(centred_gram(X, dtype, device), Y, train, int(min(n_components, p)))
    else:
        fit = fit_pls_masked(_centred_copy(X, dtype, device), Y, train, n_components)
    return _held_out_correlations(fit, Y, splits)


def pls_memory_bytes(
    n_stimuli: int,
    n_features: int,
    n_neuroids: int,
    n_splits: int = 10,
    n_components: int = 25,
    dtype: torch.dtype = torch.float64,
) -> int:
    """Estimated peak bytes :func:`pls_cv_correlations` allocates beyond the features themselves.

    Counts the largest tensors alive together on the path :func:`uses_kernel` picks (float64 unless
    noted; ``e`` bytes per ``dtype`` value; ``n, p, q, S, k`` stimuli, features, neuroids, splits,
    components):

    * primal: the centred copy of ``X`` (``n p e``), the cross-covariances, ``X^T Y`` and the left-out
      rows (``S p q + 2 p q + n_out p e``), weights and ``X_c^T t`` (``2 S p k``), ``C_k^T C_k`` and the
      scores (``S q^2 + S n k``);
    * kernel: the Gram matrix and its transposed copy (``2 n^2``), one column chunk and its products
      (``GRAM_CHUNK_BYTES`` + ``n^2 e``), the per-split train targets, ``K_c Y_k`` and the batched
      product's temporaries (``5 S n q``), scores (``S n k``).

    Allocator slack and the interpreter are not included (the benchmark
    ``benchmarks/bench_feature_memory.py`` prints this estimate next to a measured peak).

    Args:
        n_stimuli, n_features, n_neuroids, n_splits, n_components: problem size.
        dtype: the ``dtype`` passed to :func:`pls_cv_correlations`.

    Returns:
        Bytes.
    """
    n, p, q, S, k = n_stimuli, n_features, n_neuroids, n_splits, n_components
    e = torch.finfo(dtype).bits // 8
    common = 8 * (2 * n * q + 4 * S * n + S * q * q + S * n * k)
    if uses_kernel(n, p):
        chunk = min(GRAM_CHUNK_BYTES, n * p * e)
        return common + 8 * 2 * n * n + chunk + n * n * e + 8 * 5 * S * n * q
    n_out = n - (n * 9) // 10
    return common + n * p * e + 8 * (S * p * q + 2 * p * q + 2 * S * p * k) + n_out * p * e


class PLSRegression:
    """Single PLS regression with sklearn's ``fit`` / ``predict`` API (``scale=False``).

    Fits on the primal path whatever the shape (``coef_`` is ``q x p`` anyway).

    Args:
        n_components: number of components.
        dtype: dtype of the products with ``X``.
    """

    def __init__(self, n_components: int = 25, dtype: torch.dtype = torch.float64) -> None:
        self.n_components = n_components
        self.dtype = dtype
        self.coef_: torch.Tensor | None = None

    def fit(self, X: torch.Tensor | np.ndarray, Y: torch.Tensor | np.ndarray) -> "PLSRegression":
        """Fit on ``(n, p)`` features and ``(n, q)`` (or ``(n,)``) targets."""
        X = torch.as_tensor(X)
        Y = torch.as_tensor(Y).to(device=X.device, dtype=torch.float64)
        self._1d = Y.dim() == 1
        Y = Y.reshape(len(Y), -1)
        y_shift = Y.mean(0)
        fit = fit_pls_masked(
            _centred_copy(X, self.dtype, X.device), Y - y_shift, Y.new_ones(1, len(X)), self.n_components
        )
        W, P = fit["x_weights"][0], fit["x_loadings"][0]
        rotations = W @ torch.linalg.pinv(P.T @ W)
        self.x_mean_ = X.to(torch.float64).mean(0) + fit["x_mean"][0]
        self.intercept_ = fit["y_mean"][0] + y_shift
        self.coef_ = (rotations @ fit["y_loadings"][0].T).T  # (q, p) as sklearn
        return self

    def predict(self, X: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Predict targets for ``(m, p)`` features."""
        if self.coef_ is None:
            raise RuntimeError("PLSRegression.predict called before fit")
        X = torch.as_tensor(X).to(device=self.coef_.device, dtype=torch.float64)
        out = (X - self.x_mean_) @ self.coef_.T + self.intercept_
        return out.squeeze(1) if self._1d else out
