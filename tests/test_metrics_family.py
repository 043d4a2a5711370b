"""The metric family (ridge, linear, ridge-CV, neuron-to-neuron, CKA, RDM) equals brainscore-vision's own metrics.

Each torch metric and brainscore-vision's metric object of the same name (``load_metric``) score the
same arrays, packed as ``NeuroidAssembly`` objects; 60 stimuli x 40 features -> 12 neuroids, 6
object categories for the stratified splits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, rankdata, spearmanr
from sklearn.linear_model import LinearRegression, Ridge, RidgeCV

from callbacks.brainscore.brainio_data import import_brainscore_vision
from callbacks.brainscore.metrics.cka import cka_cv_scores, cka_score, cka_split_half_ceiling
from callbacks.brainscore.metrics.neuron_to_neuron import neuron_to_neuron_cv_correlations
from callbacks.brainscore.metrics.rdm import (
    average_ranks,
    rdm,
    rdm_cv_scores,
    rdm_score,
    rdm_similarity,
    rdm_split_half_ceiling,
    repetition_halves,
)
from callbacks.brainscore.metrics.registry import METRICS, aggregate_regression, check_metric
from callbacks.brainscore.metrics.ridge import (
    downdated_ridge_predictions,
    fold_index,
    linear_cv_correlations,
    ridge_cv_correlations,
)
from callbacks.brainscore.metrics.ridgecv import BRAINSCORE_ALPHAS, ridgecv_cv_correlations
from callbacks.brainscore.metrics.splits import brainscore_splits
from neuroalign.core.errors import ConfigError

N, P, Q = 60, 40, 12
SPLITS = 3  # brainscore-vision's metrics take 10; 3 keep its side of the test fast


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    labels = [f"obj{i % 6}" for i in range(N)]
    latent = rng.normal(size=(N, 8)) + rng.normal(size=(6, 8))[np.arange(N) % 6]
    X = latent @ rng.normal(size=(8, P)) + rng.normal(size=(N, P)) + 2.0
    Y = np.tanh(latent @ rng.normal(size=(8, Q)) / 3) + rng.normal(size=(N, Q)) * 0.5
    return X, Y, labels


@pytest.fixture(scope="module")
def assemblies(data):
    X, Y, labels = data
    import_brainscore_vision()
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly

    ids = [f"s{i}" for i in range(N)]

    def assembly(values: np.ndarray, prefix: str, rows=slice(None)) -> NeuroidAssembly:
        coords = {
            "stimulus_id": ("presentation", np.asarray(ids)[rows]),
            "object_name": ("presentation", np.asarray(labels)[rows]),
            "neuroid_id": ("neuroid", [f"{prefix}{i}" for i in range(values.shape[1])]),
            "region": ("neuroid", ["IT"] * values.shape[1]),
        }
        return NeuroidAssembly(values[rows], coords=coords, dims=["presentation", "neuroid"])

    return assembly


def _reference(name: str, assemblies, data, **kwargs):
    brainscore_vision = import_brainscore_vision()
    X, Y, _ = data
    return brainscore_vision.load_metric(name, **kwargs)(assemblies(X, "f"), assemblies(Y, "n"))


@pytest.mark.parametrize(
    "name, ours",
    [("ridge", ridge_cv_correlations), ("linear_predictivity", linear_cv_correlations),
     ("neuron_to_neuron", neuron_to_neuron_cv_correlations)],
)
def test_regression_equals_brainscore_vision(name, ours, data, assemblies):
    X, Y, labels = data
    score = _reference(name, assemblies, data, crossvalidation_kwargs=dict(stratification_coord="object_name", splits=SPLITS))
    ref_raw = score.attrs["raw"].transpose("split", "neuroid").values  # (splits, neuroids), neuroids n0..n11 sorted
    order = np.argsort([f"n{i}" for i in range(Q)])
    r = ours(X, Y, brainscore_splits(N, stratify=labels, n_splits=SPLITS))
    total, per_split = aggregate_regression(r)
    assert abs(total - float(score.values)) < 0.005
    np.testing.assert_allclose(per_split.numpy(), np.median(ref_raw, axis=1), atol=0.005)
    np.testing.assert_allclose(r.numpy()[:, order], ref_raw, atol=1e-8)


def test_ridgecv_equals_brainscore_vision_split_and_sklearn_per_neuroid(data, assemblies):
    X, Y, labels = data
    splits = brainscore_splits(N, stratify=labels)
    tr, te = splits[0]
    metric = import_brainscore_vision().load_metric("ridgecv_split")
    score = metric(assemblies(X, "f", tr), assemblies(X, "f", te), assemblies(Y, "n", tr), assemblies(Y, "n", te))
    r, chosen = ridgecv_cv_correlations(X, Y, splits[:1], alphas=BRAINSCORE_ALPHAS, alpha_per_target=False)
    assert abs(float(aggregate_regression(r)[0]) - float(score.values)) < 0.005
    np.testing.assert_allclose(r[0].numpy()[np.argsort([f"n{i}" for i in range(Q)])], score.attrs["raw"].values, atol=1e-8)
    assert torch.all(chosen == float(score.attrs["raw"].attrs["alpha"]))

    grid = np.logspace(-2, 5, 15)  # per neuroid: the alphas and predictions of sklearn RidgeCV
    r, chosen, pred = ridgecv_cv_correlations(X, Y, splits[:2], alphas=grid, return_predictions=True)
    for s, (tr, te) in enumerate(splits[:2]):
        ref = RidgeCV(alphas=grid, alpha_per_target=True).fit(X[tr], Y[tr])
        np.testing.assert_array_equal(chosen[s].numpy(), ref.alpha_)
        np.testing.assert_allclose(pred[s, te].numpy(), ref.predict(X[te]), atol=1e-6)
    assert len(set(chosen.flatten().tolist())) > 1  # the data make alphas differ between neuroids


def test_ridgecv_rejects_non_positive_alphas(data):
    X, Y, labels = data
    with pytest.raises(ConfigError, match="`alphas`"):
        ridgecv_cv_correlations(X, Y, brainscore_splits(N), alphas=[0.0, 1.0])


@pytest.mark.parametrize("unbiased", [True, False])
def test_cka_equals_brainscore_vision(unbiased, data, assemblies):
    X, Y, labels = data
    ref = _reference("cka" if unbiased else "cka_biased", assemblies, data)
    assert abs(float(cka_score(X, Y, unbiased=unbiased)) - float(ref)) < 1e-8


def test_cka_cv_and_rdm_cv_equal_brainscore_vision(data, assemblies):
    X, Y, labels = data
    # brainscore-vision builds these with test_size=0.9: the same splits as train_size=0.1 here
    splits = brainscore_splits(N, stratify=labels, n_splits=SPLITS, train_size=0.1)
    for name, ours in [("cka_cv", cka_cv_scores), ("rdm_cv", rdm_cv_scores)]:
        ref = _reference(name, assemblies, data, crossvalidation_kwargs=dict(splits=SPLITS))
        per_split = ours(X, Y, splits)
        assert abs(float(per_split.mean()) - float(ref)) < 0.005, name
        np.testing.assert_allclose(per_split.numpy(), ref.attrs["raw"].values, atol=1e-8, err_msg=name)


def test_rdm_equals_brainscore_vision_and_rsatoolbox(data, assemblies):
    X, Y, labels = data
    ref = _reference("rdm", assemblies, data)
    ours = float(rdm_score(X, Y))
    assert abs(ours - float(ref)) < 1e-8
    assert abs(float(rdm_similarity(rdm(X), rdm(Y))) - ours) < 1e-12
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rdms = [rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(A), method="correlation") for A in (X, Y)]
    np.testing.assert_allclose(rdm(X).numpy()[np.triu_indices(N, 1)], rdms[0].get_vectors()[0], atol=1e-10)
    assert abs(float(rsatoolbox.rdm.compare(rdms[0], rdms[1], method="spearman")[0, 0]) - ours) < 1e-6


def test_average_ranks_share_ties_as_scipy():
    x = torch.tensor([3.0, 1.0, 3.0, 2.0, 3.0, 1.0], dtype=torch.float64)
    np.testing.assert_array_equal(average_ranks(x).numpy(), rankdata(x.numpy()))


def test_registry_names_and_unknown_metric():
    assert check_metric("ridgecv") == "ridgecv"
    assert set(METRICS) == {"pls", "ridge", "ridgecv", "linear", "neuron_to_neuron", "cka", "cka_cv", "rdm", "rdm_cv"}
    with pytest.raises(ConfigError, match=r"`benchmark.metric`.*nearest: ridge"):
        check_metric("rigde", "benchmark.metric")


def test_wide_features_take_the_dual_and_stimulus_space_paths():
    """p > n: ridge in the n x n dual equals sklearn ``Ridge``; CKA from n x n kernels equals brainscore-vision's."""
    import_brainscore_vision()
    from brainscore_vision.metrics.cka.metric import linear_CKA, unbiased_linear_CKA

    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 200)) + 1.0
    Y = X[:, :50] @ rng.normal(size=(50, 80)) + rng.normal(size=(30, 80))
    splits = brainscore_splits(30, n_splits=2)
    r = ridge_cv_correlations(X, Y[:, :4], splits, alpha=1.0)
    for s, (tr, te) in enumerate(splits):
        pred = Ridge(alpha=1.0).fit(X[tr], Y[tr, :4]).predict(X[te])
        np.testing.assert_allclose(r[s].numpy(), [pearsonr(pred[:, j], Y[te, j])[0] for j in range(4)], atol=1e-10)
    subsets = [(np.arange(5), np.arange(5, 30)), (np.arange(25, 30), np.arange(25))]
    for unbiased, ref in [(True, unbiased_linear_CKA), (False, linear_CKA)]:
        assert abs(float(cka_score(X, Y, unbiased=unbiased)) - ref(X, Y)) < 1e-10
        np.testing.assert_allclose(cka_cv_scores(X, Y, subsets, unbiased=unbiased).numpy(),
                                   [ref(X[te], Y[te]) for _, te in subsets], atol=1e-10)


