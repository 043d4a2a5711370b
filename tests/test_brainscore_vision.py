"""brainscore-vision benchmarks through PytorchWrapper / ModelCommitment, offline.

The public data files cannot be present here (no network, and brainscore-core verifies each file's
sha1 on every load, so stand-in files are rejected). The tests cover the offline failure through
brainscore-core's own S3 access (for any registered benchmark), the real loader up to its sha1 check
(files with the right names but other content), and the whole model side -- wrapper, commitment,
brainscore-vision's NeuralBenchmark, score extraction -- on an in-memory benchmark built from arrays.
Benchmarks on stand-in data of the real schema: ``tests/test_bsv_standins.py``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from brainscore_reference import reference_neural_benchmark
from callbacks import score_model
from callbacks.brainscore.benchmarks.brainscore_vision import BrainScoreVisionBenchmark
from callbacks.brainscore.brainio_data import files_for
from callbacks.brainscore.identifiers import stale_proof_identifier
from callbacks.brainscore.model_adapter import make_model_commitment, preprocess_unit_range
from callbacks.brainscore.types import ScoringContext
from lightning_modules.zoo import build_model
from neuroalign.core.errors import ConfigError, MissingFileError


class _Recorder(nn.Module):
    """Identity that remembers the range and shape of what the model is fed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, float, tuple[int, ...]]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((float(x.min()), float(x.max()), tuple(x.shape[1:])))
        return x


