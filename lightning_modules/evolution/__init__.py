"""Prototype evolution: generators, optimisers, units and the EvolutionModule (issue 6).

Generators map codes to [0, 1] RGB images; optimisers ``ask`` codes and are ``tell``-ed their
scores (higher is better); units name the scalar of a network that is maximised.
"""

from .generators import DeepSimGenerator, FourierGenerator, Generator, PixelGenerator
from .module import EvolutionModule, EvolutionStopped
from .optimizers import CholeskyCMAES, EvolutionOptimizer, PyCMA
from .units import Unit, UnitSet

__all__ = [
    "EvolutionModule",
    "EvolutionStopped",
    "Unit",
    "UnitSet",
    "Generator",
    "DeepSimGenerator",
    "FourierGenerator",
    "PixelGenerator",
    "EvolutionOptimizer",
    "CholeskyCMAES",
    "PyCMA",
]
