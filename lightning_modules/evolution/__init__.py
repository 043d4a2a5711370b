"""Prototype evolution: generators, optimisers, units and the EvolutionModule (issue 6)."""

from .generators import Generator
from .optimizers import EvolutionOptimizer

__all__ = ["Generator", "EvolutionOptimizer"]
