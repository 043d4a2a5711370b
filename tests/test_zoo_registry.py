"""The zoo registry: a user's own network registered with @register_model, built by name (also from YAML
and from a checkpoint), strict weights loading for it, and name errors that list the nearest names."""

from __future__ import annotations

import importlib
import textwrap

import pytest
import torch
from jsonargparse import ArgumentParser
from safetensors.torch import save_file
from torch import nn

from lightning_modules.zoo import ModelDefaults, ModelFamily, ZooModel, available_models, build_model, register_family, register_model
from lightning_modules.zoo.checkpoint import model_from_checkpoint
from neuroalign.core.errors import ConfigError

#: a user's module: what a project of its own would ship next to its configs
USER_MODULE = '''
from torch import nn

from lightning_modules.zoo import register_model


@register_model("zoo_test_cnn", mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), input_size=12, num_classes=10)
def zoo_test_cnn(num_classes: int = 10, width: int = 4) -> nn.Module:
    """A tiny CNN: conv, ReLU, global pooling, linear head."""
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
'''
NAME = "zoo_user_nets:zoo_test_cnn"


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """``zoo_user_nets`` importable from ``tmp_path`` (as a module next to a user's config would be)."""
    (tmp_path / "zoo_user_nets.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return "zoo_user_nets"


def test_registered_network_is_built_by_module_and_name(user_module):
    model = ZooModel(NAME, num_classes=3, model_kwargs={"width": 6}).eval()
    assert model.source == "custom" and model.num_classes == 3 and model.input_size == (3, 12, 12)
    assert isinstance(model.net[-1], nn.Linear) and model.net[-1].in_features == 6
    x = torch.rand(2, 3, 12, 12)
    mean = torch.tensor((0.5, 0.4, 0.3)).view(1, 3, 1, 1)
    std = torch.tensor((0.2, 0.25, 0.3)).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.net((x - mean) / std))  # the registered normalisation
    assert ZooModel(**model.architecture()).net[-1].out_features == 3  # the recorded name rebuilds it
    assert available_models("zoo_test_*", family="custom") == ["zoo_test_cnn"]
    assert ZooModel("zoo_test_cnn").num_classes == 10  # bare name once the module is imported


def test_registered_network_from_a_yaml_config(user_module):
    parser = ArgumentParser()
    parser.add_argument("--model", type=nn.Module)
    config = parser.parse_string(textwrap.dedent(f"""
        model:
          class_path: lightning_modules.zoo.ZooModel
          init_args: {{name: "{NAME}", num_classes: 4, model_kwargs: {{width: 5}}}}
    """))
    model = parser.instantiate_classes(config).model
    assert isinstance(model, ZooModel) and model.num_classes == 4 and model.net[0].out_channels == 5


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_registered_network_loads_weights_strictly(user_module, tmp_path, suffix):
    torch.manual_seed(0)
    source = ZooModel(NAME).eval()
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in source.net.state_dict().items()}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    loaded = ZooModel(NAME, weights_path=str(path)).eval()
    x = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), source(x))
    with pytest.raises(ConfigError, match=rf"weights{suffix} does not fit this model: '0\.(weight|bias)' has shape \(4,.*the model expects \(8,.*\(and 2 more shape mismatches\)"):
        ZooModel(NAME, weights_path=str(path), model_kwargs={"width": 8})


def test_another_class_count_keeps_a_fresh_head_and_loads_the_rest(user_module, tmp_path):
    source = ZooModel(NAME).net  # 10 classes
    path = tmp_path / "ten.pth"
    torch.save(source.state_dict(), path)
    three = ZooModel(NAME, weights_path=str(path), num_classes=3).net
    torch.testing.assert_close(three[0].weight, source[0].weight)
    assert three[-1].out_features == 3
    ten = ZooModel(NAME, weights_path=str(path), num_classes=10).net  # same count: the head loads too
    torch.testing.assert_close(ten[-1].weight, source[-1].weight)
    with pytest.raises(ConfigError, match=r"'4.weight' has shape \(10, 4\), the model expects \(3, 4\) \(and 1 more"):
        ZooModel(NAME, weights_path=str(path), model_kwargs={"num_classes": 3})  # no class count asked: the head must fit


def test_registered_network_rebuilds_from_a_checkpoint(user_module, tmp_path):
    source = ZooModel(NAME, num_classes=2).eval()
    hparams = {"model": {"class_path": "lightning_modules.zoo.ZooModel", "init_args": source.architecture()}}
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": {f"model.net.{k}": v for k, v in source.net.state_dict().items()}, "hyper_parameters": hparams}, path)
    rebuilt = model_from_checkpoint(path)
    assert rebuilt.name == NAME and rebuilt.num_classes == 2
    torch.testing.assert_close(rebuilt.net[-1].weight, source.net[-1].weight)


def test_pretrained_registered_network_names_the_weights_key(user_module):
    with pytest.raises(ConfigError, match="zoo_test_cnn has no downloadable weights; set weights_path"):
        ZooModel(NAME, pretrained=True)
    with pytest.raises(ConfigError, match=r"configs/seed002/cifar10_vit\.yaml"):
        ZooModel("cifar_vit", pretrained=True)


