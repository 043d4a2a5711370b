"""Prototype evolution: generators, optimisers, units and the EvolutionModule (issue 6).

Generators map codes to [0, 1] RGB images; optimisers ``ask`` codes and are ``tell``-ed their
scores (higher is better); units name the scalar of a network that is maximised.
"""

from .generators import DeepSimGenerator, FourierGenerator, Generator, PixelGenerator
from .optimizers import CholeskyCMAES, EvolutionOptimizer, PyCMA

__all__ = [
    "Generator",
    "DeepSimGenerator",
    "FourierGenerator",
    "PixelGenerator",
    "EvolutionOptimizer",
    "CholeskyCMAES",
    "PyCMA",
]

try:  # part B's files (units, module) may land after these components
    from .units import Unit, UnitSet
except ImportError:  # pragma: no cover - transitional
    pass
else:
    __all__ += ["Unit", "UnitSet"]

try:
    from .module import EvolutionModule
except ImportError:  # pragma: no cover - transitional
    pass
else:
    __all__ += ["EvolutionModule"]
