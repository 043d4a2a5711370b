"""NIPALS PLS2 through the stimulus Gram matrix (kernel PLS), and the component step both PLS paths share.

The PLS metric (:mod:`callbacks.brainscore.metrics.pls`) fits sklearn's ``PLSRegression(scale=False)``
(NIPALS, PLS2, regression-mode deflation) on every train split at once. A component's weight vector
``w`` is the top left singular vector of the deflated cross-covariance ``C_k = X_k^T Y_k``; with
``v`` the top eigenvector of the ``q x q`` matrix ``G_k = C_k^T C_k``, ``w ~ C_k v``. Both paths keep
``G_k`` up to date by the same rank-two update (:func:`deflate_cross_gram`) and take ``v`` from
:func:`top_eigenvectors`; they differ in how they reach ``X``:

* the primal path (``pls.py``) keeps ``C_k`` (``p x q`` per split) and passes over ``X`` twice a component;
* this kernel path never touches ``X`` after building the centred Gram matrix ``K = X_g X_g^T``
  (``n x n``, :func:`centred_gram`): it is the choice when the features outnumber the stimuli. It is
  the kernel formulation of Rännar et al. (1994, J. Chemometrics 8:111) written for PLS2 with
  regression deflation: with ``Z_k = K_c Y_k`` (``n x q`` per split, ``K_c`` centred on the split's
  train rows algebraically, :func:`centred_product`), a component needs ``r = Z_k v = X_c w ||X_c^T u||``
  (``u = Y_k v``), the deflated scores ``t = r - T (T_train^T r) / diag(T_train^T T_train)``, and one
  product ``s = K_c t`` for ``||a||^2 = t^T s`` and ``C_k^T a = Z_k^T t`` (``a = X_c^T t``, the X
  loading times ``t^T t``), after which ``Z_{k+1} = Z_k - s c^T``.

Both paths return the scores of every row under every split's fit: on train rows the NIPALS scores,
on the other rows the held-out scores ``(x - x_mean) @ x_rotations_`` sklearn's ``transform`` gives.
A split predicts ``scores @ y_loadings.T + y_mean``.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.linalg
import torch
from threadpoolctl import ThreadpoolController

__all__ = [
    "EXHAUSTED",
    "blas_threads",
    "GRAM_CHUNK_BYTES",
    "centred_gram",
    "centred_product",
    "deflate_cross_gram",
    "fit_kernel_pls_masked",
    "top_eigenvectors",
]

GRAM_CHUNK_BYTES = 2**27
"""Bytes of one column chunk of the features converted for the Gram matrix (128 MiB)."""

EXHAUSTED = 1e-14
"""A component whose top eigenvalue of ``C_k^T C_k`` is below this fraction of the first one's is
numerically zero (the features or targets are exhausted); it gets zero scores and loadings."""

_GRAM_ROW_BLOCK = 512  # CPU: row blocks of K; only the blocks on or below the diagonal are multiplied


@functools.cache
def blas_threads() -> ThreadpoolController:
    """The BLAS libraries loaded in this process (looked up once)."""
    return ThreadpoolController()


def top_eigenvectors(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top eigenvalue and unit eigenvector of each symmetric matrix of a batch.

    Args:
        G: ``(S, q, q)`` symmetric matrices (only the lower triangle is read on CPU).

    Returns:
        ``(S,)`` top eigenvalues and ``(S, q)`` eigenvectors. Exact (LAPACK): on CPU ``dsyevr``
        computes only the top pair (a fraction of a full decomposition); on other devices the
        batched ``torch.linalg.eigh``.
    """
    S, q = G.shape[0], G.shape[-1]
    if G.device.type != "cpu":
        values, vectors = torch.linalg.eigh(G)
        return values[:, -1], vectors[:, :, -1]
    values = np.empty(S)
    vectors = np.empty((S, q))
    with blas_threads().limit(limits=1, user_api="blas"):  # threads only wait on a q x q problem
        for s, g in enumerate(G.numpy()):
            value, vector = scipy.linalg.eigh(g, subset_by_index=(q - 1, q - 1), driver="evr", check_finite=False)
            values[s], vectors[s] = value[0], vector[:, 0]
    return torch.from_numpy(values).to(G.dtype), torch.from_numpy(vectors).to(G.dtype)


def deflate_cross_gram(G: torch.Tensor, b: torch.Tensor, c: torch.Tensor, aa: torch.Tensor) -> None:
    """In place ``G <- (C - a c^T)^T (C - a c^T) = G - c b^T - b c^T + ||a||^2 c c^T`` with ``b = C^T a``.

    Args:
        G: ``(S, q, q)`` matrices ``C^T C``.
        b: ``(S, q)`` products ``C^T a``.
        c: ``(S, q)`` y loadings.
        aa: ``(S,)`` squared norms of ``a``.
    """
    d = (b - 0.5 * aa.unsqueeze(1) * c).unsqueeze(2)
    G.baddbmm_(c.unsqueeze(2), d.transpose(1, 2), alpha=-1)
    G.baddbmm_(d, c.unsqueeze(1), alpha=-1)


