"""The project's torch metric family vs brainscore-vision's own metrics (targets: regressions >= 20x, CKA/RDM >= 5x).

One problem of ``bench_pls.make_problem`` (default 3200 stimuli x 2000 features -> 168 neuroids,
64 object categories), 10 stratified splits built with the sklearn splitter and seed brainscore-vision
uses. For each metric both sides score the same arrays; brainscore-vision's metric objects come from
``load_metric`` on ``NeuroidAssembly`` objects:

* ``ridge``, ``linear`` (``linear_predictivity``), ``neuron_to_neuron``: 10 train/test splits
  (``CrossRegressedCorrelation``), median over neuroids, mean over splits;
* ``ridgecv``: brainscore-vision's ``ridgecv_split`` (``RidgeCV(ALPHA_LIST)``, one alpha shared by the
  neuroids) called once per split; ours with ``alpha_per_target=False`` (the same model; one alpha
  per neuroid costs the same: the LOO errors of every neuroid are computed either way);
* ``cka``, ``rdm``: one number over all stimuli; ``cka_cv``, ``rdm_cv``: the mean over 10 splits'
  90% test rows.

Prints both times, their ratio and the largest score difference (overall and per split). Ours is the
fastest of ``--repeats`` runs (the same arrays each time); brainscore-vision's metric runs once.

Then (``--floors``, on by default) the bare linear-algebra calls that bound the project's metrics on this
problem: the symmetric Gram product of the features (ridge, linear, CKA; numpy's ``syrk``, as
``symmetric_gram``), one ``p x p`` Cholesky factorisation, the ``p x p`` eigendecompositions of the
10 splits (ridge-CV, ``symmetric_eigh``; one timed, times 10) and the sort of the two RDMs' upper triangles (RDM).

Usage: ``OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/bench_metrics.py [--metrics ridge rdm]
[--stimuli 3200] [--features 2000] [--neuroids 168] [--threads 1] [--repeats 2] [--no-floors]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from bench_pls import make_problem

from callbacks.brainscore.brainio_data import import_brainscore_vision
from callbacks.brainscore.metrics.cka import cka_cv_scores, cka_score
from callbacks.brainscore.metrics.neuron_to_neuron import neuron_to_neuron_cv_correlations
from callbacks.brainscore.metrics.rdm import rdm, rdm_cv_scores, rdm_score
from callbacks.brainscore.metrics.registry import aggregate_regression
from callbacks.brainscore.metrics.ridge import (
    linear_cv_correlations,
    ridge_cv_correlations,
    symmetric_eigh,
    symmetric_gram,
)
from callbacks.brainscore.metrics.ridgecv import BRAINSCORE_ALPHAS, ridgecv_cv_correlations
from callbacks.brainscore.metrics.splits import brainscore_splits

REGRESSIONS = {
    "ridge": ("ridge", ridge_cv_correlations),
    "linear": ("linear_predictivity", linear_cv_correlations),
    "neuron_to_neuron": ("neuron_to_neuron", neuron_to_neuron_cv_correlations),
}
SIMILARITIES = {"cka": cka_score, "rdm": rdm_score}
CROSS_VALIDATED = {"cka_cv": cka_cv_scores, "rdm_cv": rdm_cv_scores}
ALL = [*REGRESSIONS, "ridgecv", *SIMILARITIES, *CROSS_VALIDATED]


def assemblies(X: np.ndarray, Y: np.ndarray, labels: list[str]) -> Callable:
    """A builder of brainscore-vision ``NeuroidAssembly`` objects over rows of ``X`` (``"f"``) or ``Y`` (``"n"``)."""
    import_brainscore_vision()
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly

    ids, labels = np.asarray([f"s{i}" for i in range(len(X))]), np.asarray(labels)

    def build(which: str, rows=slice(None)) -> NeuroidAssembly:
        data = X if which == "f" else Y
        coords = {
            "stimulus_id": ("presentation", ids[rows]),
            "object_name": ("presentation", labels[rows]),
            "neuroid_id": ("neuroid", [f"{which}{i}" for i in range(data.shape[1])]),
            "region": ("neuroid", ["IT"] * data.shape[1]),
        }
        return NeuroidAssembly(data[rows], coords=coords, dims=["presentation", "neuroid"])

    return build


def timed(fn: Callable, *args, **kwargs):
    """``(result, seconds)``."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def best_of(repeats: int, fn: Callable, *args, **kwargs):
    """``(result, seconds)`` of the fastest of ``repeats`` runs."""
    runs = [timed(fn, *args, **kwargs) for _ in range(max(1, repeats))]
    return runs[0][0], min(seconds for _, seconds in runs)


