"""The seed-002 analyses of evolved prototypes; each writes a PNG and CSV files.

* :func:`score_distribution` (``neuroalign analyze-distribution``): the unit's scores over natural
  images, the prototype maximum as a dashed line, the % increase of the prototype max over the
  natural mean and over the natural max;
* :func:`convergence_profile` (``neuroalign analyze-convergence``): the population mean score of each
  generation (generation 0, a single initial code, left out), min-max normalised per curve (one unit
  of one run), first generation reaching 0.5 and 0.8, mean curves labelled with what they average
  (units of one run, or runs), several runs / models overlaid;
* :func:`nearest_images` (``neuroalign analyze-neighbours``): the natural images nearest to and
  furthest from a prototype in ResNet-101 logit space (Euclidean, as the seed code, or cosine, as
  its report).

Prototypes are read from ``prototypes.pt`` files (or run folders holding
``evolution/prototypes.pt``) written by :class:`~lightning_modules.evolution.module.EvolutionModule`.
The commands print their rows as a short table (:class:`~neuroalign.core.report.Report`) and the files written.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from lightning.pytorch import LightningDataModule
from torch import nn

from neuroalign.core.errors import ConfigError, MissingFileError
from neuroalign.core.figures import save_figure
from neuroalign.core.output_paths import output_dir as output_dir_checked
from neuroalign.core.report import Report
from lightning_modules.zoo import WEIGHTS_KEY, ZooModel
from lightning_modules.evolution.images import load_natural_images
from lightning_modules.zoo.checkpoint import load_checkpoint_into
from lightning_modules.evolution.outputs import read_scores
from lightning_modules.evolution.units import Unit, UnitSet, fit_to_model

log = logging.getLogger(__name__)

__all__ = ["score_distribution", "convergence_profile", "nearest_images", "load_prototype", "first_generation_reaching"]


# ------------------------------------------------------------------------------------ helpers
def _resolve(path: str | Path, filename: str, config_key: str) -> Path:
    """``path`` itself when it is a file, else ``path/evolution/<filename>`` or ``path/<filename>``."""
    path = Path(path).expanduser()
    for candidate in (path, path / "evolution" / filename, path / filename):
        if candidate.is_file():
            return candidate
    raise MissingFileError(filename, path, config_key)


def load_prototype(path: str | Path, unit: str | None = None, config_key: str = "prototypes") -> dict:
    """One unit's prototype from a ``prototypes.pt`` (or run folder).

    Returns ``{"unit": Unit, "label", "image" (3, H, W), "code" (D,), "score"}``; ``unit`` selects by
    label (default: the only / first unit).
    """
    file = _resolve(path, "prototypes.pt", config_key)
    data = torch.load(file, map_location="cpu", weights_only=True)
    labels = list(data["labels"])
    if unit is None:
        index = 0
    elif unit in labels:
        index = labels.index(unit)
    else:
        raise ConfigError(f"unit {unit!r} is not in {file} (units: {', '.join(labels)}); set `unit`")
    return {
        "unit": Unit(**data["units"][index]),
        "label": labels[index],
        "image": data["images"][index],
        "code": data["codes"][index],
        "score": float(data["scores"][index]),
    }


def _batched(fn, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``fn`` over ``images`` in batches, results concatenated (bounded memory for 150+ images)."""
    with torch.no_grad():
        return torch.cat([fn(chunk) for chunk in images.split(batch_size)])


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _short(run: str) -> str:
    """A run's folder as ``<parent>/<folder>`` for printed tables (the path of a ``scores.csv`` or a run folder)."""
    path = Path(run)
    if not path.suffix:
        return run
    base = path.parent.parent if path.parent.name == "evolution" else path.parent
    return f"{base.parent.name}/{base.name}"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _percent(new: float, ref: float, what: str) -> float:
    """Increase of ``new`` over ``ref`` in % of ``ref`` (the seed's measure, for positive activations).

    A percentage of a zero or negative baseline (e.g. logits) means nothing: NaN, with a warning that
    points at ``prototype_z`` instead.
    """
    if ref <= 0:
        log.warning("%s is %.4g <= 0: the %% increase over it is undefined (NaN); see prototype_z", what, ref)
        return float("nan")
    return 100.0 * (new - ref) / ref


