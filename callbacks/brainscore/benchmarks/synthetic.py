"""A synthetic Brain-Score benchmark with known ground truth, written in the local-benchmark format.

SYNTHETIC DATA -- not recordings. It exists to test the scoring machinery end to end and to give the
quickstart something to score offline:

* stimuli: procedurally drawn PNGs (:mod:`datamodules.shapes`, the renderer of the shapes dataset) --
  one of ``n_objects`` shapes (disk, ring, square, hollow square, triangle, plus, ...) with random
  position, size, orientation and colour on a textured, noisy background; image ``i`` shows shape
  ``i % n_objects``;
* a fixed reference network (:func:`reference_network`, a 4-block ReLU CNN with seeded random
  weights) is run on the stimuli; the neuroids of region ``V1``/``V2``/``V4``/``IT`` are random
  linear projections of the ``n_components`` whitened leading principal components of the
  flattened output of reference block 0/1/2/3 (the region's
  *ground-truth layer*, recorded as ``ground_truth_layer`` in its ``benchmark.yaml``), standardised,
  plus independent Gaussian noise on each of ``repetitions`` trials (so the split-half ceiling is
  defined);
* behaviour: simulated 2AFC trials whose choice probabilities come from a seeded linear readout of
  the reference network's last block, plus labelled fitting images.

Layout written under ``output_dir``::

    images/*.png                 shared stimuli (stimulus sets of V1..IT are identical)
    V1/ V2/ V4/ IT/ behavior/    one local benchmark folder each (see callbacks.brainscore.benchmarks.local_folder)
    manifest.yaml                parameters and the ground-truth layer of every region

Scoring :func:`reference_network` itself, the layer sweep finds each region's ground-truth layer.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image
from torch import nn

from datamodules.shapes import SHAPE_CLASSES, render_shapes, sample_shape_params
from neuroalign.core.errors import ConfigError
from neuroalign.core.images import load_image_tensor
from neuroalign.core.layers import LayerCapture
from neuroalign.core.output_paths import output_dir as make_output_dir

from callbacks.brainscore.types import BEHAVIOR, REGIONS

__all__ = ["reference_network", "REFERENCE_LAYERS", "make_synthetic_benchmark", "synthetic_benchmark_dirs"]

#: ground-truth layer of each region in :func:`reference_network`
REFERENCE_LAYERS: dict[str, str] = {"V1": "blocks.0", "V2": "blocks.1", "V4": "blocks.2", "IT": "blocks.3"}
#: the stream numbers of :func:`datamodules.shapes.sample_shape_params` for the stimuli and the fitting images
_STIMULI_STREAM, _FITTING_STREAM = 2, 3
#: images rendered per call of :func:`datamodules.shapes.render_shapes`
_RENDER_CHUNK = 256


class _ReferenceNet(nn.Module):
    def __init__(self, image_size: int, n_classes: int) -> None:
        super().__init__()
        widths = (3, 12, 24, 32, 48)
        self.blocks = nn.Sequential(
            *[nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1), nn.ReLU()) for i in range(4)]
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(widths[-1], n_classes)
        self.input_size = (3, image_size, image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.blocks(x - 0.5)).flatten(1))


def reference_network(seed: int = 0, image_size: int = 32, n_classes: int = 6) -> nn.Module:
    """The fixed, seeded reference network of the synthetic benchmark (takes [0,1] images).

    Layers ``blocks.0`` .. ``blocks.3`` are the ground truth of V1, V2, V4, IT.
    """
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    net = _ReferenceNet(image_size, n_classes)
    torch.random.set_rng_state(gen_state)
    return net.eval()


def _write_images(
    folder: Path, prefix: str, n: int, n_objects: int, size: int, seed: int, stream: int
) -> list[dict[str, str]]:
    """Render ``n`` PNGs (image ``i`` shows shape ``i % n_objects``) into ``folder``; their stimuli.csv rows."""
    labels = np.arange(n) % n_objects
    params = sample_shape_params(n, n_objects, seed, stream, labels=labels)
    rows = []
    for start in range(0, n, _RENDER_CHUNK):
        indices = np.arange(start, min(n, start + _RENDER_CHUNK))
        for i, image in zip(indices, render_shapes(params, indices, size)):
            name = f"{prefix}_{i:05d}.png"
            Image.fromarray(image).save(folder / name)
            rows.append({"stimulus_id": f"{prefix}_{i:05d}", "filename": f"../images/{name}", "object_name": SHAPE_CLASSES[labels[i]]})
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def synthetic_benchmark_dirs(output_dir: str | Path) -> dict[str, Path]:
    """The benchmark folder of each region (``V1`` .. ``IT``, ``behavior``) under ``output_dir``."""
    root = Path(output_dir)
    return {region: root / region for region in (*REGIONS, BEHAVIOR)}


def make_synthetic_benchmark(
    output_dir: str | Path,
    n_stimuli: int = 240,
    n_neuroids: int = 40,
    repetitions: int = 4,
    noise: float = 0.7,
    n_components: int = 12,
    n_objects: int = 6,
    n_fitting: int = 120,
    trials_per_image: int = 100,
    logit_scale: float = 1.5,
    image_size: int = 32,
    visual_degrees: float = 8.0,
    seed: int = 0,
) -> str:
    """Write the synthetic benchmark folders (V1, V2, V4, IT, behavior) under ``output_dir``.

    Args:
        output_dir: where to write (created; existing files are overwritten).
        n_stimuli: stimuli shown for the neural and behavioural benchmarks.
        n_neuroids: neuroids per region.
        repetitions: trials per stimulus and neuroid (>= 2 so the ceiling is defined).
        noise: standard deviation of the trial noise (signal standardised to 1).
        n_components: neuroids are random mixtures of this many whitened principal components of
            the ground-truth layer's (flattened) output.
        n_objects: object (shape) categories, 2 to 12 (the first of :data:`datamodules.shapes.SHAPE_CLASSES`).
        n_fitting: labelled images to fit the behavioural readout.
        trials_per_image: simulated human 2AFC trials per behavioural stimulus.
        logit_scale: spread of the simulated choice logits (image difficulty) and the truth bonus.
        image_size: side of the square PNGs (and the reference network's input).
        visual_degrees: visual degrees the stimuli span.
        seed: seed of images, reference network, projections and noise.

    Returns:
        The output folder (a path usable as ``synthetic:<folder>`` or one region's folder as a local benchmark).
    """
    if not 2 <= n_objects <= len(SHAPE_CLASSES):
        raise ConfigError(f"n_objects must be in 2..{len(SHAPE_CLASSES)}, got {n_objects} (`n_objects`)")
    if repetitions < 2:
        raise ConfigError(f"repetitions must be at least 2 for a split-half ceiling, got {repetitions} (`repetitions`)")
    root = make_output_dir(output_dir, "output_dir")  # an unwritable folder: one line naming it and the key
    images = root / "images"
    images.mkdir(exist_ok=True)
    stim_rows = _write_images(images, "stim", n_stimuli, n_objects, image_size, seed, _STIMULI_STREAM)
    fit_rows = _write_images(images, "fit", n_fitting, n_objects, image_size, seed, _FITTING_STREAM)
    rng = np.random.default_rng(seed)

    net = reference_network(seed, image_size, n_objects)
    x = torch.stack([load_image_tensor(images / Path(r["filename"]).name, "output_dir") for r in stim_rows])
    layers = list(REFERENCE_LAYERS.values())
    with torch.no_grad(), LayerCapture(net, layers) as cap:
        outs = cap.run(x)
    dirs = synthetic_benchmark_dirs(root)
    gen = torch.Generator().manual_seed(seed + 1)
    for region, layer in REFERENCE_LAYERS.items():
        f = outs[layer].flatten(1).double()
        f = f - f.mean(0)
        # whitened leading principal components: every direction of the layer's subspace counts equally
        u = torch.linalg.svd(f, full_matrices=False)[0][:, :n_components]
        proj = torch.randn(u.shape[1], n_neuroids, generator=gen, dtype=torch.float64)
        signal = u @ proj
        signal = (signal - signal.mean(0)) / signal.std(0).clamp_min(1e-12)
        trials = signal.unsqueeze(0) + noise * torch.randn(repetitions, *signal.shape, generator=gen, dtype=torch.float64)
        folder = dirs[region]
        folder.mkdir(exist_ok=True)
        np.save(folder / "responses.npy", trials.float().numpy())
        _write_csv(folder / "stimuli.csv", stim_rows)
        meta = {
            "name": f"synthetic-{region}",
            "kind": "neural",
            "region": region,
            "visual_degrees": visual_degrees,
            "stratify_by": "object_name",
            "synthetic": True,
            "ground_truth_layer": layer,
            "description": "SYNTHETIC: noisy random projections of a seeded reference CNN (callbacks.brainscore.benchmarks.synthetic)",
        }
        (folder / "benchmark.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))

    # behaviour: 2AFC trials from a seeded readout of the last block
    with torch.no_grad():
        logits = net(x).double()
    logits = logit_scale * (logits - logits.mean(0)) / logits.std(0).clamp_min(1e-12)  # image-level difficulty
    truth_idx = np.arange(n_stimuli) % n_objects
    logits[np.arange(n_stimuli), truth_idx] += logit_scale
    trial_rows = []
    for i in range(n_stimuli):
        for k in range(trials_per_image):
            d = int(rng.integers(0, n_objects - 1))
            d = d + (d >= truth_idx[i])
            p_err = 1 / (1 + math.exp(float(logits[i, truth_idx[i]] - logits[i, d])))
            chose = d if rng.uniform() < p_err else truth_idx[i]
            trial_rows.append(
                {
                    "stimulus_id": stim_rows[i]["stimulus_id"],
                    "truth": SHAPE_CLASSES[truth_idx[i]],
                    "choice": SHAPE_CLASSES[chose],
                    "subject": f"s{k % 5}",
                    "distractor": SHAPE_CLASSES[d],
                }
            )
    folder = dirs["behavior"]
    folder.mkdir(exist_ok=True)
    _write_csv(folder / "stimuli.csv", stim_rows)
    _write_csv(folder / "trials.csv", trial_rows)
    _write_csv(folder / "fitting.csv", [{**r, "label": r["object_name"]} for r in fit_rows])
    meta = {
        "name": "synthetic-behavior",
        "kind": "behavior",
        "visual_degrees": visual_degrees,
        "synthetic": True,
        "ground_truth_layer": "head",
        "description": "SYNTHETIC: simulated 2AFC trials from a seeded reference CNN (callbacks.brainscore.benchmarks.synthetic)",
    }
    (folder / "benchmark.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    manifest = {
        "synthetic": True,
        "seed": seed,
        "n_stimuli": n_stimuli,
        "n_neuroids": n_neuroids,
        "repetitions": repetitions,
        "noise": noise,
        "n_objects": n_objects,
        "image_size": image_size,
        "ground_truth_layers": dict(REFERENCE_LAYERS),
        "reference_network": f"callbacks.brainscore.benchmarks.synthetic.reference_network(seed={seed}, image_size={image_size}, n_classes={n_objects})",
    }
    (root / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return str(root)