def run_metric(name: str, X: np.ndarray, Y: np.ndarray, labels: list[str],
               repeats: int = 1) -> tuple[np.ndarray, float, np.ndarray, float]:
    """``(ours_per_split, ours_s, reference_per_split, reference_s)`` of one metric (one value: no splits)."""
    bsv = import_brainscore_vision()
    build = assemblies(X, Y, labels)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    if name in REGRESSIONS:
        ref_name, fn = REGRESSIONS[name]
        r, ours_s = best_of(repeats, lambda: aggregate_regression(fn(Xt, Yt, brainscore_splits(len(X), stratify=labels)))[1])
        metric = bsv.load_metric(ref_name, crossvalidation_kwargs=dict(stratification_coord="object_name"))
        score, ref_s = timed(metric, build("f"), build("n"))
        return r.numpy(), ours_s, score.attrs["raw"].median("neuroid").values, ref_s
    if name == "ridgecv":
        splits = brainscore_splits(len(X), stratify=labels)
        (r, _), ours_s = best_of(repeats, ridgecv_cv_correlations, Xt, Yt, splits, BRAINSCORE_ALPHAS, alpha_per_target=False)
        metric = bsv.load_metric("ridgecv_split")
        start, ref = time.perf_counter(), []
        for tr, te in splits:
            score = metric(build("f", tr), build("f", te), build("n", tr), build("n", te))
            ref.append(float(score.values))
        return aggregate_regression(r)[1].numpy(), ours_s, np.asarray(ref), time.perf_counter() - start
    if name in SIMILARITIES:
        value, ours_s = best_of(repeats, SIMILARITIES[name], Xt, Yt)
        score, ref_s = timed(bsv.load_metric(name), build("f"), build("n"))
        return np.atleast_1d(value.numpy()), ours_s, np.atleast_1d(float(score.values)), ref_s
    fn = CROSS_VALIDATED[name]  # brainscore-vision: test_size=0.9, i.e. train_size=0.1 splits
    per_split, ours_s = best_of(repeats, fn, Xt, Yt, brainscore_splits(len(X), stratify=labels, train_size=0.1))
    score, ref_s = timed(bsv.load_metric(name), build("f"), build("n"))
    return per_split.numpy(), ours_s, score.attrs["raw"].values, ref_s


def floors(X: np.ndarray, Y: np.ndarray) -> None:
    """Print the bare linear-algebra calls that bound the metrics on this problem (see the module docstring)."""
    Xt = torch.from_numpy(X - X.mean(0))
    G, syrk_s = timed(symmetric_gram, Xt)
    p = G.shape[0]
    A = G + torch.eye(p, dtype=G.dtype)
    _, chol_s = timed(torch.linalg.cholesky, A)
    _, eigh_s = timed(symmetric_eigh, A.unsqueeze(0))
    i, j = torch.triu_indices(len(X), len(X), offset=1)
    upper = [rdm(M)[i, j] for M in (X, Y)]
    sort_s = sum(timed(torch.sort, u)[1] for u in upper)
    print(f"floors: symmetric Gram X^T X {syrk_s:.2f} s | Cholesky {p}x{p} {chol_s:.2f} s | "
          f"eigh {p}x{p} x 10 splits {10 * eigh_s:.2f} s | sort of both RDM triangles ({len(upper[0])} values each) "
          f"{sort_s:.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", nargs="+", default=ALL, choices=ALL)
    parser.add_argument("--stimuli", type=int, default=3200)
    parser.add_argument("--features", type=int, default=2000)
    parser.add_argument("--neuroids", type=int, default=168)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (numpy/sklearn follow OMP_NUM_THREADS)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of ours; the fastest is reported")
    parser.add_argument("--floors", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the bare linear-algebra calls that bound the metrics")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    small = make_problem(320, 200, 16, categories=16, seed=1)
    X, Y, labels = make_problem(args.stimuli, args.features, args.neuroids)
    X = X.astype(np.float64)
    print(f"problem: {args.stimuli} stimuli x {args.features} features -> {args.neuroids} neuroids, "
          f"10 stratified splits, torch threads {args.threads}, ours best of {args.repeats}")
    for name in args.metrics:
        run_metric(name, small[0].astype(np.float64), *small[1:])  # untimed warm-up: imports, BLAS init
        ours, ours_s, ref, ref_s = run_metric(name, X, Y, labels, args.repeats)
        print(f"{name:17s} ours {ours_s:8.2f} s  score {ours.mean():.6f} | brainscore-vision {ref_s:8.2f} s  "
              f"score {ref.mean():.6f} | {ref_s / ours_s:6.1f}x | max diff {abs(ours.mean() - ref.mean()):.1e} "
              f"overall, {np.abs(ours - ref).max():.1e} per split", flush=True)
    if args.floors:
        floors(X, Y)


if __name__ == "__main__":
    main()
