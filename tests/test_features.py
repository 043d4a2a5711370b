"""One-pass feature extraction: state restored, token outputs, projection of wide layers, shared sets."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from callbacks.brainscore.types import StimulusSet
from callbacks.brainscore.features import SparseProjection, extract_features, image_batches
from callbacks.brainscore.screen import load_stimulus


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.norm = nn.LayerNorm(8)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)  # (B, 16, 8)
        return self.drop(self.norm(t)).mean(1)


def _set(tmp_path, n=5):
    paths = []
    for i in range(n):
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(p)
        paths.append(p)
    return StimulusSet(tuple(paths), tuple(map(str, range(n))), 8.0)


def test_one_pass_restores_state_and_handles_tokens(tmp_path):
    model = Tokens()
    model.input_size = (3, 16, 16)
    model.train()
    model.norm.eval()  # mixed modes must come back exactly
    model.embed.weight.requires_grad_(False)
    calls = []
    model.embed.register_forward_hook(lambda *a: calls.append(1))
    s = _set(tmp_path)
    feats = extract_features(model, [s, s], ["norm", "embed"])
    assert len(calls) == 1  # one forward pass for both layers and the duplicated set
    assert feats[s.key]["norm"].shape == (5, 16 * 8) and feats[s.key]["embed"].shape == (5, 8 * 4 * 4)
    assert model.training and not model.norm.training and model.drop.training
    assert not model.embed.weight.requires_grad and torch.is_grad_enabled()
    cls = extract_features(model, [s], ["norm"], token_reduction="cls")[s.key]["norm"]
    assert cls.shape == (5, 8)
    small = extract_features(model, [s], ["norm"], max_features=32)[s.key]["norm"]
    assert small.shape == (5, 32)


def test_projection_preserves_inner_products_and_is_fixed():
    x = torch.randn(20, 5000)
    proj = SparseProjection(5000, 2048, seed=1)
    y = proj(x)
    assert torch.equal(y, SparseProjection(5000, 2048, seed=1)(x))
    ratio = (y * y).sum(1) / (x * x).sum(1)
    assert (ratio - 1).abs().max() < 0.15


def test_small_stimuli_are_placed_on_grey(tmp_path):
    p = tmp_path / "w.png"
    Image.fromarray(np.full((10, 10, 3), 255, np.uint8)).save(p)
    img = load_stimulus(p, (16, 16), stimulus_degrees=4.0, model_degrees=8.0).float() / 255
    grey = torch.tensor(128 / 255)  # brainscore-vision's canvas: PIL 'gray'
    assert img.shape == (3, 16, 16) and img[:, 0, 0].allclose(grey) and img[:, 8, 8].allclose(torch.tensor(1.0))


def test_pixels_are_kept_between_rounds_and_read_again_when_a_file_changes(tmp_path, monkeypatch):
    import os

    import callbacks.brainscore.screen as screen

    stimuli = _set(tmp_path)
    reads = []
    real = screen.read_rgb
    monkeypatch.setattr(screen, "read_rgb", lambda path, *a: reads.append(path) or real(path, *a))
    first = torch.cat(list(image_batches(stimuli, (8, 8), batch_size=2)))
    again = torch.cat(list(image_batches(stimuli, (8, 8), batch_size=2)))
    assert len(reads) == len(stimuli) and torch.equal(first, again)  # the second round read no file
    Image.fromarray(np.full((12, 12, 3), 255, np.uint8)).save(stimuli.paths[0])  # was black
    os.utime(stimuli.paths[0], ns=(1, 1))
    changed = torch.cat(list(image_batches(stimuli, (8, 8), batch_size=2)))
    assert len(reads) == 2 * len(stimuli) and changed[0].min() == 1.0 and torch.equal(changed[1:], first[1:])
