"""Units to evolve prototypes for, and scoring many units with one forward pass.

A :class:`Unit` names one scalar of a network: a layer (``named_modules()`` path, see
:mod:`neuroalign.core.layers`) plus a channel, and for

* conv maps ``(B, C, H, W)`` a spatial ``position`` (default the centre ``(H // 2, W // 2)``);
* transformer token outputs ``(B, tokens, C)`` an explicit ``token``: an index (0 = CLS) or
  ``"mean_patch"`` (the mean over tokens 1..T-1) -- never silently 0 as in the seed code;
* vectors ``(B, C)`` (a class logit, e.g. AlexNet ``classifier.6``) nothing else.

``layer: null`` scores the model's own output (the logits). Units are plain dataclasses so
LightningCLI builds a list of them from YAML::

    units:
      - {layer: classifier.6, channel: 0}
      - {layer: features.10, channel: 5, position: [6, 6]}
      - {layer: encoder.layers.encoder_layer_11, channel: 3, token: mean_patch}
      - {layer: layer3, channel: auto}       # the most responsive channel (and position), see below

``channel: auto`` lets :func:`resolve_auto_units` choose the unit: the channel whose response varies
most over a probe batch of generated images -- and, for a conv map without ``position``, the
position too -- so the unit cannot be a dead ReLU channel of this particular set of weights.

:class:`UnitSet` validates the units against a model and scores all of them with a single forward
pass (hooks through :class:`~neuroalign.core.layers.LayerCapture`, which clones outputs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from neuroalign.core.errors import ConfigError, NeuroAlignError
from neuroalign.core.layers import LayerCapture, get_layer
from neuroalign.core.modules import input_hw, module_device

__all__ = ["AUTO", "Unit", "UnitSet", "fit_to_model", "layer_outputs", "resolve_auto_units"]

TokenSpec = int | Literal["mean_patch"]
#: the ``channel`` value that asks :func:`resolve_auto_units` to choose the channel
AUTO = "auto"


@dataclass
class Unit:
    """One unit of a network.

    Args:
        layer: layer name (``named_modules()`` path of the raw network); ``None`` = the model output.
        channel: channel / feature / class index in that layer's output, or ``"auto"``: the channel
            (and, for a conv map without ``position``, the position) with the largest response variance
            over a probe batch of generated images (:func:`resolve_auto_units`).
        position: ``[row, col]`` in a conv map ``(B, C, H, W)``; default the centre ``(H // 2, W // 2)``.
        token: for ``(B, tokens, C)`` outputs: a token index (0 = CLS) or ``"mean_patch"`` (mean over
            the patch tokens 1..T-1). Required for token outputs.
        name: label used in ``scores.csv`` and file names; default built from the other fields.
    """

    layer: str | None
    channel: int | Literal["auto"]
    position: tuple[int, int] | None = None
    token: TokenSpec | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """File-name-safe identifier: ``name`` or ``<layer>_<channel>[_r<row>c<col>|_t<token>]``."""
        if self.name:
            return _safe(self.name)
        parts = [self.layer or "output", str(self.channel)]
        if self.position is not None:
            parts.append(f"r{self.position[0]}c{self.position[1]}")
        if self.token is not None:
            parts.append(f"t{self.token}")
        return _safe("_".join(parts))

    @property
    def is_auto(self) -> bool:
        """Whether the channel is still to be chosen (``channel: auto``)."""
        return self.channel == AUTO

    def to_dict(self) -> dict:
        """Plain-data form (stored in ``prototypes.pt`` and checkpoints)."""
        d = asdict(self)
        if d["position"] is not None:
            d["position"] = list(d["position"])
        return d


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def fit_to_model(images: torch.Tensor, model: nn.Module, mode: str = "bilinear") -> torch.Tensor:
    """Resize [0,1] ``images`` (N, 3, H, W) to the model's ``input_size`` when it declares one (antialiased)."""
    size = input_hw(model)
    if size is None or tuple(images.shape[-2:]) == size:
        return images
    smooth = mode in ("bilinear", "bicubic")  # antialiased, like torchvision's Resize (256 -> 32 px would alias)
    return F.interpolate(images, size=size, mode=mode, align_corners=False if smooth else None, antialias=smooth).clamp_(0, 1)


def layer_outputs(
    model: nn.Module, layers: Sequence[str | None], images: torch.Tensor, resize_mode: str = "bilinear"
) -> dict[str | None, torch.Tensor]:
    """Outputs of ``layers`` (``None`` = the model output) for [0,1] ``images``, one forward pass.

    Images are first fitted to the model's ``input_size`` (:func:`fit_to_model`); the forward stops
    after the last hooked layer when the model output is not needed.
    """
    images = fit_to_model(images, model, resize_mode)
    named = [layer for layer in dict.fromkeys(layers) if layer is not None]
    need_output = None in layers
    with LayerCapture(model, named, stop_early=not need_output) as capture:
        if need_output:
            capture.outputs = {}
            out = model(images)
            outputs: dict[str | None, torch.Tensor] = dict(capture.outputs)
            outputs[None] = out[0] if isinstance(out, (tuple, list)) else out
        else:
            outputs = dict(capture.run(images))
    return outputs


@torch.no_grad()
def resolve_auto_units(
    model: nn.Module,
    units: Sequence[Unit],
    probe_images: torch.Tensor,
    resize_mode: str = "bilinear",
    config_key: str = "model.init_args.units",
) -> tuple[list[Unit], list[str]]:
    """Choose the channel of every ``channel: auto`` unit; other units are returned unchanged.

    The chosen channel is the one whose response has the largest variance over ``probe_images``
    (e.g. the first population an evolution would draw). For a conv map ``(B, C, H, W)`` the
    position is chosen too unless the unit gives one; for token outputs the unit's ``token`` is kept.
    Several ``auto`` units reading the same place take the next-best free channels, and never a
    channel that an explicit unit names.

    Returns:
        the resolved units (``position`` filled in where it was chosen) and one line per choice.
    """
    autos = [i for i, u in enumerate(units) if u.is_auto]
    if not autos:
        return list(units), []
    for i in autos:
        if units[i].layer is not None:
            try:
                get_layer(model, units[i].layer)
            except NeuroAlignError as err:
                raise ConfigError(f"{err} (set `{config_key}[{i}].layer`)") from None
    outputs = layer_outputs(model, [units[i].layer for i in autos], probe_images, resize_mode)
    taken = {(u.layer, u.channel, tuple(u.position) if u.position else None, u.token) for u in units if not u.is_auto}
    resolved, lines = list(units), []
    for i in autos:
        unit = units[i]
        out = outputs[unit.layer].float()
        where = unit.layer if unit.layer is not None else "model output"
        if out.ndim == 4 and unit.position is not None:
            r, c = unit.position
            if not (0 <= r < out.shape[2] and 0 <= c < out.shape[3]):
                raise ConfigError(f"position {[r, c]} out of range for {where!r} with map size {out.shape[2]}x{out.shape[3]} (set `{config_key}[{i}].position`)")
            out = out[:, :, r, c]
        elif out.ndim == 3:
            if unit.token is None:
                raise ConfigError(f"{where!r} outputs {out.shape[1]} tokens; set `{config_key}[{i}].token` to a token index (0 = CLS) or 'mean_patch'")
            out = out[:, 1:].mean(1) if unit.token == "mean_patch" else out[:, int(unit.token)]
        elif out.ndim not in (2, 4):
            raise ConfigError(f"layer {where!r} has output shape {('B', *out.shape[1:])}; units need (B, C), (B, tokens, C) or (B, C, H, W)")
        variance = out.var(0, unbiased=False).nan_to_num(nan=-1.0)
        for flat in variance.flatten().argsort(descending=True, stable=True).tolist():
            index = list(divmod(flat, variance.shape[1] * variance.shape[2])) if variance.ndim == 3 else [flat]
            if variance.ndim == 3:
                index = [index[0], *divmod(index[1], variance.shape[2])]
            channel = index[0]
            position = tuple(index[1:]) if variance.ndim == 3 else (tuple(unit.position) if unit.position else None)
            if (unit.layer, channel, position, unit.token) not in taken:
                break
        taken.add((unit.layer, channel, position, unit.token))
        resolved[i] = Unit(unit.layer, channel, position, unit.token, unit.name)
        at = f" at {list(position)}" if variance.ndim == 3 else ""
        lines.append(
            f"{config_key}[{i}] {where} channel auto -> channel {channel}{at} "
            f"(response variance {variance.flatten()[flat].item():.4g} over {probe_images.shape[0]} probe images): {resolved[i].label}"
        )
    return resolved, lines


@dataclass
class _Group:
    """Units reading the same layer: column indices into the (N, K) score matrix + gather indices."""

    columns: torch.Tensor  # (K_l,) positions in the unit list
    channels: torch.Tensor  # (K_l,)
    rows: torch.Tensor | None = None  # conv: (K_l,)
    cols: torch.Tensor | None = None  # conv: (K_l,)
    token_weights: torch.Tensor | None = None  # tokens: (T, K_l)
    ndim: int = 2


class UnitSet:
    """Score K units of ``model`` on a batch of images with ONE forward pass.

    The units are validated on construction with a probe forward pass (one image of
    ``probe_size``): unknown layers (nearest names listed), channel / token / position out of range,
    token outputs without ``token``, or ``position``/``token`` on outputs of the wrong rank raise
    :class:`~neuroalign.core.errors.ConfigError` naming ``config_key``.

    Args:
        model: a [0,1]-input network (``ZooModel`` or any module).
        units: the units (order defines the columns of :meth:`activations`).
        probe_size: ``(H, W)`` of the probe image; default the model's ``input_size`` or 224.
        config_key: config key shown in error messages (``<key>[i].<field>``).
        resize_mode: interpolation used to fit images to the model's ``input_size``.
        output_shapes: per-layer output shapes without the batch axis (skips the probe pass;
            used by :meth:`subset`).
    """

    def __init__(
        self,
        model: nn.Module,
        units: Sequence[Unit],
        probe_size: tuple[int, int] | None = None,
        config_key: str = "model.init_args.units",
        resize_mode: str = "bilinear",
        output_shapes: dict[str | None, tuple[int, ...]] | None = None,
    ) -> None:
        if not units:
            raise ConfigError(f"no units given; set `{config_key}` to a list of {{layer, channel}}")
        self.model = model
        self.units = list(units)
        self.config_key = config_key
        self.resize_mode = resize_mode
        for i, unit in enumerate(self.units):
            if unit.is_auto:
                raise ConfigError(f"`{config_key}[{i}].channel` is 'auto': choose it first with resolve_auto_units()")
            if unit.layer is not None:
                try:
                    get_layer(model, unit.layer)
                except NeuroAlignError as err:
                    raise ConfigError(f"{err} (set `{config_key}[{i}].layer`)") from None
        self.layers = list(dict.fromkeys(u.layer for u in self.units))
        labels = [u.label for u in self.units]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ConfigError(f"duplicate units {dupes}; give them distinct `name`s in `{config_key}`")
        shapes = output_shapes if output_shapes is not None else self._probe(probe_size)
        self.output_shapes = {layer: tuple(shapes[layer]) for layer in self.layers}
        self._groups = {layer: self._build_group(layer, shapes[layer]) for layer in self.layers}

    @property
    def labels(self) -> list[str]:
        """One label per unit (``Unit.label``)."""
        return [u.label for u in self.units]

    def subset(self, indices: Sequence[int]) -> "UnitSet":
        """A UnitSet of the units at ``indices`` (no new probe pass)."""
        return UnitSet(
            self.model,
            [self.units[i] for i in indices],
            config_key=self.config_key,
            resize_mode=self.resize_mode,
            output_shapes=self.output_shapes,
        )

    # ------------------------------------------------------------------ validation
    def _probe(self, probe_size: tuple[int, int] | None) -> dict[str | None, tuple[int, ...]]:
        size = probe_size or input_hw(self.model) or (224, 224)
        outputs = self._forward(torch.full((1, 3, *size), 0.5, device=module_device(self.model)))
        return {layer: tuple(out.shape[1:]) for layer, out in outputs.items()}

    def _build_group(self, layer: str | None, shape: tuple[int, ...]) -> _Group:
        idx = [i for i, u in enumerate(self.units) if u.layer == layer]
        ndim = len(shape) + 1
        key = lambda i, field: f"`{self.config_key}[{i}].{field}`"  # noqa: E731
        where = layer if layer is not None else "model output"
        if ndim not in (2, 3, 4):
            raise ConfigError(f"layer {where!r} has output shape {('B', *shape)}; units need (B, C), (B, tokens, C) or (B, C, H, W)")
        n_channels = shape[0] if ndim == 4 else shape[-1]
        rows, cols, weights = [], [], []
        for i in idx:
            unit = self.units[i]
            if not 0 <= unit.channel < n_channels:
                raise ConfigError(f"channel {unit.channel} out of range for {where!r} with {n_channels} channels (set {key(i, 'channel')})")
            if ndim != 4 and unit.position is not None:
                raise ConfigError(f"position {unit.position} given but {where!r} is not a conv map (shape {('B', *shape)}); remove {key(i, 'position')}")
            if ndim != 3 and unit.token is not None:
                raise ConfigError(f"token {unit.token!r} given but {where!r} has no token axis (shape {('B', *shape)}); remove {key(i, 'token')}")
            if ndim == 4:
                h, w = shape[1], shape[2]
                r, c = unit.position if unit.position is not None else (h // 2, w // 2)
                if not (0 <= r < h and 0 <= c < w):
                    raise ConfigError(f"position {[r, c]} out of range for {where!r} with map size {h}x{w} (set {key(i, 'position')})")
                rows.append(r)
                cols.append(c)
            elif ndim == 3:
                n_tokens = shape[0]
                weight = torch.zeros(n_tokens)
                if unit.token is None:
                    raise ConfigError(f"{where!r} outputs {n_tokens} tokens; set {key(i, 'token')} to a token index (0 = CLS) or 'mean_patch'")
                if unit.token == "mean_patch":
                    if n_tokens < 2:
                        raise ConfigError(f"'mean_patch' needs at least 2 tokens, {where!r} has {n_tokens} (set {key(i, 'token')})")
                    weight[1:] = 1.0 / (n_tokens - 1)
                elif isinstance(unit.token, int) and 0 <= unit.token < n_tokens:
                    weight[unit.token] = 1.0
                else:
                    raise ConfigError(f"token {unit.token!r} out of range for {where!r} with {n_tokens} tokens (set {key(i, 'token')})")
                weights.append(weight)
        as_long = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
        group = _Group(columns=as_long(idx), channels=as_long([self.units[i].channel for i in idx]), ndim=ndim)
        if ndim == 4:
            group.rows, group.cols = as_long(rows), as_long(cols)
        if ndim == 3:
            group.token_weights = torch.stack(weights, 1)
        return group

    # ------------------------------------------------------------------ scoring
    def _forward(self, images: torch.Tensor) -> dict[str | None, torch.Tensor]:
        return layer_outputs(self.model, self.layers, images, self.resize_mode)

    @torch.no_grad()
    def activations(self, images: torch.Tensor) -> torch.Tensor:
        """Activation of every unit for every image: ``(N, K)`` float32, one forward pass.

        Args:
            images: [0,1] RGB images ``(N, 3, H, W)``; resized to the model's ``input_size`` if it has one.
        """
        outputs = self._forward(images)
        n = images.shape[0]
        scores = torch.empty(n, len(self.units), device=images.device, dtype=torch.float32)
        for layer, group in self._groups.items():  # one gather per distinct layer, not per unit
            out = outputs[layer].float()
            if tuple(out.shape[1:]) != self.output_shapes[layer]:
                raise ConfigError(
                    f"layer {layer or 'model output'!r} gave shape {tuple(out.shape[1:])} for images of size {tuple(images.shape[-2:])}, "
                    f"but the units were validated on shape {self.output_shapes[layer]}; give the model an `input_size` or pass matching `probe_size`"
                )
            dev = out.device
            ch = group.channels.to(dev)
            if group.ndim == 2:
                vals = out[:, ch]
            elif group.ndim == 4:
                vals = out[:, ch, group.rows.to(dev), group.cols.to(dev)]
            else:
                vals = (out[:, :, ch] * group.token_weights.to(dev)).sum(1)
            scores[:, group.columns.to(scores.device)] = vals.to(scores.device)
        return scores

    @torch.no_grad()
    def score(self, images: torch.Tensor, unit_index: torch.Tensor) -> torch.Tensor:
        """Score image ``i`` on unit ``unit_index[i]`` only: ``(N,)`` -- K units x lambda images in one batch.

        Args:
            images: ``(N, 3, H, W)`` [0,1] images (e.g. the populations of all units concatenated).
            unit_index: ``(N,)`` long tensor, the unit each image was generated for.
        """
        acts = self.activations(images)
        return acts.gather(1, unit_index.to(acts.device).view(-1, 1)).squeeze(1)