# ------------------------------------------------------------------------- a. distribution
def score_distribution(
    model: ZooModel,
    prototypes: list[str],
    unit: str | None = None,
    images: str | None = None,
    datamodule: LightningDataModule | None = None,
    n_images: int = 150,
    checkpoint: str | None = None,
    output_dir: str = "analysis",
    image_size: int = 256,
    batch_size: int = 50,
    bins: int = 30,
) -> dict[str, float]:
    """Histogram of a unit's scores over natural images with the prototype maximum as a dashed line.

    Writes ``distribution_<unit>.png``, ``distribution_<unit>.csv`` (every score) and
    ``distribution_<unit>_summary.csv`` (natural mean / max, prototype max, % increases).

    Args:
        model: the target network (same as the evolution run's), taking [0,1] images: a ``ZooModel``
            (``--model.name alexnet``; any timm / torchvision / neuroalign network by name) on the command
            line, any ``nn.Module`` from Python.
        prototypes: ``prototypes.pt`` files or run folders (e.g. 50 evolutions); the prototype max is
            the highest score of their prototype images for the unit.
        unit: unit label in the prototype files (default: the first unit).
        images: folder of natural images (e.g. Imagenette val).
        datamodule: a DataModule to draw natural images from instead of ``images``.
        n_images: number of natural images.
        checkpoint: a neuroalign Lightning checkpoint whose network weights are loaded into ``model``.
        output_dir: folder for the PNG and CSV files.
        image_size: side the natural images are resized / centre-cropped to before the model's own resize.
        batch_size: images per forward pass.
        bins: histogram bins.

    Returns:
        the summary (``natural_mean``, ``natural_max``, ``prototype_max``, ``increase_over_mean_pct``,
        ``increase_over_max_pct``).
    """
    if not prototypes:
        raise ConfigError("give at least one prototypes.pt or run folder (`prototypes`)")
    if checkpoint:
        load_checkpoint_into(model, checkpoint, config_key="checkpoint")
    model.eval()
    protos = [load_prototype(p, unit) for p in prototypes]
    spec = protos[0]["unit"]
    label = protos[0]["label"]
    unit_set = UnitSet(model, [spec], probe_size=tuple(protos[0]["image"].shape[-2:]), config_key="unit")
    natural, names = load_natural_images(images, datamodule, n_images, image_size)
    nat = _batched(lambda x: unit_set.activations(x)[:, 0], natural, batch_size)
    proto_scores = unit_set.activations(torch.stack([p["image"] for p in protos]))[:, 0]
    summary = {
        "natural_mean": float(nat.mean()),
        "natural_max": float(nat.max()),
        "prototype_max": float(proto_scores.max()),
    }
    summary["increase_over_mean_pct"] = _percent(summary["prototype_max"], summary["natural_mean"], "natural mean")
    summary["increase_over_max_pct"] = _percent(summary["prototype_max"], summary["natural_max"], "natural max")
    # scale-free and valid for any sign: the prototype max in natural standard deviations above the mean
    summary["prototype_z"] = (summary["prototype_max"] - summary["natural_mean"]) / max(float(nat.std()), 1e-12)
    out = output_dir_checked(output_dir, "--output_dir")
    rows = [("natural", n, repr(float(s))) for n, s in zip(names, nat.tolist())]
    rows += [("prototype", str(p), repr(float(s))) for p, s in zip(prototypes, proto_scores.tolist())]
    _write_csv(out / f"distribution_{label}.csv", ("kind", "source", "score"), rows)
    _write_csv(out / f"distribution_{label}_summary.csv", ("unit", "n_images", *summary), [(label, len(names), *summary.values())])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(nat.numpy(), bins=bins, color="tab:blue", alpha=0.8, label=f"natural images (n={len(names)})")
    ax.axvline(summary["prototype_max"], color="tab:red", linestyle="--", label="prototype max")
    ax.set_xlabel(f"activation of {label}")
    ax.set_ylabel("images")
    pct = [f"{summary[k]:+.0f}% over natural {name}" for k, name in (("increase_over_mean_pct", "mean"), ("increase_over_max_pct", "max")) if summary[k] == summary[k]]
    ax.set_title(", ".join(pct + [f"z = {summary['prototype_z']:.1f}"]))
    ax.legend()
    save_figure(fig, out / f"distribution_{label}.png")
    return summary


