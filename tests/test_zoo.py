"""Model zoo: [0,1] input with internal normalisation, names, local weights, fast offline failure."""

from __future__ import annotations

import socket
import time

import pytest
import torch

from lightning_modules import ZooModel, build_model
from neuroalign.core.errors import ConfigError, MissingFileError
from neuroalign.core.layers import list_layers
from neuroalign.core.layers import LayerCapture
from lightning_modules.zoo import IMAGENET_MEAN, IMAGENET_STD

TINY_VIT = {"depth": 1, "embed_dim": 32, "num_heads": 2, "mlp_dim": 32, "img_size": 16}


@pytest.mark.parametrize(
    ("name", "kwargs", "side"),
    [("cifar_vit", TINY_VIT, 16), ("resnet18", {}, 64), ("vit_tiny_patch16_224", {"img_size": 32}, 32)],
)
def test_factory_normalises_like_manual_preprocessing(name, kwargs, side):
    model = build_model(name, **kwargs).eval()
    x = torch.rand(2, 3, side, side)
    mean = model.mean.view(1, 3, 1, 1)
    std = model.std.view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.net((x - mean) / std))
    assert not torch.allclose(model(x), model.net(x))  # normalisation really happens


def test_normalisation_constants_come_from_the_weights_config():
    tv = build_model("alexnet")
    assert tv.input_size == (3, 224, 224) and tv.num_classes == 1000
    assert torch.allclose(tv.mean.flatten(), torch.tensor(IMAGENET_MEAN))
    assert torch.allclose(tv.std.flatten(), torch.tensor(IMAGENET_STD))
    small = build_model("vit_tiny_patch16_224", img_size=32)
    assert small.input_size == (3, 224, 224)  # timm pretrained_cfg of the named weights
    assert build_model("vit_tiny_patch16_224", img_size=32, input_size=32).input_size == (3, 32, 32)


def test_crossvit_input_size_from_pretrained_cfg(crossvit):
    assert crossvit.input_size == (3, 224, 224)
    from timm.models import get_pretrained_cfg

    assert get_pretrained_cfg("crossvit_18_dagger_408").input_size == (3, 408, 408)


@pytest.fixture(scope="module")
def crossvit():
    return build_model("crossvit_18_dagger_408", input_size=224).eval()


def test_crossvit_table2_layers_extract_with_recipe_shapes(crossvit):
    model = crossvit
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(44.6e6, rel=0.01)
    names = ["blocks.1.blocks.1.0.norm1", "blocks.1.blocks.1.4.norm2", "blocks.2.revert_projs.1.2", "blocks.1.blocks.1.0.mlp.act"]
    with torch.no_grad(), LayerCapture(model, names) as cap:
        out = cap.run(torch.rand(1, 3, 224, 224))
    assert tuple(out[names[0]].shape) == (1, 577, 448)
    assert tuple(out[names[1]].shape) == (1, 577, 448)
    assert tuple(out[names[2]].shape) == (1, 1, 448)
    assert tuple(out[names[3]].shape) == (1, 577, 1344)
    layers_240 = set(list_layers(build_model("crossvit_18_dagger_240")))
    assert set(names) <= layers_240


def test_unknown_model_lists_nearest_names():
    with pytest.raises(ConfigError, match="crossvit_18_dagger_408"):
        build_model("crossvit_18_dager_408")
    with pytest.raises(ConfigError, match="nearest valid names: alexnet"):
        build_model("torchvision:alexnett")


@pytest.mark.parametrize("name", ["crossvit_18_dagger_408", "alexnet"])
def test_pretrained_offline_fails_fast_naming_file_and_key(name, monkeypatch):
    monkeypatch.delenv("NEUROALIGN_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    from neuroalign.core import offline

    offline._reachable.cache_clear()

    def no_dns(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    start = time.monotonic()
    with pytest.raises(MissingFileError) as info:
        build_model(name, pretrained=True)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "weights_path" in message and "offline" in message
    assert ("crossvit_18_dagger_408.in1k" in message) if name.startswith("crossvit") else ("alexnet-owt-7be5be79.pth" in message)
    offline._reachable.cache_clear()


@pytest.mark.parametrize(("name", "kwargs", "side"), [("cifar_vit", TINY_VIT, 16), ("resnet18", {}, 32), ("vit_tiny_patch16_224", {"img_size": 32}, 32)])
def test_local_weights_file_round_trip(tmp_path, name, kwargs, side):
    torch.manual_seed(1)
    source = build_model(name, **kwargs).eval()
    path = tmp_path / "weights.pth"
    torch.save(source.net.state_dict(), path)
    loaded = build_model(name, weights_path=str(path), **kwargs).eval()
    x = torch.rand(1, 3, side, side)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), source(x))


def test_weights_from_a_lightning_checkpoint(tmp_path):
    source = build_model("cifar_vit", **TINY_VIT).eval()
    state = {f"model.net.{k}": v for k, v in source.net.state_dict().items()}
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": state, "pytorch-lightning_version": "2.6"}, path)
    loaded = build_model("cifar_vit", weights_path=str(path), **TINY_VIT).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), source(x))


