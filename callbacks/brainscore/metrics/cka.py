"""Linear centred kernel alignment (CKA) as brainscore-vision's ``cka`` and ``cka_cv`` metrics, in torch.

brainscore-vision's ``cka`` is the *unbiased* linear CKA (``unbiased=True`` by default; Song et al.'s
unbiased HSIC estimator with the linear kernel, Kornblith et al. 2019) of features ``X`` and responses
``Y`` over all stimuli: ``hsic(X, Y) / (sqrt(hsic(X, X) hsic(Y, Y)) + 1e-12)``, and 0 where
``hsic(X, X) hsic(Y, Y) <= 0``. ``cka_biased`` is the classic centred version
``||X_c^T Y_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F)``. ``cka_cv`` computes it on the *test*
rows of each of 10 splits (``test_size=0.9``: 90% of the stimuli; the train rows are unused) and
averages over splits.

Nothing of size ``n x n`` is formed: with linear kernels ``K = X X^T``, ``L = Y Y^T`` (diagonals
zeroed), ``tr(K L) = ||X^T Y||_F^2 - sum_i ||x_i||^2 ||y_i||^2`` and ``K 1 = X (X^T 1) - diag(X X^T)``,
so every term costs ``O(n p q)``; the Gram matrices of a subset are those of all rows minus those of
the left-out rows. The estimators are invariant to a constant shift of ``X`` or ``Y``, so the data
are centred once for precision.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from callbacks.brainscore.metrics.ceiling import spearman_brown
from callbacks.brainscore.metrics.rdm import repetition_halves
from callbacks.brainscore.metrics.ridge import paired_tensors, symmetric_gram

__all__ = ["hsic", "cka_score", "cka_cv_scores", "cka_split_half_ceiling"]


def _subsets(n: int, keep: Sequence[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row indices kept ``(S, n_s)``, dropped ``(S, n - n_s)`` and the ``(S, n)`` 0/1 mask of kept rows."""
    sizes = {len(k) for k in keep}
    if len(sizes) != 1:
        raise ValueError(f"CKA subsets must all have the same size, got {sorted(sizes)}")
    mask = torch.zeros(len(keep), n, dtype=torch.bool, device=device)
    for s, k in enumerate(keep):
        mask[s, torch.as_tensor(np.asarray(k), dtype=torch.long, device=device)] = True
    kept = torch.stack([m.nonzero().squeeze(1) for m in mask])
    dropped = torch.stack([(~m).nonzero().squeeze(1) for m in mask])
    return kept, dropped, mask


def _cross_frobenius(A: torch.Tensor, B: torch.Tensor, kept: torch.Tensor, dropped: torch.Tensor,
                     shift_a: torch.Tensor | None = None, shift_b: torch.Tensor | None = None) -> torch.Tensor:
    """``||(A_s - shift_a)^T (B_s - shift_b)||_F^2`` per subset ``s`` (shifts: ``(S, a)``, ``(S, b)`` or None).

    ``B is A`` (with equal shifts) takes symmetric products (:func:`~.ridge.symmetric_gram`): that of all
    rows once, then that of each subset's dropped rows.
    """
    n_s = kept.shape[1]
    a, b = A.shape[1], B.shape[1]
    if a * b <= n_s * (a + b) and B is A:  # symmetric: the Gram matrix of all rows minus the dropped ones'
        G = symmetric_gram(A)
        totals = []
        for s in range(kept.shape[0]):
            F = G - symmetric_gram(A[dropped[s]]) if dropped.shape[1] else G.clone()
            if shift_a is not None:
                F.sub_(n_s * shift_a[s].unsqueeze(-1) * shift_a[s].unsqueeze(0))
            totals.append(F.reshape(-1) @ F.reshape(-1))
        return torch.stack(totals)
    if a * b <= n_s * (a + b):  # feature space: all rows minus the dropped ones
        F = (A.T @ B).expand(kept.shape[0], a, b)
        if dropped.shape[1]:
            F = F - A[dropped].transpose(1, 2) @ B[dropped]
        if shift_a is not None:
            F = F - n_s * shift_a.unsqueeze(-1) * shift_b.unsqueeze(1)
        return (F * F).sum((1, 2))
    As, Bs = A[kept], B[kept]  # stimulus space: ||K_s L_s|| with n_s x n_s kernels
    if shift_a is not None:
        As, Bs = As - shift_a.unsqueeze(1), Bs - shift_b.unsqueeze(1)
    return ((As @ As.transpose(1, 2)) * (Bs @ Bs.transpose(1, 2))).sum((1, 2))


