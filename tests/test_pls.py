"""Torch PLS equals sklearn PLSRegression(scale=False) on both paths (primal and kernel), batched over splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cross_decomposition import PLSRegression as SkPLS

from callbacks.brainscore.metrics import pls as pls_module
from callbacks.brainscore.metrics.correlation import pearson_per_column
from callbacks.brainscore.metrics.kernel_pls import centred_gram, fit_kernel_pls_masked
from callbacks.brainscore.metrics.pls import (
    PLSRegression,
    fit_pls_masked,
    pls_cv_correlations,
    pls_memory_bytes,
    uses_kernel,
)
from callbacks.brainscore.metrics.splits import brainscore_splits, split_masks


def _data(n=120, p=40, q=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) + 2.0
    Y = X @ rng.normal(size=(p, q)) * 0.1 + rng.normal(size=(n, q))
    return X, Y


def _latent_data(n=60, p=20, q=5, seed=0):
    """Features and targets driven by a few latents of distinct strengths (sklearn's NIPALS converges)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 6)) * np.array([5.0, 4.0, 3.0, 2.2, 1.6, 1.2])
    X = latent @ rng.normal(size=(6, p)) + 0.3 * rng.normal(size=(n, p)) + 3.0
    Y = latent @ rng.normal(size=(6, q)) + 0.5 * rng.normal(size=(n, q))
    return X, Y


def _sklearn_cv(X, Y, splits, k):
    """Per-split held-out Pearson r of sklearn's PLS run to convergence."""
    out = []
    for tr, te in splits:
        pred = SkPLS(n_components=k, scale=False, tol=1e-12, max_iter=5000).fit(X[tr], Y[tr]).predict(X[te])
        out.append([np.corrcoef(pred[:, j], Y[te, j])[0, 1] for j in range(Y.shape[1])])
    return np.array(out)


@pytest.mark.parametrize("p,q,k", [(40, 7, 10), (6, 9, 6), (30, 1, 5)])
def test_matches_sklearn_converged(p, q, k):
    X, Y = _data(p=p, q=q)
    Y = Y[:, 0] if q == 1 else Y
    ref = SkPLS(n_components=k, scale=False, max_iter=20000, tol=1e-20).fit(X, Y)
    ours = PLSRegression(k).fit(X, Y)
    np.testing.assert_allclose(ours.predict(X).numpy(), ref.predict(X), atol=1e-6)
    np.testing.assert_allclose(ours.coef_.numpy(), ref.coef_, atol=1e-6)


@pytest.mark.parametrize("p", [20, 500])
def test_cv_correlations_equal_sklearn_on_both_paths(p):
    """p=20 < n=60 takes the primal path, p=500 the kernel path; both equal sklearn per split."""
    X, Y = _latent_data(p=p)
    splits = brainscore_splits(60, np.repeat(np.arange(4), 15))
    r = pls_cv_correlations(X, Y, splits, n_components=5).numpy()
    assert r.shape == (10, 5) and np.isfinite(r).all()
    np.testing.assert_allclose(r, _sklearn_cv(X, Y, splits, 5), atol=1e-6)


@pytest.mark.parametrize("p", [20, 500])
def test_kernel_path_equals_primal_path(p):
    """The Gram-matrix NIPALS gives the primal NIPALS' held-out scores and loadings, split by split (six
    components: the data's six latents; later ones are noise whose near-equal singular values make
    both paths' weights sensitive at ~1e-8)."""
    X, Y = _latent_data(p=p, seed=1)
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)
    Y = Y - Y.mean(0)
    train, _ = split_masks(brainscore_splits(60), 60)
    primal = fit_pls_masked(X - X.mean(0), Y, train, 6)
    kernel = fit_kernel_pls_masked(centred_gram(X), Y, train, 6)
    pred_primal = primal["x_scores"] @ primal["y_loadings"].transpose(1, 2)
    pred_kernel = kernel["x_scores"] @ kernel["y_loadings"].transpose(1, 2)
    torch.testing.assert_close(pred_kernel, pred_primal, atol=1e-9, rtol=0)
    torch.testing.assert_close(kernel["y_mean"], primal["y_mean"])


def test_path_rule_picks_kernel_for_wide_layers(monkeypatch):
    assert uses_kernel(60, 500) and not uses_kernel(60, 60) and not uses_kernel(60, 20)
    calls = []
    real = pls_module.fit_kernel_pls_masked
    monkeypatch.setattr(pls_module, "fit_kernel_pls_masked", lambda *a: calls.append(1) or real(*a))
    splits = brainscore_splits(30)
    for p in (20, 40):
        X, Y = _latent_data(n=30, p=p)
        pls_cv_correlations(X, Y, splits, n_components=3)
    assert calls == [1]  # only the 40-feature layer went through the Gram matrix


def test_centred_gram_by_chunks_and_blocks_reads_float32_in_place():
    rng = np.random.default_rng(2)
    X = torch.from_numpy(rng.normal(size=(600, 70)).astype(np.float32) + 5)
    before = X.clone()
    K = centred_gram(X, chunk_bytes=600 * 8 * 16)  # 5 column chunks, 2 row blocks
    Xc = X.double() - X.double().mean(0)
    torch.testing.assert_close(K, Xc @ Xc.T, atol=1e-9, rtol=1e-12)
    assert torch.equal(X, before)  # the features are neither copied whole nor modified


def test_wide_float32_features_score_like_float64():
    X, Y = _latent_data(p=500, seed=3)
    splits = brainscore_splits(60)
    r64 = pls_cv_correlations(X, Y, splits, n_components=5)
    r32 = pls_cv_correlations(torch.from_numpy(X.astype(np.float32)), Y, splits, n_components=5)
    torch.testing.assert_close(r32, r64, atol=1e-5, rtol=0)


def test_exhausted_components_are_zero_not_nan():
    """More components than the train rows support: the surplus components contribute nothing."""
    X, Y = _latent_data(n=24, p=80, seed=4)
    r = pls_cv_correlations(X, Y, brainscore_splits(24), n_components=25)
    assert torch.isfinite(r).all()


def test_float32_close_to_float64():
    X, Y = _data()
    splits = brainscore_splits(120)
    r64 = pls_cv_correlations(X, Y, splits, n_components=10)
    r32 = pls_cv_correlations(X, Y, splits, n_components=10, dtype=torch.float32)
    assert r32.dtype == torch.float64
    torch.testing.assert_close(r32, r64, atol=1e-3, rtol=0)


def test_memory_estimate_is_sane():
    n, q = 3200, 168
    wide = pls_memory_bytes(n, 577 * 448, q, 10)
    assert 8 * n * n < wide < 2 * 2**30  # Gram matrix and a chunk, far below the 3.3 GB of features
    narrow = pls_memory_bytes(n, 2000, q, 10)
    assert narrow > n * 2000 * 8  # at least the centred float64 copy
    assert pls_memory_bytes(n, 2000, q, 10, dtype=torch.float32) < narrow
    assert pls_memory_bytes(n, 3000, q, 10) > narrow


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