def test_bad_weights_files_are_named(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="corrupt.pth"):
        build_model("resnet18", weights_path=str(corrupt))
    other = tmp_path / "other.pth"
    torch.save(build_model("resnet18").net.state_dict(), other)
    with pytest.raises(ConfigError, match="does not fit"):
        build_model("cifar_vit", weights_path=str(other), **TINY_VIT)
    with pytest.raises(MissingFileError, match="missing.pth"):
        build_model("resnet18", weights_path=str(tmp_path / "missing.pth"))


@pytest.mark.parametrize(("name", "kwargs", "side"), [("resnet18", {}, 32), ("alexnet", {}, 64), ("vit_tiny_patch16_224", {"img_size": 32}, 32), ("cifar_vit", TINY_VIT, 16)])
def test_num_classes_replaces_the_head(name, kwargs, side):
    model = build_model(name, num_classes=7, **kwargs).eval()
    assert model.num_classes == 7
    assert model(torch.rand(2, 3, side, side)).shape == (2, 7)
    model.reset_classifier(3)
    assert model(torch.rand(2, 3, side, side)).shape == (2, 3)


def test_resize_input():
    model = ZooModel("cifar_vit", model_kwargs=TINY_VIT, resize_input=True).eval()
    assert model(torch.rand(2, 3, 40, 24)).shape == (2, 10)


def test_list_layers_command_prints_shapes_for_batchnorm_models(capsys):
    from lightning_modules.zoo.commands import list_layers_command

    list_layers_command("resnet18", pattern="layer4*", shapes=True, image_size=32)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[0] == "layer4" and lines[0].endswith("(1, 512, 1, 1)")


def test_model_from_checkpoint_rebuilds_the_recorded_architecture(tmp_path):
    from lightning_modules.zoo.checkpoint import model_from_checkpoint

    source = build_model("cifar_vit", num_classes=3, **TINY_VIT).eval()
    hparams = {"model": {"class_path": "lightning_modules.ZooModel", "init_args": {"name": "cifar_vit", "num_classes": 3, "model_kwargs": TINY_VIT}}}
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": {f"model.net.{k}": v for k, v in source.net.state_dict().items()}, "hyper_parameters": hparams}, path)
    rebuilt = model_from_checkpoint(path)
    assert rebuilt.name == "cifar_vit" and rebuilt.num_classes == 3 and not rebuilt.training
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), source(x))
    bare = tmp_path / "bare.ckpt"
    torch.save({"state_dict": {f"model.net.{k}": v for k, v in source.net.state_dict().items()}}, bare)
    with pytest.raises(ConfigError, match="records no zoo model"):
        model_from_checkpoint(bare)
    assert model_from_checkpoint(bare, "cifar_vit", num_classes=3, model_kwargs=TINY_VIT).num_classes == 3


def _resnet34_checkpoint(path):
    """A RobustFinetuneModule-style checkpoint of a 10-class torchvision ResNet-34 (as `neuroalign fit` writes)."""
    net = build_model("resnet34", num_classes=10)
    hparams = {"_class_path": "lightning_modules.RobustFinetuneModule", "model": {"class_path": "lightning_modules.ZooModel", "init_args": {"name": "resnet34", "num_classes": 10}}}
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}, "hyper_parameters": hparams, "global_step": 4}, path)
    return net


def test_loader_refuses_a_deeper_network_of_the_same_family(tmp_path):
    from lightning_modules.zoo import load_weights

    r34 = build_model("resnet34").net.state_dict()
    r18 = build_model("resnet18").net
    with pytest.raises(ConfigError, match=r"r34 does not fit this model: 96 unexpected keys \(first 'layer1\.2\.") as info:  # the extra blocks
        load_weights(r18, r34, source="r34")
    assert "\n" not in str(info.value)
    before = r18.layer1[0].conv1.weight.clone()
    torch.testing.assert_close(r18.layer1[0].conv1.weight, before)  # nothing was loaded
    with pytest.raises(ConfigError, match=r"'fc.weight' has shape \(4, 512\), the model expects \(1000, 512\) \(and 1 more shape mismatches\)"):
        load_weights(r18, build_model("resnet18", num_classes=4).net.state_dict(), source="r18-4")
    with pytest.raises(ConfigError, match="2 missing keys"):
        load_weights(r18, {k: v for k, v in r18.state_dict().items() if not k.startswith("fc.")}, source="headless")


def test_model_from_checkpoint_names_the_architecture(tmp_path):
    from lightning_modules.zoo.checkpoint import model_from_checkpoint

    trained = _resnet34_checkpoint(tmp_path / "r34.ckpt")
    rebuilt = model_from_checkpoint(tmp_path / "r34.ckpt")  # its own architecture and class count
    torch.testing.assert_close(rebuilt.net.fc.weight, trained.net.fc.weight)
    with pytest.raises(ConfigError, match=r"unexpected keys.*the checkpoint holds a resnet34, not a resnet18") as info:
        model_from_checkpoint(tmp_path / "r34.ckpt", model="resnet18")
    assert "fc.weight" not in str(info.value)  # not the class count: it is taken from the checkpoint


def test_score_with_another_architecture_is_one_line(tmp_path, capsys):
    from neuroalign.cli import main

    _resnet34_checkpoint(tmp_path / "r34.ckpt")
    args = ["score", "--checkpoint", str(tmp_path / "r34.ckpt"), "--model", "resnet18", "--benchmarks", "[synthetic:x]", "--region_layer_map", "{V1: layer1}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resnet34, not a resnet18" in err[0] and "class" not in err[0]
