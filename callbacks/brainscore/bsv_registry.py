"""What brainscore-vision registers: its benchmark ids, and the region and kind of a loaded benchmark.

* :func:`registered_benchmark_ids` -- every id of ``brainscore_vision.benchmark_registry``: the
  registrations its benchmark plugins declare (``benchmark_registry['<id>'] = ...`` in
  ``brainscore_vision/benchmarks/<plugin>/__init__.py``, read without importing brainscore-vision)
  plus any a user's own plugin added at run time. :func:`check_benchmark_id` turns an unknown id into
  a one-line error listing the nearest registered ids.
* :func:`benchmark_kind` -- neural or behavioural, told from the benchmark object itself.
* :func:`benchmark_region` -- the region a benchmark scores, in this order:

  1. the user's ``benchmark_regions: {id: region}`` override;
  2. behavioural benchmarks: ``behavior``;
  3. the benchmark's ``parent`` when it is a region or starts with one (``V1``, ``V1-orientation``);
  4. its ``region`` attribute (brainscore-vision's ``NeuralBenchmark`` reads it from its
     assembly's ``region`` coord) or the ``region`` coord of its assembly;
  5. a region name in its registry id or its own identifier (``MajajHong2015public.IT-pls``);

  when none answers, a one-line :class:`~neuroalign.core.errors.ConfigError` asks for the override.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np

from neuroalign.core.errors import ConfigError
from neuroalign.core.layers import nearest_names

from callbacks.brainscore.types import BEHAVIOR, REGIONS, check_region

__all__ = [
    "REGIONS_KEY",
    "registered_benchmark_ids",
    "check_benchmark_id",
    "benchmark_kind",
    "benchmark_region",
]

#: the configuration key of the region override (named in the errors)
REGIONS_KEY = "benchmark_regions"
_REGISTRATION = re.compile(r"benchmark_registry\[\s*['\"]([^'\"]+)['\"]\s*\]")
_REGION_TOKEN = re.compile(r"(?<![A-Za-z0-9])(V1|V2|V4|IT)(?![A-Za-z0-9])")


@functools.lru_cache(maxsize=1)
def _declared_ids() -> tuple[str, ...]:
    spec = importlib.util.find_spec("brainscore_vision")
    if spec is None or not spec.submodule_search_locations:
        return ()
    root = Path(next(iter(spec.submodule_search_locations))) / "benchmarks"
    ids: dict[str, None] = {}
    for init in sorted(root.glob("*/__init__.py")):
        for match in _REGISTRATION.finditer(init.read_text(errors="replace")):
            ids.setdefault(match.group(1), None)
    return tuple(ids)


def registered_benchmark_ids() -> tuple[str, ...]:
    """Every benchmark id brainscore-vision can load: its plugins' declarations and run-time registrations."""
    ids = dict.fromkeys(_declared_ids())
    module = sys.modules.get("brainscore_vision")
    if module is not None:
        ids.update(dict.fromkeys(getattr(module, "benchmark_registry", {})))
    return tuple(ids)


def check_benchmark_id(identifier: str, config_key: str = "benchmarks") -> str:
    """Return ``identifier`` if brainscore-vision registers it, else raise ``ConfigError`` naming the nearest ids."""
    ids = registered_benchmark_ids()
    if identifier in ids:
        return identifier
    near = ", ".join(nearest_names(identifier, ids, n=5)) or "(brainscore-vision is not installed)"
    raise ConfigError(
        f"unknown brainscore-vision benchmark {identifier!r} in `{config_key}`; nearest registered ids: {near} "
        "(a lab's own data goes in a local benchmark folder)"
    )


def _assemblies(benchmark: Any) -> list[Any]:
    found = []
    for name in ("_assembly", "train_assembly", "test_assembly"):
        value = benchmark.__dict__.get(name) if hasattr(benchmark, "__dict__") else None
        if value is None:
            continue
        content = getattr(value, "content", None) if type(value).__name__ == "LazyLoad" else value
        if content is not None and hasattr(content, "dims"):
            found.append(content)
    return found


def benchmark_kind(benchmark: Any) -> Literal["neural", "behavior"]:
    """``neural`` when the benchmark records neurons (a ``region`` / ``timebins`` attribute, an assembly with a
    ``neuroid`` dimension, or a region ``parent``), else ``behavior`` (``parent: behavior`` and the rest)."""
    parent = str(getattr(benchmark, "parent", "") or "")
    if parent.lower() == BEHAVIOR:
        return "behavior"
    if isinstance(getattr(benchmark, "region", None), str) or hasattr(benchmark, "timebins"):
        return "neural"
    if any("neuroid" in assembly.dims for assembly in _assemblies(benchmark)):
        return "neural"
    if _region_of_name(parent):
        return "neural"
    return "behavior"


def _region_of_name(name: str, anywhere: bool = False) -> str | None:
    if not anywhere:
        head = re.split(r"[-_.]", name, maxsplit=1)[0]
        return head if head in REGIONS else None
    found = dict.fromkeys(_REGION_TOKEN.findall(name))
    return next(iter(found)) if len(found) == 1 else None


def benchmark_region(
    benchmark: Any,
    identifier: str,
    kind: str | None = None,
    override: str | None = None,
) -> str:
    """The region ``benchmark`` (loaded from ``identifier``) scores, in the order of the module doc.

    Raises:
        ConfigError: no source names a region (or the override is not one); set ``benchmark_regions``.
    """
    if override is not None:
        return check_region(override, f"{REGIONS_KEY}.{identifier}")
    kind = kind or benchmark_kind(benchmark)
    if kind == "behavior":
        return BEHAVIOR
    region = _region_of_name(str(getattr(benchmark, "parent", "") or ""))
    if region is None:
        attribute = getattr(benchmark, "region", None)
        region = attribute if attribute in REGIONS else None
    if region is None:
        for assembly in _assemblies(benchmark):
            if "region" in assembly.coords:
                values = [str(v) for v in np.unique(assembly["region"].values)]
                if len(values) == 1 and values[0] in REGIONS:
                    region = values[0]
                    break
    if region is None:
        region = _region_of_name(identifier, anywhere=True) or _region_of_name(
            str(getattr(benchmark, "identifier", "")), anywhere=True
        )
    if region is None:
        raise ConfigError(
            f"cannot tell which region brainscore-vision benchmark {identifier!r} scores (its parent "
            f"{getattr(benchmark, 'parent', None)!r}, its assembly and its id name none); set `{REGIONS_KEY}: "
            f"{{{identifier}: <{'|'.join(REGIONS)}>}}`"
        )
    return region
