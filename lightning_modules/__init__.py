"""neuroalign's LightningModules and the plain components they use.

Rooms (``docs/ARCHITECTURE.md``): :mod:`lightning_modules.zoo` (the model registry),
:mod:`lightning_modules.robust` (attacks, schedules and :class:`RobustFinetuneModule`) and
:mod:`lightning_modules.evolution` (generators, CMA-ES, the ``evolve`` loop and :class:`EvolutionModule`).
``from lightning_modules import RobustFinetuneModule, EvolutionModule, build_model``; members are
imported on first use, so importing a component does not import the Lightning systems.
"""

from neuroalign.core.lazy import lazy_exports

_EXPORTS = {
    "RobustFinetuneModule": "lightning_modules.robust.module",
    "EvolutionModule": "lightning_modules.evolution.module",
    "ZooModel": "lightning_modules.zoo",
    "available_models": "lightning_modules.zoo",
    "build_model": "lightning_modules.zoo",
    "model_from_checkpoint": "lightning_modules.zoo.checkpoint",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
