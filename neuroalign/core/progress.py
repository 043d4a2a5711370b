"""Progress of long steps: a live bar on a terminal, nothing per item in a log file.

Plain Python (no Lightning). :func:`progress` wraps an iterable in a ``tqdm`` bar when standard error
is a terminal and returns it unchanged otherwise, so a CI log or ``> file`` gets no carriage
returns; callers that run for long print their own summary line there (the Lightning progress bar
of :mod:`callbacks.progress` prints one line per epoch).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

__all__ = ["is_terminal", "progress"]

T = TypeVar("T")


def is_terminal(stream: IO | None = None) -> bool:
    """Whether ``stream`` (default: standard error, where bars are drawn) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty / closed stream
        return False


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it") -> Iterable[T] | Iterator[T]:
    """``iterable`` with a transient tqdm bar (``desc``, ``total`` items of ``unit``) on a terminal.

    Off a terminal the iterable itself is returned: no output at all.
    """
    if not is_terminal():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)
