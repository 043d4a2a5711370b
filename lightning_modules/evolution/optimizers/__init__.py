"""Evolution optimisers with one ask/tell interface (higher scores are better)."""

from lightning_modules.evolution.optimizers.base import EvolutionOptimizer, default_population_size
from lightning_modules.evolution.optimizers.cholesky_cmaes import CholeskyCMAES
from lightning_modules.evolution.optimizers.pycma import PyCMA

__all__ = ["EvolutionOptimizer", "default_population_size", "CholeskyCMAES", "PyCMA"]