# -------------------------------------------------------------------------- b. convergence
def first_generation_reaching(curve: torch.Tensor, level: float) -> int | None:
    """Index of the first value of ``curve`` that is >= ``level`` (``None`` if never)."""
    hits = (curve >= level).nonzero()
    return int(hits[0, 0]) if len(hits) else None


def _normalise(curve: torch.Tensor) -> torch.Tensor:
    lo, hi = curve.min(), curve.max()
    return torch.zeros_like(curve) if hi == lo else (curve - lo) / (hi - lo)


def _averaged(curves: list[tuple[str, str]]) -> str:
    """What a mean curve averages: ``4 units of 1 run``, ``3 runs`` (one unit each), ``8 curves (4 units x 2 runs)``."""
    runs = len({run for run, _ in curves})
    units = len({unit for _, unit in curves})
    plural = lambda n, word: f"{n} {word}{'' if n == 1 else 's'}"  # noqa: E731
    if runs == 1:
        return f"{plural(len(curves), 'unit')} of 1 run"
    if len(curves) == runs:
        return f"{plural(runs, 'run')}" + (f" of unit {curves[0][1]}" if units == 1 else " (one unit each)")
    return f"{plural(len(curves), 'curve')} ({plural(units, 'unit')} x {plural(runs, 'run')})"


