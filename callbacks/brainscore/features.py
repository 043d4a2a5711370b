"""Feature extraction for scoring: ONE forward pass over each stimulus set for every requested layer.

* Hooks through :class:`neuroalign.core.layers.LayerCapture` (outputs cloned, detached); the model
  runs in eval mode under ``torch.no_grad``; every submodule's train/eval flag is restored after,
  the model is never moved (inputs go to its device) and ``requires_grad`` is never touched.
* Images are loaded as [0,1] RGB, resized to the model's input size (:func:`neuroalign.core.modules.input_hw`,
  else 224) and placed on the model's "screen" like Brain-Score's ``place_on_screen``:
  a stimulus spanning fewer visual degrees than the model is shrunk onto a grey (0.5) canvas, one
  spanning more is centre-cropped.
* Layer outputs become ``(images, features)`` matrices with
  :func:`neuroalign.core.layers.reduce_tokens`: ``(B, tokens, C)`` transformer outputs are handled
  explicitly (default ``flatten``, as Brain-Score's ``PytorchWrapper`` flattens every layer; ``cls``,
  ``mean_patch``, ``mean`` are options).
* Large layers are reduced *per batch* so memory stays small: a layer with more than
  ``max_features`` values per image (default 8192) is multiplied by a fixed sparse Johnson-
  Lindenstrauss projection (each input value added, with a random sign, to 4 of the
  ``max_features`` outputs, scaled by 1/2; seeded by the layer name and width, so identical across
  epochs and runs). It approximately preserves the images' inner products, which is all PLS and
  linear readouts depend on. CrossViT ``norm1`` (577 x 448 = 258,496 values) for 3200 images then
  takes 105 MB instead of 3.3 GB. Set ``max_features=None`` to keep layers whole.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neuroalign.core.images import load_image_tensor
from neuroalign.core.layers import LayerCapture, TokenReduction, reduce_tokens
from neuroalign.core.modules import input_hw, module_device
from neuroalign.core.progress import progress

from callbacks.brainscore.types import ScoringContext, StimulusSet

__all__ = [
    "DEFAULT_MAX_FEATURES",
    "DEFAULT_INPUT_SIDE",
    "load_image",
    "image_batches",
    "SparseProjection",
    "preserved_state",
    "extract_features",
]

#: layers wider than this are randomly projected to this many features
DEFAULT_MAX_FEATURES = 8192
_GREY = 0.5


#: the input side assumed for a model that does not say (``model.input_size``)
DEFAULT_INPUT_SIDE = 224


def load_image(path, hw: tuple[int, int], visual_degrees: float = 8.0, model_visual_degrees: float = 8.0) -> torch.Tensor:
    """Load one image as a ``(3, H, W)`` [0,1] tensor placed on the model's screen (see module doc)."""
    x = load_image_tensor(path, "stimuli.csv `filename`", "fix or remove it in stimuli.csv").unsqueeze(0)
    h, w = x.shape[-2:]
    H, W = hw
    ratio = float(visual_degrees) / float(model_visual_degrees)
    if ratio > 1:  # stimulus wider than the model's field of view: keep the central part
        ch, cw = max(1, round(h / ratio)), max(1, round(w / ratio))
        top, left = (h - ch) // 2, (w - cw) // 2
        x = x[..., top : top + ch, left : left + cw]
        ratio = 1.0
    inner = (max(1, round(H * ratio)), max(1, round(W * ratio)))
    x = F.interpolate(x, size=inner, mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    if inner != (H, W):
        canvas = torch.full((1, 3, H, W), _GREY)
        top, left = (H - inner[0]) // 2, (W - inner[1]) // 2
        canvas[..., top : top + inner[0], left : left + inner[1]] = x
        x = canvas
    return x[0]


def image_batches(
    stimuli: StimulusSet, hw: tuple[int, int], batch_size: int = 64, model_visual_degrees: float = 8.0
) -> Iterator[torch.Tensor]:
    """``(B, 3, H, W)`` batches of the stimulus set's images, in order."""
    for start in range(0, len(stimuli), batch_size):
        paths = stimuli.paths[start : start + batch_size]
        yield torch.stack([load_image(p, hw, stimuli.visual_degrees, model_visual_degrees) for p in paths])


class SparseProjection:
    """Fixed sparse random projection ``R^d -> R^k`` (each input to ``nnz`` outputs with random signs).

    Args:
        in_features: input width ``d``.
        out_features: output width ``k``.
        seed: seed (combined with ``in_features``).
        nnz: non-zeros per input value.
    """

    def __init__(self, in_features: int, out_features: int, seed: int = 0, nnz: int = 4) -> None:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + in_features)
        self.index = torch.randint(0, out_features, (nnz, in_features), generator=gen)
        self.sign = torch.randint(0, 2, (nnz, in_features), generator=gen).float().mul_(2).sub_(1) / math.sqrt(nnz)
        self.out_features = out_features

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``(B, d)`` to ``(B, k)``."""
        index, sign = self.index.to(x.device), self.sign.to(device=x.device, dtype=x.dtype)
        out = x.new_zeros(x.shape[0], self.out_features)
        for j in range(index.shape[0]):
            out.index_add_(1, index[j], x * sign[j])
        return out


class preserved_state:
    """Context manager: eval mode + no grad inside; every submodule's ``training`` flag restored after."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> nn.Module:
        self._modes = [(m, m.training) for m in self.model.modules()]
        self._grad = torch.is_grad_enabled()
        torch.set_grad_enabled(False)
        self.model.eval()
        return self.model

    def __exit__(self, *exc) -> None:
        for module, mode in self._modes:
            module.training = mode
        torch.set_grad_enabled(self._grad)