def test_similarity_ceilings_are_split_half_scores_and_fall_with_noise():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(40, 10))
    clean, noisy = (signal[None] + s * rng.normal(size=(6, 40, 10)) for s in (0.3, 3.0))
    h1, h2 = repetition_halves(noisy, n_splits=4)
    for ceiling, score in [(rdm_split_half_ceiling, rdm_score), (cka_split_half_ceiling, cka_score)]:
        result = ceiling(noisy, n_splits=4)
        rho = float(score(h1[3], h2[3]))
        assert abs(float(result["per_split"][3]) - 2 * rho / (1 + rho)) < 1e-12
        assert float(ceiling(clean, n_splits=4)["ceiling"]) > 0.9 > 0.5 > float(result["ceiling"])
    with pytest.raises(ConfigError, match="repetitions >= 2"):
        rdm_split_half_ceiling(noisy[:1])


def test_rank_deficient_features_leave_the_downdate_form_for_each_splits_own_system():
    """A duplicated feature column makes the Gram matrix singular: least squares then takes the minimum-norm
    solution of each split (equal to sklearn ``LinearRegression``), ridge the direct factorisation (sklearn ``Ridge``)."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 6))
    X = np.concatenate([X, X[:, :1]], axis=1)
    Y = X[:, :3] @ rng.normal(size=(3, 3)) + rng.normal(size=(40, 3))
    splits = brainscore_splits(40, n_splits=2)
    Xc, Yc = torch.from_numpy(X - X.mean(0)), torch.from_numpy(Y - Y.mean(0))
    train, out = fold_index(splits, 40)
    test = torch.stack([torch.as_tensor(np.sort(te)) for _, te in splits])
    assert downdated_ridge_predictions(Xc, Yc, train, out, test, 0.0) is None
    for ours, model in [(linear_cv_correlations, LinearRegression()), (ridge_cv_correlations, Ridge(alpha=1.0))]:
        r = ours(X, Y, splits)
        for s, (tr, te) in enumerate(splits):
            pred = model.fit(X[tr], Y[tr]).predict(X[te])
            np.testing.assert_allclose(r[s].numpy(), [pearsonr(pred[:, j], Y[te, j])[0] for j in range(3)], atol=1e-10)


def test_rdm_cv_ranks_ties_within_each_split_as_scipy():
    """Stimuli that are scaled, shifted +-Hadamard rows correlate exactly -1, 0 or 1 (RDM values tie everywhere):
    each split's ranks average its own ties, as ``scipy.stats.spearmanr`` of the split's RDMs."""
    rng = np.random.default_rng(4)
    hadamard = np.array([[1.0, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])
    X = hadamard[rng.integers(0, 3, 16)] * rng.choice([-4.0, -1, 2], (16, 1)) + rng.integers(-3, 3, (16, 1))
    Y = rng.normal(size=(16, 4))
    splits = brainscore_splits(16, n_splits=3, train_size=0.25)
    upper = np.triu_indices(12, 1)
    expected = [spearmanr(np.round(1 - np.corrcoef(X[te]), 12)[upper], (1 - np.corrcoef(Y[te]))[upper])[0]
                for _, te in splits]
    np.testing.assert_allclose(rdm_cv_scores(X, Y, splits).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(rdm_cv_scores(Y, X, splits).numpy(), expected, atol=1e-12)
