"""Attack budgets: ``eps`` and ``alpha`` on the [0,1] pixel scale, parsed from configs and checked.

:func:`as_fraction` turns ``"2/255"``-style strings into floats for configs; :func:`check_budget`
refuses a radius or step size out of range with one line naming the key.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Literal

from torch import Tensor

from neuroalign.core.errors import ConfigError

__all__ = ["Norm", "LossFn", "as_fraction", "check_budget"]

Norm = Literal["linf", "l2"]
#: ``(logits, y) -> per-sample loss``
LossFn = Callable[[Tensor, Tensor], Tensor]


def as_fraction(value: float | int | str, key: str) -> float:
    """Parse a budget given as a float, an int or a string such as ``"2/255"`` / ``"0.5"``.

    Args:
        value: the value from a config.
        key: the config key, named in the error message.

    Raises:
        ConfigError: if the value is not a number or a ``"a/b"`` fraction.
    """
    if isinstance(value, bool):
        raise ConfigError(f"`{key}` must be a number or a fraction such as '2/255', got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        text = str(value).strip()
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den)
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"`{key}` must be a number or a fraction such as '2/255', got {value!r}") from None


def check_budget(eps: float, alpha: float, norm: Norm = "linf", eps_key: str = "eps", alpha_key: str = "alpha") -> None:
    """Validate an attack budget; raise :class:`ConfigError` naming the bad value.

    ``eps`` must be >= 0 and ``alpha`` > 0 (finite). For L-infinity both are on the [0,1] pixel scale,
    so both must be <= 1; an L2 radius may exceed 1 (it is a norm over the whole image).
    """
    if norm not in ("linf", "l2"):
        raise ConfigError(f"unknown attack norm {norm!r} (`norm`); use 'linf' or 'l2'")
    upper = 1.0 if norm == "linf" else float("inf")
    if not (0.0 <= eps <= upper) or eps != eps:
        raise ConfigError(f"attack radius {eps!r} out of range [0, {upper:g}] for norm {norm} (`{eps_key}`)")
    if not (0.0 < alpha <= upper) or alpha != alpha:
        raise ConfigError(f"attack step size {alpha!r} out of range (0, {upper:g}] for norm {norm} (`{alpha_key}`)")