class _TinyNet(nn.Module):
    input_size = (3, 24, 24)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.recorder = _Recorder()
        self.conv = nn.Conv2d(3, 6, 5, stride=3)
        self.bn = nn.BatchNorm2d(6)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.head = nn.Linear(54, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.act(self.bn(self.conv(self.recorder(x))))).flatten(1))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(30):
        path = tmp_path / f"img{i}.png"
        colour = rng.integers(0, 256, 3)
        pixels = np.clip(colour + rng.normal(scale=30, size=(40, 40, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def reference(images):
    """A brainscore-vision NeuralBenchmark whose neuroids are noisy mixtures of the images' colours (shared)."""
    rng = np.random.default_rng(1)
    pixels = np.stack([np.asarray(Image.open(p), dtype=float).reshape(-1, 3).mean(0) for p in images])
    signal = pixels @ rng.normal(size=(3, 12))
    responses = signal[None] + rng.normal(scale=signal.std(0) * 0.5, size=(4, *signal.shape))
    ids = [f"s{i}" for i in range(len(images))]
    return reference_neural_benchmark(responses, ids, images, "IT", stratify=[i % 3 for i in range(len(images))])


def test_offline_missing_data_fails_fast_naming_identifier_path_sha1_and_address(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINIO_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("NEUROALIGN_OFFLINE", "1")
    bench = BrainScoreVisionBenchmark("MajajHong2015public.IT-pls")
    start = time.monotonic()
    with pytest.raises(MissingFileError) as info:
        bench.score_model(_TinyNet(), {"IT": "conv"}, None, ScoringContext(model_identifier="tiny-step0"))
    assert time.monotonic() - start < 15
    message = str(info.value)
    first = files_for("MajajHong2015public.IT-pls")[0]  # the assembly file is fetched first
    assert "\n" not in message and "'dicarlo.MajajHong2015.public'" in message
    assert str(first.path(tmp_path / "empty")) in message and first.sha1 in message and first.url in message


def test_offline_error_for_a_benchmark_outside_the_public_table(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINIO_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("NEUROALIGN_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(MissingFileError, match=r"BrainIO data .*sha1 [0-9a-f]{40}.*https://.*s3\.amazonaws\.com/"):
        score_model(_TinyNet(), ["Marques2020_DeValois1982-pref_or"], {"V1": "conv"})
    assert time.monotonic() - start < 15


def test_real_loader_reaches_sha1_check_offline(tmp_path, monkeypatch):
    """Files with the right names but other content: brainscore-core's own sha1 check, as one line."""
    monkeypatch.setenv("BRAINIO_HOME", str(tmp_path))
    monkeypatch.setenv("NEUROALIGN_OFFLINE", "1")
    for file in files_for("MajajHong2015public.V4-pls"):
        file.path(tmp_path).parent.mkdir(parents=True)
        file.path(tmp_path).write_bytes(b"not the real data")
    bench = BrainScoreVisionBenchmark("MajajHong2015public.V4-pls")
    with pytest.raises(ConfigError, match="corrupt BrainIO data 'dicarlo.MajajHong2015.public'.*SHA1 mismatch"):
        bench.load()


def test_scores_through_model_commitment(reference, monkeypatch):
    model = _TinyNet()
    model.train()
    model.bn.eval()  # a frozen sub-module must stay frozen
    model.head.weight.requires_grad_(False)
    bench = BrainScoreVisionBenchmark("MajajHong2015public.IT-pls", engine="brainscore-vision")
    monkeypatch.setattr(bench, "load", lambda: reference)
    score = bench.score_model(model, {"IT": "pool", "V1": "conv"}, "head", ScoringContext(model_identifier="tiny-step7"))
    assert score.region == "IT" and score.layer == "pool" and score.benchmark == "MajajHong2015public.IT-pls"
    assert score.raw > 0.2  # pooled colour features predict colour-driven neuroids
    assert 0 < score.ceiling <= 1
    assert score.ceiled == pytest.approx(score.raw**2 / score.ceiling)
    assert score.ceiled == pytest.approx(score.extra["brainscore_vision_ceiled"])
    # the commitment is named by the run's identifier plus a hash of these weights at this input size
    assert score.extra["model_identifier"] == stale_proof_identifier("tiny-step7", model, (24, 24))
    # [0,1] images at the model's input size, no ImageNet normalisation
    lo, hi, shape = model.recorder.seen[-1]
    assert shape == (3, 24, 24) and lo >= 0.0 and hi <= 1.0 and hi > 0.5
    # mode and gradients as found
    assert model.training and not model.bn.training and model.conv.training
    assert not model.head.weight.requires_grad and model.conv.weight.requires_grad


def test_ceiling_formula_option(reference, monkeypatch):
    bench = BrainScoreVisionBenchmark("MajajHong2015public.IT-pls")
    monkeypatch.setattr(bench, "load", lambda: reference)
    context = ScoringContext(model_identifier="tiny", ceiling_formula="squared_r_over_ceiling")
    score = bench.score_model(_TinyNet(), {"IT": "pool"}, None, context)
    assert score.ceiled == pytest.approx((score.raw / score.ceiling) ** 2)
    assert score.ceiling_formula == "squared_r_over_ceiling"


def test_zoo_layer_names_resolve_relative_to_net(reference, monkeypatch):
    model = build_model("cifar_vit", depth=1, embed_dim=16, num_heads=2, mlp_dim=16)
    bench = BrainScoreVisionBenchmark("MajajHong2015public.IT-pls")
    monkeypatch.setattr(bench, "load", lambda: reference)
    score = bench.score_model(model, {"IT": "blocks.0.norm1"}, None, ScoringContext(model_identifier="vit"))
    assert score.layer == "blocks.0.norm1" and np.isfinite(score.ceiled)


def test_bad_layer_region_and_id(reference, monkeypatch):
    bench = BrainScoreVisionBenchmark("MajajHong2015public.IT-pls")
    monkeypatch.setattr(bench, "load", lambda: reference)
    with pytest.raises(ConfigError, match="nearest valid names: conv"):
        bench.score_model(_TinyNet(), {"IT": "conv1"}, None, ScoringContext())
    with pytest.raises(ConfigError, match="region_layer_map"):
        bench.score_model(_TinyNet(), {"V4": "conv"}, None, ScoringContext())
    with pytest.raises(ConfigError, match="nearest registered ids: MajajHong2015.IT-pls"):
        BrainScoreVisionBenchmark("MajajHong2015.IT-pl")


def test_preprocessing_unit_range(images):
    batch = preprocess_unit_range(images[:3], size=(17, 23))
    assert batch.shape == (3, 3, 17, 23) and batch.dtype == np.float32
    assert batch.min() >= 0 and batch.max() <= 1 and batch.max() > 0.9


def test_commitment_identifier_and_layers():
    commitment = make_model_commitment(_TinyNet(), "tiny-step3", {"V1": "conv", "IT": "pool"}, "head")
    assert commitment.identifier == "tiny-step3"
    assert commitment.layers == ["conv", "pool", "head"]
    assert commitment.activations_model.identifier is False  # nothing written to ~/.result_caching
