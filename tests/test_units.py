"""Units: what each spec scores, one forward pass for K units, cloned hooks, validation errors, YAML."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroalign.core.errors import ConfigError
from lightning_modules.evolution.units import Unit, UnitSet, fit_to_model


class _Tokens(nn.Module):
    """(B, 3, H, W) -> tokens (B, 1 + H*W/4, 6): a CLS token then 2x2 patch tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 6, 2, stride=2)
        self.blocks = nn.Sequential(nn.Identity())
        self.cls = nn.Parameter(torch.randn(1, 1, 6))

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], 1)
        return self.blocks(tokens).mean(1)


def _cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))


def test_each_unit_kind_scores_the_right_scalar():
    net = _cnn().eval()
    units = [Unit("0", 1), Unit("0", 2, position=(1, 6)), Unit("4", 3), Unit(None, 4)]
    unit_set = UnitSet(net, units, probe_size=(8, 8))
    x = torch.rand(5, 3, 8, 8)
    acts = unit_set.activations(x)
    with torch.no_grad():
        conv, logits = net[0](x), net(x)
    assert acts.shape == (5, 4)
    torch.testing.assert_close(acts[:, 0], conv[:, 1, 4, 4])  # default centre (H//2, W//2)
    torch.testing.assert_close(acts[:, 1], conv[:, 2, 1, 6])
    torch.testing.assert_close(acts[:, 2], logits[:, 3])
    torch.testing.assert_close(acts[:, 3], logits[:, 4])


def test_token_units_index_and_mean_over_patches():
    torch.manual_seed(1)
    net = _Tokens().eval()
    unit_set = UnitSet(net, [Unit("blocks", 2, token=0), Unit("blocks", 3, token=5), Unit("blocks", 1, token="mean_patch")], probe_size=(8, 8))
    x = torch.rand(4, 3, 8, 8)
    acts = unit_set.activations(x)
    with torch.no_grad():
        tokens = torch.cat([net.cls.expand(4, -1, -1), net.embed(x).flatten(2).transpose(1, 2)], 1)
    torch.testing.assert_close(acts[:, 0], tokens[:, 0, 2])
    torch.testing.assert_close(acts[:, 1], tokens[:, 5, 3])
    torch.testing.assert_close(acts[:, 2], tokens[:, 1:, 1].mean(1))
    assert not torch.allclose(acts[:, 2], tokens[:, :, 1].mean(1))  # CLS excluded


def test_zoo_vit_token_unit():
    from lightning_modules.zoo import ZooModel

    net = ZooModel("cifar_vit", model_kwargs=dict(depth=1, embed_dim=16, num_heads=2, mlp_dim=32)).eval()
    unit_set = UnitSet(net, [Unit("blocks.0.norm1", 3, token="mean_patch"), Unit("head", 0)])
    x = torch.rand(3, 3, 64, 64)
    acts = unit_set.activations(x)  # resized to the model's 32 px
    with torch.no_grad():
        torch.testing.assert_close(acts[:, 1], net(fit_to_model(x, net))[:, 0])
    with pytest.raises(ConfigError, match="token"):
        UnitSet(net, [Unit("blocks.0.norm1", 3)])  # token outputs need an explicit token
    with pytest.raises(ConfigError, match=r"token 65 out of range.*65 tokens"):
        UnitSet(net, [Unit("blocks.0.norm1", 3, token=65)])


def test_k_units_one_forward_pass_and_score_by_owner():
    net = _cnn().eval()
    calls = []
    net.register_forward_pre_hook(lambda *a: calls.append(1))
    unit_set = UnitSet(net, [Unit("0", 0), Unit("0", 3), Unit("4", 1)], probe_size=(8, 8))
    calls.clear()
    x = torch.rand(6, 3, 8, 8)
    owner = torch.tensor([0, 0, 1, 1, 2, 2])
    scores = unit_set.score(x, owner)
    assert len(calls) == 1
    acts = unit_set.activations(x)
    torch.testing.assert_close(scores, acts[torch.arange(6), owner])


def test_hooked_outputs_are_cloned_before_inplace_relu():
    net = _cnn().eval()
    unit_set = UnitSet(net, [Unit("0", c) for c in range(4)], probe_size=(8, 8))
    acts = unit_set.activations(torch.rand(16, 3, 8, 8))
    assert (acts < 0).any()  # the conv output before ReLU(inplace=True) overwrote it


@pytest.mark.parametrize(
    "unit, message",
    [
        (Unit("0.weight", 0), r"unknown layer '0.weight'; nearest valid names: .*units\[0\].layer"),
        (Unit("4", 5), r"channel 5 out of range .* 5 channels"),
        (Unit("0", -1), r"channel -1 out of range"),
        (Unit("0", 0, position=(8, 0)), r"position \[8, 0\] out of range .* 8x8"),
        (Unit("4", 0, position=(0, 0)), r"not a conv map"),
        (Unit("0", 0, token=0), r"no token axis"),
    ],
)
def test_bad_units_raise_config_errors(unit, message):
    with pytest.raises(ConfigError, match=message):
        UnitSet(_cnn(), [unit], probe_size=(8, 8))


def test_duplicate_and_empty_units_rejected():
    with pytest.raises(ConfigError, match="duplicate"):
        UnitSet(_cnn(), [Unit("4", 1), Unit("4", 1)], probe_size=(8, 8))
    with pytest.raises(ConfigError, match="no units"):
        UnitSet(_cnn(), [], probe_size=(8, 8))


def test_labels_are_file_safe_and_subset_keeps_validation():
    unit_set = UnitSet(_cnn(), [Unit("0", 1, position=(2, 3)), Unit("4", 0, name="tench / 0")], probe_size=(8, 8))
    assert unit_set.labels == ["0_1_r2c3", "tench-0"]
    sub = unit_set.subset([1])
    assert sub.labels == ["tench-0"]
    torch.testing.assert_close(sub.activations(torch.ones(2, 3, 8, 8))[:, 0], unit_set.activations(torch.ones(2, 3, 8, 8))[:, 1])


def test_units_parse_from_yaml_list():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--units", type=list[Unit])
    cfg = parser.parse_args(
        ["--units", "[{layer: classifier.6, channel: 574}, {layer: features.3, channel: 2, position: [4, 5]}, {layer: blocks.1, channel: 0, token: mean_patch}]"]
    )
    units = parser.instantiate(cfg).units
    assert units[0] == Unit("classifier.6", 574)
    assert tuple(units[1].position) == (4, 5)
    assert units[2].token == "mean_patch"
