"""Prototype evolution: generators, optimisers, units, the ``evolve`` loop and the EvolutionModule.

Generators map codes to [0, 1] RGB images; optimisers ``ask`` codes and are ``tell``-ed their
scores (higher is better); units name the scalar of a network that is maximised. :func:`evolve`
(:mod:`~lightning_modules.evolution.loop`) runs an evolution as a plain loop; the
:class:`EvolutionModule` runs the same loop under a Lightning Trainer, one generation per step.
"""

from neuroalign.core.lazy import lazy_exports

_EXPORTS = {
    "DeepSimGenerator": "lightning_modules.evolution.generators",
    "FourierGenerator": "lightning_modules.evolution.generators",
    "Generator": "lightning_modules.evolution.generators",
    "PixelGenerator": "lightning_modules.evolution.generators",
    "EvolutionLoop": "lightning_modules.evolution.loop",
    "EvolutionResult": "lightning_modules.evolution.loop",
    "EvolutionState": "lightning_modules.evolution.loop",
    "evolve": "lightning_modules.evolution.loop",
    "UnitHealth": "lightning_modules.evolution.health",
    "EvolutionModule": "lightning_modules.evolution.module",
    "EvolutionStopped": "lightning_modules.evolution.module",
    "CholeskyCMAES": "lightning_modules.evolution.optimizers",
    "EvolutionOptimizer": "lightning_modules.evolution.optimizers",
    "PyCMA": "lightning_modules.evolution.optimizers",
    "Unit": "lightning_modules.evolution.units",
    "UnitSet": "lightning_modules.evolution.units",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

#: this room's ``neuroalign`` commands, "name": "module:function" (read by :mod:`neuroalign.cli`)
COMMANDS: dict[str, str] = {
    "analyze-distribution": "lightning_modules.evolution.analyses:score_distribution",
    "analyze-convergence": "lightning_modules.evolution.analyses:convergence_profile",
    "analyze-neighbours": "lightning_modules.evolution.analyses:nearest_images",
}
