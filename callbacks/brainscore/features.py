"""Feature extraction for scoring: ONE forward pass over each stimulus set for every requested layer.

* Hooks through :class:`neuroalign.core.layers.LayerCapture` (outputs cloned, detached); the model
  runs in eval mode under ``torch.no_grad``; every submodule's train/eval flag is restored after,
  the model is never moved (inputs go to its device) and ``requires_grad`` is never touched.
* Images are placed on the model's "screen" and resized to its input size (:func:`neuroalign.core.modules.input_hw`,
  else 224) exactly as brainscore-vision does (:mod:`callbacks.brainscore.screen`): a stimulus spanning
  fewer visual degrees than the model sits on a grey canvas, one spanning more is centre-cropped.
* Layer outputs become ``(images, features)`` matrices with
  :func:`neuroalign.core.layers.reduce_tokens`: ``(B, tokens, C)`` transformer outputs are handled
  explicitly (default ``flatten``, as Brain-Score's ``PytorchWrapper`` flattens every layer; ``cls``,
  ``mean_patch``, ``mean`` are options).
* Layers are kept whole by default (``max_features=None``): scores are exact however wide the layer
  (the PLS works in an ``n x n`` kernel form when a layer is wider than the stimuli,
  :mod:`callbacks.brainscore.metrics.pls`). CrossViT ``norm1`` (577 x 448 = 258,496 values) for 3200
  images takes 3.3 GB as float32. Before any extraction :func:`check_feature_memory` runs one image
  through the model and refuses, in one line giving the size, features that would not fit in the free
  memory of their device.
* ``max_features=k`` is the opt-in approximation: a wider layer is reduced *per batch* by a fixed sparse
  Johnson-Lindenstrauss projection (each input value added, with a random sign, to 4 of the ``k``
  outputs, scaled by 1/2; seeded by the layer name and width, so identical across epochs and runs). It
  approximately preserves the images' inner products, which is all PLS and linear readouts depend on;
  CrossViT ``norm1`` for 3200 images then takes 105 MB at ``k=8192``.
* On a GPU the features stay on the model's device (the fits run there); on the CPU they are CPU tensors.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from neuroalign.core.errors import ConfigError
from neuroalign.core.layers import LayerCapture, TokenReduction, reduce_tokens
from neuroalign.core.modules import input_hw, module_device
from neuroalign.core.progress import progress

from callbacks.brainscore.screen import load_stimulus
from callbacks.brainscore.types import ScoringContext, StimulusSet

__all__ = [
    "DEFAULT_MAX_FEATURES",
    "DEFAULT_INPUT_SIDE",
    "image_batches",
    "SparseProjection",
    "preserved_state",
    "check_feature_memory",
    "all_finite",
    "extract_features",
]

#: default of ``max_features``: ``None`` keeps every layer whole (exact scores); an int projects wider layers
DEFAULT_MAX_FEATURES: int | None = None
#: the feature memory :func:`check_feature_memory` allows, as a fraction of the device's free memory
MEMORY_FRACTION = 0.8


#: the input side assumed for a model that does not say (``model.input_size``)
DEFAULT_INPUT_SIDE = 224


#: bytes of model-input pixels (uint8, placed and resized) kept between scoring rounds; 0 turns the cache off
STIMULUS_CACHE_BYTES = 2 * 1024**3
_pixel_cache: OrderedDict[str, torch.Tensor] = OrderedDict()


def _pixel_key(stimuli: StimulusSet, hw: tuple[int, int], model_visual_degrees: float) -> str:
    """The stimulus set at this input size and field of view, and each file's size and modification time."""
    stats = []
    for path in stimuli.paths:
        try:
            st = os.stat(path)
            stats.append((st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append(None)  # read_rgb names the missing file
    return hashlib.sha1(repr((stimuli.key, tuple(hw), float(model_visual_degrees), stats)).encode()).hexdigest()


def image_batches(
    stimuli: StimulusSet, hw: tuple[int, int], batch_size: int = 64, model_visual_degrees: float = 8.0
) -> Iterator[torch.Tensor]:
    """``(B, 3, H, W)`` float [0, 1] batches of the stimulus set's images placed on the model's screen, in order.

    The uint8 pixels of every image are kept in memory (up to :data:`STIMULUS_CACHE_BYTES` over all stimulus
    sets, least recently used dropped first), so later scoring rounds -- every epoch -- neither decode nor
    resize the files again; a file that changes size or modification time is read anew.
    """
    key = _pixel_key(stimuli, hw, model_visual_degrees)
    pixels = _pixel_cache.get(key)
    if pixels is not None:
        _pixel_cache.move_to_end(key)
        for start in range(0, len(stimuli), batch_size):
            yield pixels[start : start + batch_size].float().div_(255.0)
        return
    chunks = []
    for start in range(0, len(stimuli), batch_size):
        paths = stimuli.paths[start : start + batch_size]
        chunk = torch.stack([load_stimulus(p, hw, stimuli.visual_degrees, model_visual_degrees, stimuli.config_key) for p in paths])
        chunks.append(chunk)
        yield chunk.float().div_(255.0)
    size = sum(c.numel() for c in chunks)
    if 0 < size <= STIMULUS_CACHE_BYTES:
        _pixel_cache[key] = torch.cat(chunks)
        while sum(t.numel() for t in _pixel_cache.values()) > STIMULUS_CACHE_BYTES:
            _pixel_cache.popitem(last=False)


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


def all_finite(x: torch.Tensor, rows: int = 256) -> bool:
    """True when every value of ``x`` is finite, checked ``rows`` rows at a time (no full-size mask)."""
    return all(bool(torch.isfinite(x[i : i + rows]).all()) for i in range(0, x.shape[0], rows))


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.1f} MB"


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    import psutil

    return int(psutil.virtual_memory().available)


def check_feature_memory(
    model: nn.Module,
    stimulus_sets: Sequence[StimulusSet],
    layers: Mapping[str, Sequence[str]],
    max_features: int | None = DEFAULT_MAX_FEATURES,
    token_reduction: TokenReduction = "flatten",
    extra_bytes: int = 0,
) -> int:
    """Refuse, before any extraction, features that would not fit in memory; returns the bytes they take.

    One grey image at the model's input size goes through the model to learn each layer's width; the
    features of every stimulus set (float32, ``n_images x width`` per layer, or ``x max_features``) plus
    ``extra_bytes`` must fit in :data:`MEMORY_FRACTION` of the free memory of the model's device.

    Args:
        model: the network scored.
        stimulus_sets: the stimulus sets to extract.
        layers: ``{stimulus_set.key: layer names}``.
        max_features: as in :func:`extract_features`.
        token_reduction: as in :func:`extract_features`.
        extra_bytes: memory the scoring needs beyond the features (e.g. the PLS fit).

    Raises:
        ConfigError: the features do not fit (the size of each layer is given, and ``max_features`` suggested).
    """
    wanted = sorted({name for s in stimulus_sets for name in layers.get(s.key, ())})
    if not wanted:
        return 0
    device = module_device(model)
    hw = input_hw(model) or (DEFAULT_INPUT_SIDE, DEFAULT_INPUT_SIDE)
    with preserved_state(model), LayerCapture(model, wanted) as capture:
        outputs = capture.run(torch.full((1, 3, *hw), 0.5, device=device))
        widths = {name: reduce_tokens(outputs[name], token_reduction).shape[1] for name in wanted}
    if max_features is not None:
        widths = {name: min(w, max_features) for name, w in widths.items()}
    sizes = {}
    seen = set()
    for s in stimulus_sets:
        if s.key in seen:
            continue
        seen.add(s.key)
        for name in layers.get(s.key, ()):
            sizes[(name, len(s))] = len(s) * widths[name] * 4
    total = sum(sizes.values()) + int(extra_bytes)
    free = _free_bytes(device)
    if total > MEMORY_FRACTION * free:
        biggest = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
        parts = ", ".join(f"{name} {widths[name]:,} values x {n:,} stimuli = {_size(b)}" for (name, n), b in biggest)
        raise ConfigError(
            f"Brain-Score features need {_size(total)} ({parts}) but {device} has {_size(free)} free: "
            f"set `max_features` (e.g. 8192) to project wider layers, or score fewer layers at once"
        )
    return total


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
        ``{stimulus_set.key: {layer: (n_images, n_features) float32 tensor}}`` on the model's device.
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
                        chunks[name].append(feats if device.type != "cpu" else feats.cpu())
                    del outputs
            result[stimuli.key] = {name: torch.cat(parts) for name, parts in chunks.items()}
    return result