def test_a_name_taken_by_another_builder_is_refused():
    with pytest.raises(ConfigError, match="'cifar_vit' is already registered by lightning_modules.zoo.cifar_vit.CifarViT"):
        register_model("cifar_vit")(lambda **kwargs: nn.Linear(2, 2))


class ToyFamily(ModelFamily):
    """A family of its own: one linear classifier on 4x4 images."""

    name = "zoo_test_toys"

    def names(self) -> list[str]:
        return ["zoo_test_linear"]

    def build(self, name, pretrained, num_classes, kwargs):
        classes = num_classes or 2
        return nn.Sequential(nn.Flatten(), nn.Linear(48, classes)), ModelDefaults((0.5,) * 3, (0.5,) * 3, 4, classes)


def test_a_registered_family_builds_by_prefix_and_loads_weights_strictly(tmp_path):
    register_family(ToyFamily())
    model = ZooModel("zoo_test_toys:zoo_test_linear", num_classes=3)
    assert model.source == "zoo_test_toys" and model.input_size == (3, 4, 4) and model(torch.rand(1, 3, 4, 4)).shape == (1, 3)
    torch.save(model.net.state_dict(), tmp_path / "toy.pth")
    torch.testing.assert_close(ZooModel("zoo_test_linear", weights_path=str(tmp_path / "toy.pth"), num_classes=3).net[1].weight, model.net[1].weight)
    with pytest.raises(ConfigError, match="does not fit"):
        ZooModel("zoo_test_linear", weights_path=str(tmp_path / "toy.pth"))  # 2 classes: the file's 3-way head does not fit
    with pytest.raises(ConfigError, match="nearest valid families: zoo_test_toys"):
        build_model("zoo_test_toy:zoo_test_linear")


def test_unknown_family_module_or_name_lists_the_nearest(user_module, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown model family 'timmm'.*nearest valid families: timm"):
        build_model("timmm:resnet18")
    with pytest.raises(ConfigError, match=r"unknown model family 'no_such_pkg\.nets'"):
        build_model("no_such_pkg.nets:tiny")
    with pytest.raises(ConfigError, match=r"registers no model 'zoo_test_cn'.*nearest registered names: zoo_test_cnn"):
        build_model("zoo_user_nets:zoo_test_cn")
    with pytest.raises(ConfigError, match=r"unknown custom model 'cifar_vt'; nearest valid names: cifar_vit"):
        build_model("custom:cifar_vt")
    (tmp_path / "zoo_broken_nets.py").write_text("import zoo_missing_dependency\n")
    with pytest.raises(ModuleNotFoundError, match="zoo_missing_dependency"):  # the user's own error, not a name error
        build_model("zoo_broken_nets:tiny")


def test_timm_converts_a_checkpoint_that_does_not_fit_as_it_is(tmp_path):
    """timm's own loader still serves timm checkpoints: 224-pixel ViT weights into a 32-pixel ViT
    (position embeddings resampled by timm's checkpoint filter), then loaded strictly."""
    source = build_model("vit_tiny_patch16_224", depth=1).net
    path = tmp_path / "vit224.pth"
    torch.save(source.state_dict(), path)
    small = build_model("vit_tiny_patch16_224", depth=1, img_size=32, weights_path=str(path)).net
    torch.testing.assert_close(small.patch_embed.proj.weight, source.patch_embed.proj.weight)
    assert small.pos_embed.shape == (1, 5, 192) and source.pos_embed.shape == (1, 197, 192)
    five = build_model("vit_tiny_patch16_224", depth=1, img_size=32, num_classes=5, weights_path=str(path)).net
    torch.testing.assert_close(five.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    assert five.head.out_features == 5  # a fresh head of the asked class count
    with pytest.raises(ConfigError, match="does not fit this model"):
        build_model("vit_tiny_patch16_224", depth=2, img_size=32, weights_path=str(path))


def test_the_built_in_mlp_sees_raw_pixels_names_its_layers_and_sets_the_input_size():
    model = ZooModel("mlp", num_classes=4, model_kwargs={"img_size": 8, "width": 6, "depth": 3})
    assert model.input_size == (3, 8, 8)
    assert [name for name, _ in model.net.named_children()] == ["flatten", "fc1", "act1", "fc2", "act2", "fc3", "act3", "head"]
    assert model.net.fc1.in_features == 3 * 8 * 8 and model.net.head.out_features == 4
    x = torch.rand(5, 3, 8, 8)
    torch.testing.assert_close(model(x), model.net(x))  # mean 0, std 1: no normalisation in front
    linear = ZooModel("mlp", num_classes=3, model_kwargs={"img_size": 8, "depth": 0})
    assert [name for name, _ in linear.net.named_children()] == ["flatten", "head"]
    with pytest.raises(ConfigError, match="no downloadable weights"):
        ZooModel("mlp", pretrained=True)
    with pytest.raises(ValueError, match="depth >= 0"):
        ZooModel("mlp", model_kwargs={"width": 0})
