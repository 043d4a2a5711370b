"""The project's neural score equals brainscore-vision's own NeuralBenchmark on the same data (within 0.005).

A local benchmark folder is written in tmp_path (the lab format of ``callbacks.brainscore.benchmarks.local``); the
project scores it with ``callbacks.score_model``. brainscore-vision scores the same responses and
images with its ``NeuralBenchmark``, ``pls`` metric and ``internal_consistency`` ceiling, built in
memory (no network), on the model wrapped in its ``PytorchWrapper`` / ``ModelCommitment``.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from brainscore_reference import reference_neural_benchmark
from callbacks import score_model
from callbacks.brainscore.metrics.splits import brainscore_splits
from callbacks.brainscore.model_adapter import make_model_commitment, preprocess_unit_range

TOLERANCE = 0.005


class _ConvNet(nn.Module):
    input_size = (3, 32, 32)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 5, stride=2)
        self.act = nn.ReLU()
        self.pool7 = nn.AdaptiveAvgPool2d(7)
        self.pool4 = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool4(self.pool7(self.act(self.conv(x)))).flatten(1))


def _write_benchmark(folder, region: str, n_stimuli: int = 120, n_neuroids: int = 24, reps: int = 4, seed: int = 0):
    """Images at the model's input size; neuroids respond to colour and contrast, with trial noise."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    rows, stats = [], []
    for i in range(n_stimuli):
        category = i % 4
        colour = rng.uniform(0, 255, 3)
        contrast = rng.uniform(5, 80)
        pixels = np.clip(colour + rng.normal(scale=contrast, size=(32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"im{i}.png")
        rows.append({"stimulus_id": f"stim{i}", "filename": f"images/im{i}.png", "category": f"c{category}"})
        stats.append([*colour / 255, contrast / 80, category / 3])
    stats = np.asarray(stats)
    signal = np.tanh((stats - stats.mean(0)) @ rng.normal(size=(stats.shape[1], n_neuroids)))
    noise = rng.normal(scale=signal.std(0) * rng.uniform(0.4, 1.5, n_neuroids), size=(reps, n_stimuli, n_neuroids))
    responses = signal[None] + noise
    with open(folder / "stimuli.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["stimulus_id", "filename", "category"])
        writer.writeheader()
        writer.writerows(rows)
    np.save(folder / "responses.npy", responses)
    meta = {"name": f"equiv-{region}", "kind": "neural", "region": region, "visual_degrees": 8, "stratify_by": "category"}
    (folder / "benchmark.yaml").write_text(yaml.safe_dump(meta))
    return rows, responses


@pytest.mark.parametrize(("region", "layer"), [("IT", "pool4"), ("V1", "pool7")])
def test_local_score_equals_brainscore_vision(tmp_path, region, layer):
    folder = tmp_path / "bench"
    rows, responses = _write_benchmark(folder, region)
    model = _ConvNet()

    ours = score_model(model, [str(folder)], {region: layer}, max_features=None)

    reference = reference_neural_benchmark(
        responses,
        [r["stimulus_id"] for r in rows],
        [folder / r["filename"] for r in rows],
        region,
        stratify=[r["category"] for r in rows],
    )
    theirs = reference(make_model_commitment(model, f"equivalence-{region}", {region: layer}))
    raw, ceiling = float(theirs.attrs["raw"]), float(theirs.attrs["ceiling"])

    assert raw > 0.3 and 0.3 < ceiling < 1  # a meaningful comparison, not two zeros
    assert ours[f"{region}_raw"] == pytest.approx(raw, abs=TOLERANCE)
    assert ours[f"{region}_ceiling"] == pytest.approx(ceiling, abs=TOLERANCE)
    assert ours[region] == pytest.approx(float(theirs), abs=TOLERANCE)


@pytest.mark.slow
def test_where_sklearn_stops_early_the_project_equals_converged_pls(tmp_path):
    """brainscore-vision's ``pls`` is sklearn's NIPALS (tol 1e-6, max_iter 500). With many more features
    than stimuli (here 1568 vs 108) it can stop before converging, and its score then drifts from the
    exact PLS by up to ~0.005; the project's PLS equals sklearn run to convergence on the same splits."""
    from scipy.stats import pearsonr
    from sklearn.cross_decomposition import PLSRegression

    folder = tmp_path / "bench"
    rows, responses = _write_benchmark(folder, "V1")
    model = _ConvNet().eval()
    ours = score_model(model, [str(folder)], {"V1": "conv"}, max_features=None)

    images = torch.from_numpy(preprocess_unit_range([folder / r["filename"] for r in rows], (32, 32)))
    with torch.no_grad():
        X = model.conv(images).flatten(1).double().numpy()
    Y = responses.mean(0)
    per_split = []
    for train, test in brainscore_splits(len(rows), [r["category"] for r in rows]):
        pls = PLSRegression(n_components=25, scale=False, tol=1e-12, max_iter=100_000).fit(X[train], Y[train])
        pred = pls.predict(X[test])
        per_split.append(np.median([pearsonr(pred[:, j], Y[test][:, j])[0] for j in range(Y.shape[1])]))
    assert ours["V1_raw"] == pytest.approx(float(np.mean(per_split)), abs=1e-4)