def centred_gram(
    X: torch.Tensor,
    dtype: torch.dtype = torch.float64,
    device: torch.device | None = None,
    chunk_bytes: int = GRAM_CHUNK_BYTES,
) -> torch.Tensor:
    """``X_g X_g^T`` in float64, ``X_g = X - X.mean(0)``, without a copy of ``X``.

    ``X`` is read by chunks of columns: each is converted to ``dtype`` on ``device`` (a copy of at most
    ``chunk_bytes``), centred, and its product accumulated into the float64 result. With
    ``dtype=torch.float32`` the chunk products are float32 (fast on GPUs) and only their sum is float64.

    Args:
        X: ``(n, p)`` features on any device, any float dtype.
        dtype: dtype of the chunk products.
        device: where to compute (default: ``X``'s device).
        chunk_bytes: size of one converted chunk.

    Returns:
        ``(n, n)`` float64 Gram matrix of the globally centred rows.
    """
    n, p = X.shape
    device = X.device if device is None else torch.device(device)
    cols = max(1, chunk_bytes // (n * torch.finfo(dtype).bits // 8))
    K = torch.zeros(n, n, dtype=torch.float64, device=device)
    # on CPU multiply only the row blocks on or below the diagonal (a symmetric product at ~60% of the work)
    edges = list(range(0, n, _GRAM_ROW_BLOCK)) + [n] if device.type == "cpu" else [0, n]
    for j in range(0, p, cols):
        chunk = X[:, j : j + cols].to(device=device, dtype=dtype, copy=True)
        chunk -= chunk.mean(0)
        for i0, i1 in zip(edges[:-1], edges[1:]):
            part = chunk[i0:i1] @ chunk[:i1].T
            K[i0:i1, :i1] += part if dtype == torch.float64 else part.double()
    if len(edges) > 2:  # mirror the lower triangle (one n x n copy)
        K = K.tril_().add_(K.tril(-1).T)
    return K


def centred_product(K: torch.Tensor, V: torch.Tensor, train: torch.Tensor, n_train: torch.Tensor) -> torch.Tensor:
    """``K_c V`` for every split: ``K`` centred on the split's train rows, ``K_c = H K H^T``, ``H = I - 1 m^T / n_s``.

    Args:
        K: ``(n, n)`` Gram matrix of (globally centred) rows.
        V: ``(S, n, r)`` vectors per split.
        train: ``(S, n)`` 0/1 train masks ``m``.
        n_train: ``(S,)`` train counts ``n_s``.

    Returns:
        ``(S, n, r)``: every row, train or not, is centred on the train mean (as sklearn's ``transform``).
    """
    S, n, r = V.shape
    w = train.unsqueeze(2) / n_train[:, None, None]
    V = V - train.unsqueeze(2) * (V.sum(1, keepdim=True) / n_train[:, None, None])  # H^T V
    KV = (K @ V.transpose(0, 1).reshape(n, S * r)).reshape(n, S, r).transpose(0, 1)
    return KV - (w * KV).sum(1, keepdim=True)  # H (K H^T V)


def fit_kernel_pls_masked(
    K: torch.Tensor,
    Y: torch.Tensor,
    train: torch.Tensor,
    n_components: int = 25,
) -> dict[str, torch.Tensor]:
    """Fit one PLS regression per train mask from the Gram matrix of the rows, all at once (float64).

    Args:
        K: ``(n, n)`` float64 Gram matrix ``X_g X_g^T`` of the globally centred features (:func:`centred_gram`).
        Y: ``(n, q)`` float64 targets, centred globally.
        train: ``(S, n)`` 0/1 masks of the rows each fit uses.
        n_components: PLS components.

    Returns:
        dict with ``x_scores`` (S, n, k): the scores of every row under each split's fit (train rows:
        NIPALS scores; other rows: held-out scores), ``y_loadings`` (S, q, k) and ``y_mean`` (S, q).
    """
    n, q = Y.shape
    S = train.shape[0]
    m = train.to(torch.float64)
    n_s = m.sum(1)
    y_mean = (m @ Y) / n_s[:, None]
    Ys = m.unsqueeze(2) * (Y.unsqueeze(0) - y_mean.unsqueeze(1))  # (S, n, q) train rows, train-centred
    Z = centred_product(K, Ys, m, n_s)  # K_c Y_k, every row
    G = Ys.transpose(1, 2) @ Z  # C^T C
    G = 0.5 * (G + G.transpose(1, 2))
    T = K.new_zeros(S, n_components, n)
    tts = K.new_ones(S, n_components)
    loadings = K.new_zeros(S, q, n_components)
    first = None
    for k in range(n_components):
        value, v = top_eigenvectors(G)
        first = value if first is None else first
        ok = value > EXHAUSTED * first
        r = torch.bmm(Z, v.unsqueeze(2)).squeeze(2)  # K_c u = X_c w ||C_k v||, every row
        if k:  # deflate: subtract the projections on the earlier train scores
            proj = torch.bmm(T[:, :k] * m.unsqueeze(1), r.unsqueeze(2)).squeeze(2) / tts[:, :k]
            r = r - torch.bmm(proj.unsqueeze(1), T[:, :k]).squeeze(1)
        t_all = torch.where(ok.unsqueeze(1), r * value.clamp_min(torch.finfo(r.dtype).tiny).rsqrt().unsqueeze(1), 0.0)
        t = t_all * m
        tt = torch.where(ok, (t * t).sum(1), 1.0)
        c = torch.bmm(t.unsqueeze(1), Ys).squeeze(1) / tt.unsqueeze(1)
        s = centred_product(K, t.unsqueeze(2), m, n_s).squeeze(2)  # K_c t
        b = torch.bmm(t.unsqueeze(1), Z).squeeze(1)  # C_k^T a = Y_k^T K_c t
        deflate_cross_gram(G, b, c, (t * s).sum(1))
        Z.baddbmm_(s.unsqueeze(2), c.unsqueeze(1), alpha=-1)
        T[:, k] = t_all
        tts[:, k] = tt
        loadings[:, :, k] = c
    return {"x_scores": T.transpose(1, 2), "y_loadings": loadings, "y_mean": y_mean}
