"""Does the ImageNet-style JPEG pipeline feed a ViT-Tiny training step on this machine?

Times, in one run:
  * the project's ``ImageNetDataModule`` train loader (JPEG decode + seed-000 augmentation with rotation
    and greyscale, default ``num_workers``) on JPEGs of about 400x350 written to a temp dir;
  * the reference consumer: a clean training step (forward, cross-entropy, backward, Adam) of timm
    ``vit_tiny_patch16_224`` (random init) at batch 64 on random 224 px inputs.
Prints both rates in images/s and their ratio (pipeline / training; > 1 means the loader keeps up).

    OMP_NUM_THREADS=1 python benchmarks/bench_data_pipeline.py [--images 500] [--steps 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image

from datamodules import ImageNetDataModule
from datamodules.base import DEFAULT_NUM_WORKERS


def make_jpegs(root: Path, count: int, classes: int = 10, seed: int = 0) -> None:
    """Write ``count`` smooth random JPEGs of about 400x350 px into ``root/{train,val}/<class>/``."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        w, h = int(rng.integers(380, 420)), int(rng.integers(330, 370))
        low = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(low).resize((w, h), Image.BILINEAR)
        noise = rng.integers(-20, 20, (h, w, 3))
        image = Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))
        for split in ("train", "val") if i < classes else ("train",):
            folder = root / split / f"n{i % classes:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"img{i}.JPEG", quality=90)


def pipeline_rate(root: Path, batch_size: int, num_workers: int, min_images: int) -> float:
    """Images/s of the train loader over at least ``min_images`` images (after the first batch)."""
    dm = ImageNetDataModule(root, batch_size=batch_size, num_workers=num_workers, rotation=True, grayscale_p=0.25)
    dm.setup("fit")
    seen, start = 0, None
    while seen < min_images:
        for x, _ in dm.train_dataloader():
            if start is None:  # skip worker start-up
                start = time.perf_counter()
                continue
            seen += len(x)
            if seen >= min_images:
                break
    return seen / (time.perf_counter() - start)


def training_rate(batch_size: int, steps: int) -> float:
    """Images/s of clean training steps of a random-init ViT-Tiny at 224 px."""
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=1000)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    x, y = torch.rand(batch_size, 3, 224, 224), torch.randint(0, 1000, (batch_size,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500, help="JPEGs to write")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="timed ViT-Tiny training steps")
    parser.add_argument("--workers", type=int, default=DEFAULT_NUM_WORKERS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_jpegs(root, args.images)
        data = pipeline_rate(root, args.batch, args.workers, min_images=max(args.images, 2 * args.batch))
    train = training_rate(args.batch, args.steps)
    print(f"data pipeline (num_workers={args.workers}, JPEG ~400x350 -> 224, rotation + grey): {data:8.1f} images/s")
    print(f"vit_tiny_patch16_224 clean training step, batch {args.batch}:               {train:8.1f} images/s")
    print(f"ratio pipeline / training: {data / train:.2f}  ({'loader keeps up' if data > train else 'loader is the bottleneck'})")


if __name__ == "__main__":
    main()
