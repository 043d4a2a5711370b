"""Ridge and ordinary least squares regression in torch, batched over cross-validation splits.

brainscore-vision's ``ridge`` metric fits sklearn ``Ridge(alpha=1)`` (``fit_intercept=True``, the
sklearn default; its ``ridge_regression()``) and ``linear_predictivity`` fits ``LinearRegression()``
(least squares with an intercept), each
on the train rows of 10 splits, then correlates predictions and responses per neuroid on the test
rows (Pearson r). Aggregation, as brainscore-vision's ``CrossRegressedCorrelation``: median over
neuroids per split, mean over splits.

Both are solved exactly, all splits in one batched call, from each split's centred train
statistics (:func:`fold_grams`): the ``p x p`` feature Gram matrix when ``p <= n_train`` (that of all
rows minus that of the left-out rows), else the ``n_train x n_train`` kernel (the dual). Ridge solves
``(X_c^T X_c + alpha I) W = X_c^T Y_c`` (or its dual) by Cholesky factorisation; least squares does
the same with ``alpha = 0`` where the Gram matrix is numerically full rank, else takes the
minimum-norm solution from the eigendecomposition (:func:`fold_spectra`: principal axes ``V``,
eigenvalues ``lam``; eigenvalues below ``max(n_train, p) * eps`` of the largest are dropped). sklearn's
``LinearRegression`` (scipy ``lstsq``, cutoff ``eps``) keeps the numerically null direction that
centring creates when ``p >= n_train``, so there its solution depends on rounding; the two agree
whenever the centred train features have full column rank. The eigendecomposition also serves the
ridge-CV metric (``ridgecv.py``).

When ``p <= n_train`` the splits share one factorisation (:func:`downdated_ridge_predictions`): the
Cholesky factor of all rows' Gram matrix (one symmetric product, :func:`symmetric_gram`) and, per
split, the Woodbury correction for its left-out rows -- about a third of the work of one ``p x p``
factorisation per split. Where that correction is ill-conditioned (a split's train rows much closer
to rank deficiency than all rows) the per-split systems above are solved instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from callbacks.brainscore.metrics.correlation import pearson_per_column
from callbacks.brainscore.metrics.kernel_pls import blas_threads

__all__ = [
    "FoldGrams",
    "FoldSpectra",
    "fold_grams",
    "fold_spectra",
    "ridge_coefficients",
    "fold_index",
    "spectral_coefficients",
    "ridge_cv_correlations",
    "linear_cv_correlations",
    "paired_tensors",
    "prepare_cv_inputs",
    "predict_folds",
    "symmetric_gram",
    "downdated_ridge_predictions",
    "symmetric_eigh",
]

GRAM_BLOCK = 256
"""Columns per block of :func:`symmetric_gram` off CPU (only the blocks on and above the diagonal are multiplied)."""

WOODBURY_MIN_PIVOT = 1e-3
"""Smallest pivot of the ``m x m`` downdate system ``I - Z^T Z`` (eigenvalues in ``(0, 1]``) for which
:func:`downdated_ridge_predictions` is used; below it the split's rows change the Gram matrix so much that
the direct factorisation of that split is the accurate one."""


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


@dataclass
class FoldGrams:
    """Each split's centred train statistics (batched over splits ``S``).

    Attributes:
        x_mean: ``(S, p)`` train means of ``X``; y_mean: ``(S, q)`` those of ``Y``.
        cross: ``(S, p, q)`` centred cross products ``X_c^T Y_c``.
        gram: ``(S, p, p)`` centred Gram matrices ``X_c^T X_c`` (primal, ``p <= n_train``), else None.
        centred: ``(S, n_train, p)`` centred train rows (dual, ``p > n_train``), else None.
        y_centred: ``(S, n_train, q)`` centred train targets (dual), else None.
    """

    x_mean: torch.Tensor
    y_mean: torch.Tensor
    cross: torch.Tensor
    gram: torch.Tensor | None
    centred: torch.Tensor | None
    y_centred: torch.Tensor | None


def fold_grams(X: torch.Tensor, Y: torch.Tensor, train: torch.Tensor, out: torch.Tensor) -> FoldGrams:
    """Centred train statistics of every split; the products of all rows minus those of the left-out rows.

    Args:
        X: ``(n, p)`` features, centred globally (any constant shift is fine; centring keeps precision).
        Y: ``(n, q)`` targets, centred globally likewise.
        train: ``(S, n_train)`` train row indices (see :func:`fold_index`).
        out: ``(S, n_out)`` the complementary rows.
    """
    p = X.shape[1]
    n_tr = train.shape[1]
    Xo, Yo = X[out], Y[out]  # (S, n_out, p), (S, n_out, q)
    mu, ymu = (X.sum(0) - Xo.sum(1)) / n_tr, (Y.sum(0) - Yo.sum(1)) / n_tr
    cross = (X.T @ Y) - Xo.transpose(1, 2) @ Yo - n_tr * mu.unsqueeze(-1) * ymu.unsqueeze(1)
    if p <= n_tr:
        gram = (X.T @ X) - Xo.transpose(1, 2) @ Xo - n_tr * mu.unsqueeze(-1) * mu.unsqueeze(1)
        return FoldGrams(mu, ymu, cross, gram, None, None)
    return FoldGrams(mu, ymu, cross, None, X[train] - mu.unsqueeze(1), Y[train] - ymu.unsqueeze(1))


def symmetric_gram(X: torch.Tensor, block: int = GRAM_BLOCK) -> torch.Tensor:
    """``X^T X`` of ``(n, p)`` ``X`` as one symmetric product (half the multiply-adds of a general one).

    On CPU numpy's BLAS ``syrk`` (which numpy's ``matmul`` calls for ``A.T @ A``; torch has no symmetric
    product), with torch's number of threads; elsewhere the column blocks on and above the diagonal, ``block`` columns at a time.
    """
    p = X.shape[1]
    if X.device.type == "cpu" and X.dtype in (torch.float32, torch.float64):
        a = X.detach().contiguous().numpy()
        with blas_threads().limit(limits=torch.get_num_threads(), user_api="blas"):  # torch's thread setting
            return torch.from_numpy(a.T @ a)
    if p <= 2 * block:
        return X.T @ X
    G = X.new_empty(p, p)
    for start in range(0, p, block):
        stop = min(start + block, p)
        part = X[:, start:stop].T @ X[:, start:]  # (b, p - start)
        G[start:stop, start:] = part
        G[start:, start:stop] = part.T
    return G


def downdated_ridge_predictions(
    X: torch.Tensor, Y: torch.Tensor, train: torch.Tensor, out: torch.Tensor, test: torch.Tensor, alpha: float
) -> torch.Tensor | None:
    """Ridge predictions ``(S, n_test, q)`` of every split for its test rows, from one Cholesky factorisation.

    With ``A = X^T X + alpha I = L L^T`` over all rows, a split's centred train system is the downdate
    ``A_s = A - U U^T``, ``U = [X_out^T, sqrt(n_train) mu]`` (its left-out rows and train mean), and the
    Woodbury identity gives ``A_s^{-1} = L^{-T} (I + Z (I - Z^T Z)^{-1} Z^T) L^{-1}`` with ``Z = L^{-1} U``.
    The test rows are left-out rows, so ``L^{-1} x`` of each is already a column of ``Z`` and the
    predictions need only the ``m x m`` system ``I - Z^T Z`` (``m = n_out + 1``): per split one
    triangular solve of ``m`` columns instead of a ``p x p`` downdate, factorisation and solve.

    Args:
        X: ``(n, p)`` globally centred features, ``p <= n_train``; Y: ``(n, q)`` globally centred targets.
        train, out: :func:`fold_index` rows; test: ``(S, n_test)`` sorted test rows, each a left-out row.
        alpha: the penalty (``0``: least squares).

    Returns:
        The predictions, or None where this form is not accurate (``A`` not numerically positive
        definite, a downdate pivot below :data:`WOODBURY_MIN_PIVOT`, a test row that is a train row):
        then the direct per-split path (:func:`ridge_coefficients`) applies.
    """
    n_tr, n_out, p = train.shape[1], out.shape[1], X.shape[1]
    eye = torch.eye(p, dtype=X.dtype, device=X.device)
    L, info = torch.linalg.cholesky_ex(symmetric_gram(X) + alpha * eye)
    pivots = torch.diagonal(L) ** 2
    if int(info) != 0 or not bool(pivots.amin() > pivots.amax() * p * torch.finfo(X.dtype).eps * 1e3):
        return None
    position = torch.searchsorted(out, test)  # where each test row sits among the left-out rows
    if not bool((out.gather(1, position.clamp_max(n_out - 1)) == test).all()):
        return None
    Xo, Yo = X[out], Y[out]  # (S, n_out, p), (S, n_out, q)
    mu, ymu = (X.sum(0) - Xo.sum(1)) / n_tr, (Y.sum(0) - Yo.sum(1)) / n_tr
    root = n_tr ** 0.5
    U = torch.cat([Xo, root * mu.unsqueeze(1)], 1)  # (S, m, p): rows of U^T
    V = torch.cat([Yo, root * ymu.unsqueeze(1)], 1)  # (S, m, q)
    S, m = U.shape[:2]
    Z = torch.linalg.solve_triangular(L, U.reshape(S * m, p).T, upper=False)  # (p, S m): all splits in one solve
    Z = Z.T.reshape(S, m, p).transpose(1, 2)  # (S, p, m)
    b = torch.linalg.solve_triangular(L, X.T @ Y, upper=False) - Z @ V  # L^{-1} X_c^T Y_c of each split
    ZtZ = Z.transpose(1, 2) @ Z
    small, info = torch.linalg.cholesky_ex(torch.eye(m, dtype=X.dtype, device=X.device) - ZtZ)
    if bool((info != 0).any()) or not bool((torch.diagonal(small, dim1=-2, dim2=-1) ** 2).amin() > WOODBURY_MIN_PIVOT):
        return None
    Ztb = Z.transpose(1, 2) @ b  # (S, m, q)
    fitted = Ztb + ZtZ @ torch.cholesky_solve(Ztb, small)  # Z^T A_s^{-1}-solution: row i = u_i^T W_s
    pred = fitted[:, :n_out] - fitted[:, n_out:] / root + ymu.unsqueeze(1)  # x^T W_s - mu^T W_s + y mean
    return pred.gather(1, position.unsqueeze(-1).expand(-1, -1, pred.shape[-1]))


def symmetric_eigh(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ascending eigenvalues ``(S, k)`` and eigenvectors ``(S, k, k)`` of a batch of symmetric matrices (lower
    triangles read), as ``torch.linalg.eigh``; on CPU LAPACK's divide-and-conquer ``syevd`` through scipy (numpy's
    BLAS, with torch's number of threads), faster there than torch's own call."""
    if M.device.type != "cpu" or M.dtype not in (torch.float32, torch.float64):
        return torch.linalg.eigh(M)
    with blas_threads().limit(limits=torch.get_num_threads(), user_api="blas"):
        parts = [scipy.linalg.eigh(m, driver="evd", check_finite=False) for m in M.detach().numpy()]
    return torch.from_numpy(np.stack([w for w, _ in parts])), torch.from_numpy(np.stack([v for _, v in parts]))


