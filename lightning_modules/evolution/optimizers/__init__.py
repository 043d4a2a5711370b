"""Evolution optimisers with one ask/tell interface (higher scores are better)."""

from .base import EvolutionOptimizer, default_population_size
from .cholesky_cmaes import CholeskyCMAES
from .pycma import PyCMA

__all__ = ["EvolutionOptimizer", "default_population_size", "CholeskyCMAES", "PyCMA"]