def _layer_seed(seed: int, layer: str) -> int:
    return seed + int(hashlib.sha1(layer.encode()).hexdigest()[:8], 16)


def extract_features(
    model: nn.Module,
    stimulus_sets: Sequence[StimulusSet],
    layers: Sequence[str] | Mapping[str, Sequence[str]],
    context: ScoringContext | None = None,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    token_reduction: TokenReduction = "flatten",
) -> dict[str, dict[str, torch.Tensor]]:
    """Features of every layer for every stimulus set, one forward pass per set (a progress bar per
    stimulus set on a terminal, :func:`neuroalign.core.progress.progress`).

    Args:
        model: any [0,1]-input module (a ``ZooModel`` or a plain network).
        stimulus_sets: the stimulus sets (equal keys are extracted once).
        layers: layer names for every set, or a dict ``{stimulus_set.key: layer names}``.
        context: batch size and model visual degrees (defaults of :class:`ScoringContext`).
        max_features: project wider layers to this many features (``None``: never).
        token_reduction: how ``(B, tokens, C)`` outputs become vectors (see ``reduce_tokens``).

    Returns:
        ``{stimulus_set.key: {layer: (n_images, n_features) float32 CPU tensor}}``.
    """
    context = context or ScoringContext()
    device = module_device(model)
    hw = input_hw(model) or (DEFAULT_INPUT_SIDE, DEFAULT_INPUT_SIDE)
    result: dict[str, dict[str, torch.Tensor]] = {}
    with preserved_state(model):
        for stimuli in stimulus_sets:
            if stimuli.key in result:
                continue
            wanted = list(layers.get(stimuli.key, ())) if isinstance(layers, Mapping) else list(layers)
            wanted = list(dict.fromkeys(wanted))
            if not wanted:
                continue
            chunks: dict[str, list[torch.Tensor]] = {name: [] for name in wanted}
            projections: dict[str, SparseProjection | None] = {}
            with LayerCapture(model, wanted) as capture:
                batches = image_batches(stimuli, hw, context.batch_size, context.model_visual_degrees)
                n_batches = -(-len(stimuli) // context.batch_size)
                folder = stimuli.paths[0].parent.name if stimuli.paths else "-"
                desc = f"Brain-Score features: {len(stimuli)} stimuli of {folder}"
                for batch in progress(batches, total=n_batches, desc=desc, unit="batch"):
                    outputs = capture.run(batch.to(device))
                    for name in wanted:
                        feats = reduce_tokens(outputs[name], token_reduction).float()
                        if name not in projections:
                            width = feats.shape[1]
                            too_wide = max_features is not None and width > max_features
                            projections[name] = (
                                SparseProjection(width, max_features, _layer_seed(context.seed, name)) if too_wide else None
                            )
                        if projections[name] is not None:
                            feats = projections[name](feats)
                        chunks[name].append(feats.cpu())
                    del outputs
            result[stimuli.key] = {name: torch.cat(parts) for name, parts in chunks.items()}
    return result