def convergence_profile(
    scores: list[str],
    labels: list[str] | None = None,
    unit: str | None = None,
    thresholds: list[float] | None = None,
    include_generation_0: bool = False,
    output_dir: str = "analysis",
) -> Report:
    """The seed report's convergence profile: the population mean score of every generation, min-max
    normalised per curve, overlaid for several runs and models.

    A curve is one unit of one run (a ``scores.csv`` holds one curve per unit). Generation 0 of the
    Cholesky CMA-ES is the single initial code, not a population: its "mean" is one sample, and a
    zero code that happens to score high would put the half-max there. It is left out unless
    ``include_generation_0``: the profile starts at generation 1 and thresholds are reported as the
    generation number itself.

    Writes ``convergence.png``, ``convergence.csv`` (every curve point) and ``convergence_summary.csv``
    (first generation reaching each threshold, per curve and for the mean curve of each label, with
    what that mean averages: units of one run, or runs).

    Args:
        scores: ``scores.csv`` files or run folders.
        labels: one label (e.g. the model) per file; default the run folder names. Curves with the same
            label are averaged into one thick curve.
        unit: only this unit label (default: every unit of every file).
        thresholds: normalised levels to report (default 0.5 and 0.8).
        include_generation_0: keep generation 0 (the single initial code) in the profile.
        output_dir: folder for the PNG and CSV files.

    Returns:
        the summary rows (printed as a table with the files written).
    """
    thresholds = list(thresholds or [0.5, 0.8])
    if not scores:
        raise ConfigError("give at least one scores.csv or run folder (`scores`)")
    if labels is not None and len(labels) != len(scores):
        raise ConfigError(f"{len(labels)} labels for {len(scores)} score files; give one label per file (`labels`)")
    first = 0 if include_generation_0 else 1
    curves = []  # (label, run, unit, first generation, normalised curve, mean curve)
    for i, item in enumerate(scores):
        file = _resolve(item, "scores.csv", "scores")
        label = labels[i] if labels else (file.parent.parent.name if file.parent.name == "evolution" else file.parent.name)
        rows = read_scores(file)
        units = list(dict.fromkeys(r["unit"] for r in rows))
        if unit is not None:
            if unit not in units:
                raise ConfigError(f"unit {unit!r} is not in {file} (units: {', '.join(units)}); set `unit`")
            units = [unit]
        for u in units:
            by_gen = sorted((r["generation"], r["mean"]) for r in rows if r["unit"] == u and r["generation"] >= first)
            if not by_gen:
                raise ConfigError(f"unit {u!r} of {file} has no generation >= {first}; evolve longer or set `include_generation_0`")
            mean = torch.tensor([m for _, m in by_gen], dtype=torch.float64)
            curves.append((label, str(file), u, by_gen[0][0], _normalise(mean), mean))

    def reached(curve: torch.Tensor, start: int, t: float) -> int | None:
        index = first_generation_reaching(curve, t)
        return None if index is None else start + index

    summary, points = [], []
    for label, run, u, start, norm, mean in curves:
        points += [(label, run, u, start + g, repr(float(m)), repr(float(v))) for g, (m, v) in enumerate(zip(mean, norm))]
        summary.append({"label": label, "run": run, "unit": u, **{f"gen_{t:g}": reached(norm, start, t) for t in thresholds}})
    groups = list(dict.fromkeys(c[0] for c in curves))
    averages = {}
    for label in groups:
        members = [c for c in curves if c[0] == label]
        length = min(len(c[4]) for c in members)
        start = members[0][3]
        what = _averaged([(c[1], c[2]) for c in members])
        averages[label] = (start, torch.stack([c[4][:length] for c in members]).mean(0), what)
        summary.append({"label": label, "run": f"mean of {what}", "unit": "", **{f"gen_{t:g}": reached(averages[label][1], start, t) for t in thresholds}})
    out = output_dir_checked(output_dir, "--output_dir")
    files = [
        _write_csv(out / "convergence.csv", ("label", "run", "unit", "generation", "mean", "normalised"), points),
        _write_csv(out / "convergence_summary.csv", list(summary[0]), [list(s.values()) for s in summary]),
    ]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = {label: f"C{i % 10}" for i, label in enumerate(groups)}
    for label, _, _, start, norm, _ in curves:
        ax.plot(range(start, start + len(norm)), norm.numpy(), color=colours[label], alpha=0.25, linewidth=0.8)
    for label, (start, curve, what) in averages.items():
        ax.plot(range(start, start + len(curve)), curve.numpy(), color=colours[label], linewidth=2.2, label=f"{label} (mean of {what})")
    for t in thresholds:
        ax.axhline(t, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("generation" + ("" if include_generation_0 else " (generation 0, one initial code, left out)"))
    ax.set_ylabel("population mean score, min-max normalised")
    ax.legend(fontsize=8)
    save_figure(fig, out / "convergence.png")
    files.append(out / "convergence.png")
    short = [{**s, "run": _short(s["run"])} for s in summary]
    title = "first generation whose normalised population mean reaches " + ", ".join(f"{t:g}" for t in thresholds)
    return Report(summary, title=title, files=files, display_rows=short)


# --------------------------------------------------------------------- c. nearest images
def _default_embedding(weights_path: str | None) -> nn.Module:
    """The zoo's ResNet-101 with ImageNet weights; a missing or unreadable weights file names this
    command's own keys (``--weights_path``, ``--embedding_model``), not the zoo's config key."""
    other = "Or give another network as `--embedding_model`"
    try:
        return ZooModel("resnet101", pretrained=weights_path is None, weights_path=weights_path)
    except MissingFileError as err:
        raise MissingFileError(err.what, err.path, "--weights_path", f"{err.hint.rstrip('.')}. {other}" if err.hint else other, err.offline) from None
    except ConfigError as err:
        raise ConfigError(str(err).replace(WEIGHTS_KEY, "--weights_path")) from None


def nearest_images(
    prototypes: str,
    unit: str | None = None,
    images: str | None = None,
    datamodule: LightningDataModule | None = None,
    n_images: int = 150,
    k: int = 8,
    metric: Literal["euclidean", "cosine"] = "euclidean",
    embedding_model: ZooModel | None = None,
    weights_path: str | None = None,
    output_dir: str = "analysis",
    image_size: int = 256,
    batch_size: int = 50,
) -> Report:
    """The natural images nearest to and furthest from a prototype in an embedding (ResNet-101 logits).

    Writes ``neighbours_<unit>_<metric>.png`` (row 1: prototype + k nearest, row 2: prototype + k
    furthest) and ``neighbours_<unit>_<metric>.csv`` (every image ranked from nearest).

    Args:
        prototypes: a ``prototypes.pt`` file or run folder.
        unit: unit label in it (default: the first unit).
        images: folder of natural images.
        datamodule: a DataModule to draw natural images from instead of ``images``.
        n_images: number of natural images.
        k: images per grid row.
        metric: ``euclidean`` distance of the logits (the seed code) or ``cosine`` similarity (its report).
        embedding_model: network whose outputs are the embedding (a ``ZooModel`` on the command line,
            any ``nn.Module`` from Python); default the zoo's ``resnet101`` with ImageNet weights
            (``weights_path`` or the download cache; offline, one of the two is needed).
        weights_path: local ResNet-101 weights (e.g. torchvision's ``resnet101-cd907fc2.pth``) for the
            default embedding model.
        output_dir: folder for the PNG and CSV files.
        image_size: side the natural images are resized / centre-cropped to.
        batch_size: images per forward pass.

    Returns:
        the ranked rows (``rank``, ``source``, ``distance`` or ``similarity``), printed as a table of
        the k nearest and k furthest with the files written.
    """
    if metric not in ("euclidean", "cosine"):
        raise ConfigError(f"unknown metric {metric!r}; use 'euclidean' or 'cosine' (`metric`)")
    proto = load_prototype(prototypes, unit)
    natural, names = load_natural_images(images, datamodule, n_images, image_size)
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    k = min(k, len(names))
    net = (embedding_model if embedding_model is not None else _default_embedding(weights_path)).eval()
    embed = lambda x: net(fit_to_model(x, net)).flatten(1).float()  # noqa: E731
    nat = _batched(embed, natural, batch_size)
    ref = _batched(embed, proto["image"][None], 1)
    if metric == "euclidean":
        value = torch.cdist(nat.double(), ref.double())[:, 0]
        order = value.argsort()  # small = near
    else:
        value = torch.nn.functional.cosine_similarity(nat.double(), ref.double(), dim=1)
        order = value.argsort(descending=True)  # large = near
    column = "distance" if metric == "euclidean" else "similarity"
    ranked = [{"rank": r, "source": names[i], column: float(value[i])} for r, i in enumerate(order.tolist())]
    out = output_dir_checked(output_dir, "--output_dir")
    stem = f"neighbours_{proto['label']}_{metric}"
    _write_csv(out / f"{stem}.csv", ("rank", "source", column), [(d["rank"], d["source"], repr(d[column])) for d in ranked])
    plt = _pyplot()
    fig, axes = plt.subplots(2, k + 1, figsize=(1.6 * (k + 1), 3.6), squeeze=False)
    for row, (title, idx) in enumerate((("nearest", order[:k]), ("furthest", order.flip(0)[:k]))):
        tiles = [(proto["image"], "prototype")] + [(natural[i], f"{value[i]:.3g}") for i in idx.tolist()]
        for ax, (img, caption) in zip(axes[row], tiles):
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_title(caption, fontsize=7)
            ax.axis("off")
        axes[row][0].set_ylabel(title)
        axes[row][1].set_title(f"{title}: {axes[row][1].get_title()}", fontsize=7)
    fig.suptitle(f"{proto['label']}: {metric} in embedding space", fontsize=9)
    save_figure(fig, out / f"{stem}.png", dpi=110)
    nearer = "smaller distance" if metric == "euclidean" else "larger similarity"
    title = f"{proto['label']}: {len(ranked)} natural images ranked by {metric} ({nearer} = nearer) in the embedding"
    return Report(ranked, title=title, files=[out / f"{stem}.csv", out / f"{stem}.png"], max_rows=2 * k)