def hsic(A: torch.Tensor, B: torch.Tensor, kept: torch.Tensor, dropped: torch.Tensor, mask: torch.Tensor,
         unbiased: bool = True) -> torch.Tensor:
    """Linear-kernel HSIC of ``A`` and ``B`` on each row subset, ``(S,)``.

    Args:
        A: ``(n, a)`` and B: ``(n, b)`` data, rows matching.
        kept, dropped, mask: each subset's rows, the others, and its 0/1 row mask ``(S, n)``.
        unbiased: Song et al.'s unbiased estimator (brainscore-vision's ``cka``), else the biased
            ``sum(HKH * HLH)`` of ``cka_biased``.
    """
    m = mask.to(A.dtype)
    n = kept.shape[1]
    if not unbiased:
        mu_a, mu_b = (m @ A) / n, (m @ B) / n
        return _cross_frobenius(A, B, kept, dropped, mu_a, mu_b)
    if n < 4:
        raise ValueError(f"the unbiased HSIC needs at least 4 stimuli, got {n}")
    na, nb = (A * A).sum(1), (B * B).sum(1)  # kernel diagonals, (n,)
    term1 = _cross_frobenius(A, B, kept, dropped) - m @ (na * nb)
    k1 = (m @ A) @ A.T - na  # (S, n): row sums of the zero-diagonal kernel over the subset
    l1 = (m @ B) @ B.T - nb
    term2 = (k1 * m).sum(1) * (l1 * m).sum(1)
    term3 = (k1 * l1 * m).sum(1)
    return (term1 + term2 / ((n - 1.0) * (n - 2.0)) - 2.0 * term3 / (n - 2.0)) / (n * (n - 3.0))


def _cka(X: torch.Tensor, Y: torch.Tensor, keep: Sequence[np.ndarray], unbiased: bool) -> torch.Tensor:
    """CKA per row subset, ``(S,)``."""
    X, Y = X - X.mean(0), Y - Y.mean(0)
    kept, dropped, mask = _subsets(X.shape[0], keep, X.device)
    xy = hsic(X, Y, kept, dropped, mask, unbiased)
    xx = hsic(X, X, kept, dropped, mask, unbiased)
    yy = hsic(Y, Y, kept, dropped, mask, unbiased)
    prod = xx * yy
    if unbiased:  # brainscore-vision: 0 when the product is not positive, eps 1e-12 in the denominator
        return torch.where(prod > 0, xy / (prod.clamp_min(0).sqrt() + 1e-12), torch.zeros_like(xy))
    return xy / prod.sqrt()


def cka_score(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    unbiased: bool = True,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """brainscore-vision's ``cka`` (``unbiased=False``: ``cka_biased``) of all stimuli: a 0-d tensor.

    Args:
        X: ``(n_stimuli, n_features)`` model features.
        Y: ``(n_stimuli, n_neuroids)`` responses, rows matching ``X``.
        unbiased: the unbiased estimator (brainscore-vision's default).
        dtype: computation dtype.
        device: where to compute (default: ``X``'s device).
    """
    X, Y = paired_tensors(X, Y, dtype, device)
    return _cka(X, Y, [np.arange(X.shape[0])], unbiased)[0]


def cka_cv_scores(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    unbiased: bool = True,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """brainscore-vision's ``cka_cv`` before aggregation: CKA on each split's *test* rows, ``(n_splits,)``.

    brainscore-vision builds these splits with ``test_size=0.9`` (stratified by ``object_name`` where
    given, ``random_state=1``); its score is the mean over splits.

    Args:
        X: ``(n_stimuli, n_features)`` model features.
        Y: ``(n_stimuli, n_neuroids)`` responses, rows matching ``X``.
        splits: ``(train_indices, test_indices)`` pairs; only the test rows are used.
        unbiased: the unbiased estimator (brainscore-vision's default).
        dtype: computation dtype.
        device: where to compute (default: ``X``'s device).
    """
    X, Y = paired_tensors(X, Y, dtype, device)
    return _cka(X, Y, [te for _, te in splits], unbiased)


def cka_split_half_ceiling(
    responses: torch.Tensor | np.ndarray,
    unbiased: bool = True,
    n_splits: int = 10,
    random_state: int = 1,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """The CKA analogue of the split-half ceiling: the ceiling that fits the ``cka`` metric.

    For each split of the repetitions in halves (:func:`~.rdm.repetition_halves`, those of the
    internal-consistency ceiling), the CKA of the two half means, Spearman-Brown corrected to the full
    number of repetitions (``2 c / (1 + c)``); the ceiling is the mean over splits.

    Returns:
        dict with ``ceiling`` (0-d) and ``per_split`` ``(n_splits,)``.
    """
    h1, h2 = repetition_halves(responses, n_splits, random_state, dtype, device)
    everything = [np.arange(h1.shape[1])]
    per_split = spearman_brown(torch.cat([_cka(a, b, everything, unbiased) for a, b in zip(h1, h2)]))
    return {"ceiling": per_split.mean(), "per_split": per_split}