def fold_spectra(grams: FoldGrams) -> FoldSpectra:
    """Eigendecomposition of every split's centred train features, batched: of the ``p x p`` Gram matrix
    (primal) or of the ``n_train x n_train`` kernel (dual, then ``V = X_c^T U / s``)."""
    M = grams.gram if grams.gram is not None else grams.centred @ grams.centred.transpose(1, 2)
    lam, U = symmetric_eigh(M)
    valid = lam > lam[:, -1:].clamp_min(0) * (max(M.shape[-1], grams.x_mean.shape[-1]) * torch.finfo(M.dtype).eps)
    if grams.gram is not None:
        V = U
    else:
        s = torch.where(valid, lam, torch.ones_like(lam)).sqrt()
        V = (grams.centred.transpose(1, 2) @ U) / s.unsqueeze(1)
    lam = torch.where(valid, lam, torch.zeros_like(lam))
    return FoldSpectra(V=V * valid.unsqueeze(1), lam=lam, valid=valid, x_mean=grams.x_mean, y_mean=grams.y_mean,
                       cross=grams.cross)


def ridge_coefficients(grams: FoldGrams, alpha: float) -> torch.Tensor:
    """Ridge coefficients ``(S, p, q)`` by batched Cholesky factorisations.

    Primal: ``W = (X_c^T X_c + alpha I)^-1 X_c^T Y_c``; dual: ``W = X_c^T (X_c X_c^T + alpha I)^-1 Y_c``.
    ``alpha = 0`` (least squares) uses the factorisation only where it succeeds with every pivot above
    the rank threshold, and the pseudo-inverse of :func:`fold_spectra` (the minimum-norm solution) for
    the other splits and always in the dual, whose centred kernel is singular.
    """
    M = grams.gram if grams.gram is not None else grams.centred @ grams.centred.transpose(1, 2)
    M = M + alpha * torch.eye(M.shape[-1], dtype=M.dtype, device=M.device)
    L, info = torch.linalg.cholesky_ex(M)
    pivots = torch.diagonal(L, dim1=-2, dim2=-1) ** 2
    limit = max(M.shape[-1], grams.x_mean.shape[-1]) * torch.finfo(M.dtype).eps
    ok = (info == 0) & (pivots.amin(-1) > pivots.amax(-1) * limit)
    if grams.gram is None and alpha <= 0:  # the kernel of centred rows is singular: always the pseudo-inverse
        ok = torch.zeros_like(ok)
    if grams.gram is not None:
        W = torch.cholesky_solve(grams.cross, L)
    else:
        W = grams.centred.transpose(1, 2) @ torch.cholesky_solve(grams.y_centred, L)
    if alpha <= 0 and not bool(ok.all()):
        spectra = fold_spectra(grams)
        pinv = torch.where(spectra.valid, 1.0 / torch.where(spectra.valid, spectra.lam, torch.ones_like(spectra.lam)),
                           torch.zeros_like(spectra.lam))
        W = torch.where(ok[:, None, None], W, spectral_coefficients(spectra, pinv))
    return W


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


