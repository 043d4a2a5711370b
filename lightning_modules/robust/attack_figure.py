"""Targeted-attack figure (seed 000, Fig. 1): ``neuroalign attack-figure``.

Each image is pushed towards a target class (goldfish, ImageNet index 1, by default) with targeted
PGD-L2 on [0,1] pixels (:func:`lightning_modules.robust.pgd.pgd`); the PNG grid shows, per image, the
original, the perturbed image and the amplified difference, each titled with the target-class
probability before / after.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.transforms import v2 as T

from lightning_modules.robust.pgd import pgd
from lightning_modules.zoo import ZooModel
from lightning_modules.zoo.checkpoint import model_from_checkpoint
from neuroalign.core.errors import ConfigError
from neuroalign.core.figures import save_figure
from neuroalign.core.images import read_rgb
from neuroalign.core.output_paths import output_dir, writing

__all__ = ["attack_figure", "load_images", "load_attack_model", "targeted_attack"]


def load_images(paths: Sequence[str | Path], image_size: int) -> Tensor:
    """Load images as a (B, 3, S, S) [0,1] batch: bicubic resize of the shorter side, centre crop.

    A missing file is a :class:`~neuroalign.core.errors.MissingFileError`, a corrupt or truncated one a
    one-line :class:`~neuroalign.core.errors.ConfigError`; both name the file and ``images``.
    """
    transform = T.Compose(
        [
            T.Resize(image_size, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
            T.CenterCrop(image_size),
            T.ToImage(),
            T.ToDtype(torch.float32, scale=True),
        ]
    )
    return torch.stack([transform(read_rgb(path, "images")) for path in paths])


def load_attack_model(
    checkpoint: str | None,
    model: str | None,
    pretrained: bool = True,
    weights_path: str | None = None,
    num_classes: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> nn.Module:
    """The network to attack: from a neuroalign checkpoint, or a zoo model by name.

    A checkpoint written by ``neuroalign fit`` rebuilds its own model; one whose hyper-parameters
    hold no model config needs ``model`` (and ``num_classes`` / ``model_kwargs`` if they differ from
    the defaults) too: its weights are then loaded into that zoo model.
    """
    if checkpoint is None:
        if model is None:
            raise ConfigError("give a checkpoint (`--checkpoint`) or a zoo model name (`--model`)")
        return ZooModel(model, pretrained=pretrained and weights_path is None, weights_path=weights_path,
                        num_classes=num_classes, model_kwargs=model_kwargs)
    return model_from_checkpoint(checkpoint, model, num_classes=num_classes, model_kwargs=model_kwargs, config_key="--checkpoint")


def targeted_attack(
    model: nn.Module, images: Tensor, target: int, eps: float, steps: int, step_size: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Targeted PGD-L2 towards ``target``; returns (perturbed, p_target before, p_target after)."""
    model.eval()
    y = torch.full((images.shape[0],), target, dtype=torch.long)
    perturbed = pgd(model, images, y, eps, step_size, steps, norm="l2", targeted=True, random_start=False)
    with torch.no_grad():
        before = model(images).softmax(-1)[:, target]
        after = model(perturbed).softmax(-1)[:, target]
    return perturbed, before, after


def attack_figure(
    images: list[str],
    checkpoint: str | None = None,
    model: str | None = None,
    pretrained: bool = True,
    weights_path: str | None = None,
    num_classes: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    target: int = 1,
    eps: float = 300.0,
    steps: int = 500,
    step_size: float = 1.0,
    image_size: int = 256,
    amplify: float = 10.0,
    output: str = "attack.png",
) -> str:
    """Write the targeted-attack PNG grid (original | perturbed | amplified difference per image).

    Args:
        images: image files to attack.
        checkpoint: a neuroalign checkpoint (``.ckpt``) of the model to attack.
        model: a zoo model name (used alone, or to name a checkpoint's architecture).
        pretrained: with ``model`` alone, load its published weights.
        weights_path: with ``model`` alone, a local weights file instead.
        num_classes: classifier outputs of ``model`` (default: its weights').
        model_kwargs: extra network arguments of ``model`` (e.g. ``depth`` of ``cifar_vit``).
        target: target class index (1 = goldfish in ImageNet).
        eps: L2 radius on the [0,1] scale of the ``image_size`` image (seed: 300, nearly unconstrained).
        steps: PGD steps (seed: 500).
        step_size: L2 step length (seed: 1).
        image_size: side of the attacked images (resize + centre crop); the model resizes them to its
            own input size if it can (``ZooModel.resize_input``).
        amplify: factor on the difference image (shown around mid-grey).
        output: PNG path.

    Returns:
        One line per image (target probability before -> after), then ``figure: <png path>``.
    """
    if not images:
        raise ConfigError("no images to attack; pass `--images [a.jpg,b.jpg]`")
    figure = Path(output)
    output_dir(figure.parent, "--output")  # before the attack: an unwritable folder fails at once
    batch = load_images(images, image_size)  # a missing or corrupt image fails before the model is built
    net = load_attack_model(checkpoint, model, pretrained, weights_path, num_classes, model_kwargs)
    if hasattr(net, "resize_input"):
        net.resize_input = True
    perturbed, before, after = targeted_attack(net, batch, target, eps, steps, step_size)
    with writing(figure, "--output"):
        _draw(batch, perturbed, before, after, target, amplify, figure, [Path(p).name for p in images])
    lines = [f"{name}: p(class {target}) {b:.4f} -> {a:.4f}" for name, b, a in zip(images, before.tolist(), after.tolist())]
    return "\n".join([*lines, f"figure: {output}"])


def _draw(
    original: Tensor, perturbed: Tensor, before: Tensor, after: Tensor, target: int, amplify: float, output: Path,
    names: list[str],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = original.shape[0]
    fig, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
    diff = (0.5 + amplify * (perturbed - original)).clamp(0, 1)
    columns = [
        (original, lambda i: f"{names[i]}\np({target}) = {before[i]:.3f}"),
        (perturbed, lambda i: f"perturbed\np({target}) = {after[i]:.3f}"),
        (diff, lambda i: f"difference x{amplify:g}\nL2 = {(perturbed[i] - original[i]).norm():.1f}"),
    ]
    for i in range(rows):
        for j, (imgs, title) in enumerate(columns):
            ax = axes[i, j]
            ax.imshow(imgs[i].permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_title(title(i), fontsize=9)
            ax.axis("off")
    save_figure(fig, output)
