"""Evolution optimisers with one ask/tell interface (higher scores are better)."""

from .base import EvolutionOptimizer, default_population_size

__all__ = ["EvolutionOptimizer", "default_population_size"]