def predict_folds(X: torch.Tensor, fit: FoldGrams | FoldSpectra, W: torch.Tensor,
                  rows: torch.Tensor | None = None) -> torch.Tensor:
    """Predictions of every split's coefficients ``W`` (with its train means): ``(S, n, q)`` for all rows of
    ``X``, or ``(S, m, q)`` for each split's own ``rows`` (``(S, m)`` indices, e.g. its test rows)."""
    offset = fit.y_mean - (fit.x_mean.unsqueeze(1) @ W).squeeze(1)  # (S, q)
    if rows is not None:
        return X[rows] @ W + offset.unsqueeze(1)
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
    is the removed mean of ``Y``), the train / left-out indices (:func:`fold_index`) and the ``(S, n_test)`` test indices."""
    X, Y = paired_tensors(X, Y, dtype, device)
    device = X.device
    y_shift = Y.mean(0)
    X, Y = X - X.mean(0), Y - y_shift
    train, out = fold_index(splits, X.shape[0], device=device)
    test = torch.stack([torch.as_tensor(np.sort(te), dtype=torch.long) for _, te in splits]).to(device)
    return X, Y, train, out, test, y_shift


def _ridge_test_predictions(X: torch.Tensor, Y: torch.Tensor, train: torch.Tensor, out: torch.Tensor,
                            test: torch.Tensor, alpha: float) -> torch.Tensor:
    """``(S, n_test, q)`` test predictions: the downdate form where it is accurate, else each split's own system."""
    pred = downdated_ridge_predictions(X, Y, train, out, test, alpha) if X.shape[1] <= train.shape[1] else None
    if pred is None:
        grams = fold_grams(X, Y, train, out)
        pred = predict_folds(X, grams, ridge_coefficients(grams, alpha), test)
    return pred


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
    return pearson_per_column(_ridge_test_predictions(X, Y, train, out, test, alpha), Y[test])


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
    return pearson_per_column(_ridge_test_predictions(X, Y, train, out, test, 0.0), Y[test])
