"""Unit health: which units of an evolution are still worth evolving, and when the whole run must stop.

A unit whose activation is the same for a whole population (a silent ReLU channel) keeps evolving for
``dead_patience`` generations -- the CMA-ES still samples on under ties -- and is then *retired*: its
optimiser state is frozen and it is no longer evaluated. NaN or inf activations retire a unit at once
and are reported as such, apart from a constant activation. The run stops when every unit is retired,
or at the first retirement with ``on_dead_unit: stop``.

:func:`health_flags` reads one generation's scores; :class:`UnitHealth` keeps the dead streaks and
retirements and takes the decisions. Under DDP the flags are merged over ranks before
:meth:`UnitHealth.update` sees them, so every rank takes the same decisions. Plain torch (no Lightning).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from neuroalign.core.errors import ConfigError

__all__ = ["FLAGS", "OnDeadUnit", "Retirement", "UnitHealth", "health_flags"]

#: per-unit health flags of one generation, in the column order of :func:`health_flags`
FLAGS = ("nan", "inf", "constant")
OnDeadUnit = Literal["retire", "stop"]


def health_flags(scores: Tensor, active: Tensor) -> Tensor:
    """The ``(K, 3)`` bool flags NaN / inf / constant of one generation's ``scores (K, n)``.

    ``constant`` means one value for the whole population (never for a single-code generation);
    units where the ``(K,)`` mask ``active`` is False get no flag.
    """
    n = scores.shape[1]
    constant = (scores.amax(1) == scores.amin(1)) & (n > 1)
    return torch.stack([scores.isnan().any(1), scores.isinf().any(1), constant], 1) & active.to(scores.device)[:, None]


@dataclass(frozen=True)
class Retirement:
    """One unit retired at one generation, and why (the text of ``summary.csv``)."""

    unit: int
    generation: int
    reason: str


class UnitHealth:
    """Dead streaks, retirements and the stop decision of K units.

    Args:
        labels: the K unit labels (used in messages).
        dead_patience: generations a unit may give one constant score to a whole population before it
            is retired (NaN / inf retire it at once).
        on_dead_unit: ``retire`` the unit and go on with the others, or ``stop`` at the first retirement.
        config_prefix: where the settings live in a config (``model.init_args`` for the ``EvolutionModule``),
            named in the stop message's hints; ``None`` names the plain argument names of
            :func:`~lightning_modules.evolution.loop.evolve`.
    """

    def __init__(
        self,
        labels: Sequence[str],
        dead_patience: int = 10,
        on_dead_unit: OnDeadUnit = "retire",
        config_prefix: str | None = None,
    ) -> None:
        where = f"{config_prefix}." if config_prefix else ""
        if dead_patience < 1:
            raise ConfigError(f"dead_patience must be >= 1, got {dead_patience} (set `{where}dead_patience`)")
        if on_dead_unit not in ("retire", "stop"):
            raise ConfigError(f"on_dead_unit {on_dead_unit!r} is invalid; valid: retire, stop (set `{where}on_dead_unit`)")
        self.labels = list(labels)
        self.dead_patience = int(dead_patience)
        self.on_dead_unit = on_dead_unit
        self._where = where
        k = len(self.labels)
        #: consecutive generations with one constant score over the whole population, per unit
        self.dead_streak = torch.zeros(k, dtype=torch.long)
        #: generation at which each unit was retired (-1: active)
        self.retired_at = torch.full((k,), -1, dtype=torch.long)
        #: why each unit was retired (``None``: active)
        self.reasons: list[str | None] = [None] * k
        #: why the run must stop (``None``: it goes on)
        self.stop_message: str | None = None

    @property
    def active(self) -> Tensor:
        """``(K,)`` bool: the units not retired."""
        return self.retired_at < 0

    def update(self, generation: int, stats: Tensor, flags: Tensor) -> list[Retirement]:
        """Take the decisions of one generation; return the units retired by it.

        Args:
            generation: the generation just evaluated.
            stats: ``(K, S)`` statistics of the generation, column 0 the population mean (quoted in the
                reason of a constant unit).
            flags: ``(K, 3)`` bool :func:`health_flags`, merged over ranks.
        """
        constant = flags[:, 2].cpu()
        self.dead_streak = torch.where(constant, self.dead_streak + 1, torch.zeros_like(self.dead_streak))
        newly: list[Retirement] = []
        for i in range(len(self.labels)):
            if self.retired_at[i] >= 0:
                continue
            if flags[i, 0] or flags[i, 1]:
                reason = f"{'NaN' if flags[i, 0] else 'inf'} activation from the model"
            elif self.dead_streak[i] >= self.dead_patience:
                streak = int(self.dead_streak[i])
                reason = (
                    f"constant activation {stats[i, 0].item():.6g} over every population for {streak} generations "
                    f"({generation - streak + 1}-{generation}, dead_patience {self.dead_patience})"
                )
            else:
                continue
            self.retired_at[i] = generation
            self.reasons[i] = reason
            newly.append(Retirement(i, generation, reason))
        self._decide_stop(bool(newly))
        return newly

    def retirement_line(self, retirement: Retirement) -> str:
        """The console line of one retirement (``unit X retired at generation G: ...; N of K units go on``)."""
        left = int(self.active.sum())
        return (
            f"unit {self.labels[retirement.unit]} retired at generation {retirement.generation}: {retirement.reason}; "
            f"{left} of {len(self.labels)} units go on"
        )

    def _decide_stop(self, retired_now: bool) -> None:
        retired = [i for i in range(len(self.labels)) if self.retired_at[i] >= 0]
        what = "; ".join(f"{self.labels[i]} at generation {int(self.retired_at[i])}: {self.reasons[i]}" for i in retired)
        hint = f"choose other units or `channel: auto` (`{self._where}units`)"
        if retired_now and self.on_dead_unit == "stop":
            self.stop_message = f"unit retired and on_dead_unit is 'stop' ({what}); {hint}, or set `{self._where}on_dead_unit: retire`"
        elif retired and len(retired) == len(self.labels):
            self.stop_message = f"every unit is retired ({what}); {hint}"

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """``dead_streak``, ``retired_at`` and ``retire_reasons`` (the keys of the evolution checkpoints)."""
        return {"dead_streak": self.dead_streak.clone(), "retired_at": self.retired_at.clone(), "retire_reasons": list(self.reasons)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (missing keys, from checkpoints of earlier releases, mean all active)."""
        k = len(self.labels)
        self.dead_streak = state.get("dead_streak", torch.zeros(k, dtype=torch.long)).clone()
        self.retired_at = state.get("retired_at", torch.full((k,), -1, dtype=torch.long)).clone()
        self.reasons = list(state.get("retire_reasons", [None] * k))
        self.stop_message = None
