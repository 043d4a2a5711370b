"""Layer helpers: names, nearest-name errors, globs, hook capture (cloned), token reductions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_modules import build_model
from neuroalign.core.errors import ConfigError
from neuroalign.core.layers import LayerCapture, get_layer, list_layers, nearest_names, reduce_tokens, resolve_layers


def _cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 3), nn.Flatten(), nn.LazyLinear(3))


def test_names_are_relative_to_the_raw_network():
    model = build_model("alexnet")
    names = list_layers(model)
    assert "classifier.6" in names and "features.0" in names and "net.classifier.6" not in names
    assert get_layer(model, "classifier.6") is model.net.classifier[6]
    assert list_layers(model, leaves_only=True)[0] == "features.0"


def test_unknown_layer_lists_nearest_names():
    model = build_model("alexnet")
    with pytest.raises(ConfigError) as info:
        get_layer(model, "classifier.66")
    assert "classifier.6" in str(info.value).split("nearest valid names:")[1]
    assert nearest_names("feature.0", list_layers(model), n=1) == ["features.0"]


def test_resolve_layers_expands_globs_in_model_order():
    model = build_model("cifar_vit", depth=3, embed_dim=16, num_heads=2, mlp_dim=16, img_size=8)
    assert resolve_layers(model, ["blocks.*.norm1"]) == ["blocks.0.norm1", "blocks.1.norm1", "blocks.2.norm1"]
    assert resolve_layers(model, ["head", "blocks.0"]) == ["blocks.0", "head"]
    with pytest.raises(ConfigError, match="layer pattern"):
        resolve_layers(model, ["blockz.*"])


def test_capture_clones_outputs_of_inplace_layers():
    net = _cnn()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad(), LayerCapture(net, ["0", "1"]) as cap:
        out = cap.run(x)
    # conv output captured before the in-place ReLU overwrote it: it still has negative values
    assert (out["0"] < 0).any() and (out["1"] >= 0).all()
    torch.testing.assert_close(out["1"], out["0"].clamp(min=0))
    assert not net[0]._forward_hooks  # hooks removed on exit


def test_capture_stop_early_skips_the_rest():
    net = _cnn()
    calls = []
    net[4].register_forward_pre_hook(lambda *a: calls.append(1))
    with torch.no_grad(), LayerCapture(net, ["2"], stop_early=True) as cap:
        out = cap.run(torch.randn(1, 3, 8, 8))
    assert out["2"].shape == (1, 2, 4, 4) and not calls


def test_reduce_tokens_modes():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    torch.testing.assert_close(reduce_tokens(x, "cls"), x[:, 0])
    torch.testing.assert_close(reduce_tokens(x, "mean_patch"), x[:, 1:].mean(1))
    torch.testing.assert_close(reduce_tokens(x, "mean"), x.mean(1))
    assert reduce_tokens(x, "flatten").shape == (2, 12)
    assert reduce_tokens(torch.zeros(2, 4, 5, 5), "cls").shape == (2, 100)
    with pytest.raises(ConfigError):
        reduce_tokens(torch.zeros(2, 1, 4), "mean_patch")
