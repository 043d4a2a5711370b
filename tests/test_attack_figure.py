"""Targeted-attack figure: raises the target probability, writes the PNG grid, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_modules.robust.attack_figure import attack_figure, load_images, targeted_attack
from neuroalign.core.errors import ConfigError, MissingFileError
from lightning_modules.robust.module import RobustFinetuneModule
from lightning_modules.zoo import ZooModel

TINY_VIT = {"img_size": 16, "patch_size": 8, "embed_dim": 16, "depth": 1, "num_heads": 2, "mlp_dim": 16}


@pytest.fixture
def image_files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(40, 30), (24, 24)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def tiny_model() -> ZooModel:
    torch.manual_seed(0)
    return ZooModel("cifar_vit", num_classes=5, input_size=16, resize_input=True, model_kwargs=TINY_VIT).eval()


def test_load_images_resizes_and_crops_to_a_01_batch(image_files):
    batch = load_images(image_files, 20)
    assert batch.shape == (2, 3, 20, 20) and batch.min() >= 0 and batch.max() <= 1


def test_targeted_attack_raises_target_probability(image_files):
    model = tiny_model()
    images = load_images(image_files, 16)
    perturbed, before, after = targeted_attack(model, images, target=3, eps=5.0, steps=10, step_size=0.5)
    assert (after > before).all()
    assert (perturbed - images).flatten(1).norm(dim=1).max() <= 5.0 + 1e-4


def test_attack_figure_from_checkpoint_writes_png(tmp_path, image_files):
    module = RobustFinetuneModule(tiny_model(), val_pgd_steps=0)
    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, ckpt)

    out = tmp_path / "fig" / "attack.png"
    summary = attack_figure(images=image_files, checkpoint=str(ckpt), model="cifar_vit", num_classes=5,
                            model_kwargs=TINY_VIT, target=2, eps=5.0, steps=5,
                            step_size=0.5, image_size=24, output=str(out))
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 5000
    lines = summary.splitlines()
    assert len(lines) == 3 and "p(class 2)" in lines[0]
    before, after = (float(v) for v in lines[0].split(")")[1].split("->"))
    assert after > before


def test_attack_figure_errors_are_one_line(tmp_path, image_files):
    with pytest.raises(ConfigError, match="--checkpoint"):
        attack_figure(images=image_files)
    with pytest.raises(MissingFileError, match="nothere.png"):
        load_images([str(tmp_path / "nothere.png")], 16)
    other = ZooModel("cifar_vit", num_classes=3, model_kwargs={**TINY_VIT, "embed_dim": 8, "num_heads": 2})
    ckpt = tmp_path / "other.pt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in other.state_dict().items()}}, ckpt)
    with pytest.raises(ConfigError, match="other.pt does not fit this model: .cls_token. has shape") as info:
        attack_figure(images=image_files, checkpoint=str(ckpt), model="cifar_vit", num_classes=5, model_kwargs=TINY_VIT, steps=1)
    assert "\n" not in str(info.value)
    model = tiny_model()
    with pytest.raises(ConfigError, match="target class 9"):
        targeted_attack(model, load_images(image_files, 16), target=9, eps=1.0, steps=1, step_size=0.1)


@pytest.mark.parametrize("damage", ["truncated", "not-an-image"])
def test_corrupt_image_is_one_line_naming_the_file(tmp_path, capsys, image_files, damage):
    from neuroalign.cli import main

    bad = tmp_path / "bad.png"
    data = open(image_files[0], "rb").read()
    bad.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"these bytes are no image")
    args = ["attack-figure", "--images", f"[{image_files[1]}, {bad}]", "--model", "cifar_vit", "--pretrained", "false",
            "--num_classes", "5", "--model_kwargs", "{img_size: 16, patch_size: 8, embed_dim: 16, depth: 1, num_heads: 2, mlp_dim: 16}",
            "--steps", "1", "--output", str(tmp_path / "fig.png")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"neuroalign: error: image {bad} cannot be decoded") and "`images`" in err[0]
    assert not (tmp_path / "fig.png").exists()


def test_unwritable_output_is_one_line(tmp_path, capsys, image_files):
    from neuroalign.cli import main

    (tmp_path / "afile").write_text("not a folder")
    args = ["attack-figure", "--images", f"[{image_files[0]}]", "--model", "cifar_vit", "--pretrained", "false",
            "--output", str(tmp_path / "afile" / "fig.png")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot write {tmp_path / 'afile'}" in err[0] and "`--output`" in err[0]
