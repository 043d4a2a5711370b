"""Torch PLS equals sklearn PLSRegression(scale=False); batched CV correlations equal a per-split loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cross_decomposition import PLSRegression as SkPLS

from callbacks.brainscore.metrics.correlation import pearson_per_column
from callbacks.brainscore.metrics.pls import PLSRegression, pls_cv_correlations
from callbacks.brainscore.metrics.splits import brainscore_splits


def _data(n=120, p=40, q=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) + 2.0
    Y = X @ rng.normal(size=(p, q)) * 0.1 + rng.normal(size=(n, q))
    return X, Y


@pytest.mark.parametrize("p,q,k", [(40, 7, 10), (6, 9, 6), (30, 1, 5)])
def test_matches_sklearn_converged(p, q, k):
    X, Y = _data(p=p, q=q)
    Y = Y[:, 0] if q == 1 else Y
    ref = SkPLS(n_components=k, scale=False, max_iter=20000, tol=1e-20).fit(X, Y)
    ours = PLSRegression(k).fit(X, Y)
    np.testing.assert_allclose(ours.predict(X).numpy(), ref.predict(X), atol=1e-6)
    np.testing.assert_allclose(ours.coef_.numpy(), ref.coef_, atol=1e-6)


def test_cv_correlations_match_sklearn_per_split_loop():
    X, Y = _data(n=150, p=60, q=8, seed=1)
    splits = brainscore_splits(150, np.repeat(np.arange(5), 30))
    r = pls_cv_correlations(X, Y, splits, n_components=25).numpy()
    ref = []
    for tr, te in splits:
        pred = SkPLS(n_components=25, scale=False).fit(X[tr], Y[tr]).predict(X[te])
        ref.append([np.corrcoef(pred[:, j], Y[te, j])[0, 1] for j in range(Y.shape[1])])
    ref = np.array(ref)
    assert r.shape == (10, 8)
    # Brain-Score aggregate: median over neuroids, mean over splits
    assert abs(np.median(r, 1).mean() - np.median(ref, 1).mean()) < 0.005
    np.testing.assert_allclose(r, ref, atol=0.02)  # sklearn stops its power iteration at tol 1e-6


def test_float32_close_to_float64():
    X, Y = _data()
    splits = brainscore_splits(120)
    r64 = pls_cv_correlations(X, Y, splits, n_components=10)
    r32 = pls_cv_correlations(X, Y, splits, n_components=10, dtype=torch.float32)
    assert torch.allclose(r64.float(), r32, atol=1e-3)


def test_pearson_constant_column_is_nan_and_mask_selects_rows():
    x = torch.tensor([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0], [10.0, 5.0]], dtype=torch.float64)
    y = torch.tensor([[2.0, 1.0], [4.0, 3.0], [6.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    r = pearson_per_column(x, y, torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64))
    assert r[0].item() == pytest.approx(1.0) and torch.isnan(r[1])


def test_splits_are_brainscore_splits():
    from sklearn.model_selection import StratifiedShuffleSplit

    labels = np.repeat(np.arange(4), 10)
    ours = brainscore_splits(40, labels)
    ref = list(StratifiedShuffleSplit(n_splits=10, train_size=0.9, random_state=1).split(np.zeros(40), labels))
    assert len(ours) == 10 and all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(ours, ref))
    assert all(len(te) == 4 for _, te in ours)
