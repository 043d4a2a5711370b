"""Representational dissimilarity (RDM) metrics as brainscore-vision's ``rdm`` and ``rdm_cv``, in torch.

brainscore-vision's ``RDM`` is ``1 - np.corrcoef`` between stimuli (each stimulus' features or
neuroid responses, Pearson r over them); ``RDMSimilarity`` is scipy's ``spearmanr`` between the
upper triangles (``k=1``) of the two RDMs; ``rdm`` compares the model's and the brain's RDMs over
all stimuli. ``rdm_cv`` computes the same on the *test* rows of each of 10 splits
(``test_size=0.9``; the train rows are unused) and averages over splits. rsatoolbox's
``calc_rdm(method='correlation')`` and ``compare(method='spearman')`` are the same two steps.

The correlations come from one symmetric product (:func:`~.ridge.symmetric_gram`); ranks are average
ranks of ties (as ``scipy.stats.rankdata``), and Spearman's rho is the Pearson r of the ranks. The RDM
of a subset of stimuli is the submatrix of the full RDM (a correlation between two stimuli does not
depend on the others), so ``rdm_cv`` computes the correlations and sorts each upper triangle once; a
split's ranks are then the running count of its pairs along that order (ties averaged where present).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from sklearn.model_selection import ShuffleSplit

from callbacks.brainscore.metrics.ceiling import spearman_brown
from callbacks.brainscore.metrics.ridge import paired_tensors, symmetric_gram
from neuroalign.core.errors import ConfigError

__all__ = [
    "rdm",
    "average_ranks",
    "spearman",
    "rdm_similarity",
    "rdm_score",
    "rdm_cv_scores",
    "repetition_halves",
    "rdm_split_half_ceiling",
]


def _correlations(X: torch.Tensor) -> torch.Tensor:
    """``(n, n)`` Pearson r between the rows of ``X`` (``np.corrcoef``), from one symmetric product."""
    Z = _standardised_rows(X)
    return symmetric_gram(Z.T).clamp_(-1.0, 1.0)


def _standardised_rows(X: torch.Tensor) -> torch.Tensor:
    """Rows centred and scaled to unit norm, so that their inner products are Pearson r."""
    Z = X - X.mean(1, keepdim=True)
    return Z / Z.norm(dim=1, keepdim=True)


def _upper_correlations(X: torch.Tensor) -> torch.Tensor:
    """The strict upper triangle of :func:`_correlations` in ``np.triu_indices(n, k=1)`` order."""
    return _upper(_correlations(X))


def rdm(X: torch.Tensor | np.ndarray, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """brainscore-vision's ``RDM``: ``1 - r`` between stimuli (rows of ``(n_stimuli, n_units)`` ``X``), ``(n, n)``."""
    X = torch.as_tensor(X)
    X = X.to(device=torch.device(device) if device is not None else X.device, dtype=dtype)
    return 1.0 - _correlations(X.reshape(len(X), -1))


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of a 1-D tensor, ties sharing their average rank (``scipy.stats.rankdata``)."""
    values, order = torch.sort(x)
    ranks = torch.empty_like(x)
    if not bool((values[1:] == values[:-1]).any()):  # no ties: the inverse permutation
        ranks[order] = torch.arange(1, len(x) + 1, dtype=x.dtype, device=x.device)
        return ranks
    _, inverse, counts = torch.unique_consecutive(values, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).to(x.dtype)
    ranks[order] = (ends - (counts.to(x.dtype) - 1.0) / 2.0)[inverse]
    return ranks


def _rank_correlation(ra: torch.Tensor, rb: torch.Tensor) -> torch.Tensor:
    """Pearson r of two rank vectors (Spearman's rho of the values they rank), a 0-d tensor."""
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return (ra @ rb) / (ra.norm() * rb.norm())


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rho of two 1-D tensors (Pearson r of their average ranks), a 0-d tensor."""
    return _rank_correlation(average_ranks(a), average_ranks(b))


def _upper(M: torch.Tensor) -> torch.Tensor:
    """The strict upper triangle of a square matrix, row by row (``np.triu_indices(n, k=1)`` order)."""
    n = M.shape[0]
    i, j = torch.triu_indices(n, n, offset=1, device=M.device)
    return M.reshape(-1).index_select(0, i * n + j)


def rdm_similarity(rdm1: torch.Tensor, rdm2: torch.Tensor) -> torch.Tensor:
    """brainscore-vision's ``RDMSimilarity``: Spearman's rho of the two RDMs' upper triangles."""
    return spearman(_upper(rdm1), _upper(rdm2))


def rdm_score(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """brainscore-vision's ``rdm`` metric of features ``X`` and responses ``Y`` (rows = stimuli): a 0-d tensor."""
    X, Y = paired_tensors(X, Y, dtype, device)
    return spearman(_upper_correlations(X), _upper_correlations(Y))


def rdm_cv_scores(
    X: torch.Tensor | np.ndarray,
    Y: torch.Tensor | np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """brainscore-vision's ``rdm_cv`` before aggregation: the ``rdm`` score on each split's *test* rows.

    Args:
        X: ``(n_stimuli, n_features)`` model features.
        Y: ``(n_stimuli, n_neuroids)`` responses, rows matching ``X``.
        splits: ``(train_indices, test_indices)`` pairs (brainscore-vision: ``test_size=0.9``); only
            the test rows are used.
        dtype: computation dtype.
        device: where to compute (default: ``X``'s device).

    Returns:
        ``(n_splits,)`` Spearman rhos; brainscore-vision's score is their mean.
    """
    X, Y = paired_tensors(X, Y, dtype, device)
    n = X.shape[0]
    i, j = torch.triu_indices(n, n, offset=1, device=X.device)
    sx, sy = (_SortedPairs.of(_correlations(A).reshape(-1).index_select(0, i * n + j), i, j) for A in (X, Y))
    place_y = torch.empty_like(sy.order)
    place_y[sy.order] = torch.arange(len(place_y), device=X.device)
    place_y = place_y.index_select(0, sx.order)  # each pair of the x order: its place in the y order
    scores = []
    for _, te in splits:  # a split's RDM is a submatrix of the full one: its pairs keep their sorted order
        member = torch.zeros(n, dtype=torch.bool, device=X.device)
        member[torch.as_tensor(np.asarray(te), dtype=torch.long, device=X.device)] = True
        rx, keep = sx.subset_ranks(member)
        ry = sy.subset_ranks(member)[0].index_select(0, place_y)
        kept = keep.sum(dtype=torch.float64)
        rx = torch.where(keep, rx, 0.0)  # the split's pairs only
        shift = kept * ((kept + 1.0) / 2.0) ** 2  # m * mean^2: average ranks 1..m have mean (m + 1) / 2
        scores.append((rx @ ry - shift) / ((rx @ rx - shift) * (torch.where(keep, ry, 0.0) @ ry - shift)).sqrt())
    return torch.stack(scores).to(X.dtype)


class _SortedPairs(NamedTuple):
    """One RDM's upper triangle sorted once, for the ranks of the pairs of any subset of stimuli.

    Attributes:
        order: ``(N,)`` the sorting permutation of the triangle's pairs.
        first, second: ``(N,)`` the two stimuli of each pair, in sorted order.
        group: ``(N,)`` tie group of each sorted place, None when no values tie; ends: ``(G,)`` each
            group's last sorted place.
    """

    order: torch.Tensor
    first: torch.Tensor
    second: torch.Tensor
    group: torch.Tensor | None
    ends: torch.Tensor | None

    @classmethod
    def of(cls, values: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> "_SortedPairs":
        """Sort the pair ``values`` (pair ``k`` of stimuli ``first[k]``, ``second[k]``) and note their ties."""
        values, order = torch.sort(values)
        first, second = first.index_select(0, order), second.index_select(0, order)
        if not bool((values[1:] == values[:-1]).any()):
            return cls(order, first, second, None, None)
        _, group, counts = torch.unique_consecutive(values, return_inverse=True, return_counts=True)
        return cls(order, first, second, group, torch.cumsum(counts, 0) - 1)

    def subset_ranks(self, member: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ranks, keep)`` in sorted order for the stimuli where ``member`` (``(n,)`` bool) is true: ``keep``
        (bool) marks the pairs of two members, ``ranks`` (float64) their average ranks among those pairs
        (arbitrary elsewhere)."""
        keep = member.index_select(0, self.first) & member.index_select(0, self.second)
        count = torch.cumsum(keep, 0, dtype=torch.float64)  # running count of kept pairs: their ranks where nothing ties
        if self.group is not None:  # ties: each group's kept pairs share the mean of their ranks
            last = count.index_select(0, self.ends)
            size = last - torch.cat([last.new_zeros(1), last[:-1]])
            count = (last - (size - 1.0) / 2.0).index_select(0, self.group)
        return count, keep


def repetition_halves(
    responses: torch.Tensor | np.ndarray,
    n_splits: int = 10,
    random_state: int = 1,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two ``(n_splits, stimuli, neuroids)`` half means of ``(repetitions, stimuli, neuroids)`` responses.

    The halves are those of the internal-consistency ceiling (``ceiling.py``): sklearn
    ``ShuffleSplit(train_size=0.5, random_state=1)`` over the repetition indices; missing trials
    (NaN) are left out of a half's mean.

    Raises:
        ConfigError: fewer than 2 repetitions.
    """
    R = torch.as_tensor(responses).to(device=device, dtype=dtype)
    if R.dim() != 3 or R.shape[0] < 2:
        raise ConfigError(
            f"split-half ceilings need (repetitions >= 2, stimuli, neuroids) responses, got shape {tuple(R.shape)} "
            "(responses.npy)"
        )
    splits = ShuffleSplit(n_splits=n_splits, train_size=0.5, random_state=random_state).split(np.zeros(R.shape[0]))
    halves = [(R[torch.as_tensor(a)].nanmean(0), R[torch.as_tensor(b)].nanmean(0)) for a, b in splits]
    return torch.stack([h[0] for h in halves]), torch.stack([h[1] for h in halves])


def rdm_split_half_ceiling(
    responses: torch.Tensor | np.ndarray,
    n_splits: int = 10,
    random_state: int = 1,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Split-half reliability of the brain's RDM: the ceiling that fits the ``rdm`` metric.

    For each split of the repetitions in halves (:func:`repetition_halves`), the ``rdm`` score of
    the two half-mean RDMs, Spearman-Brown corrected to the full number of repetitions
    (``2 rho / (1 + rho)``); the ceiling is the mean over splits.

    Returns:
        dict with ``ceiling`` (0-d) and ``per_split`` ``(n_splits,)``.
    """
    h1, h2 = repetition_halves(responses, n_splits, random_state, dtype, device)
    rho = torch.stack([spearman(_upper_correlations(a), _upper_correlations(b)) for a, b in zip(h1, h2)])
    per_split = spearman_brown(rho)
    return {"ceiling": per_split.mean(), "per_split": per_split}
