"""Robust fine-tuning: FGSM-RS, N-FGSM, GradAlign and PGD-k training strategies, PGD and AutoAttack evaluation, the warm-up/halving schedule and :class:`RobustFinetuneModule`."""

from neuroalign.core.lazy import lazy_exports

_EXPORTS = {
    "RobustFinetuneModule": "lightning_modules.robust.module",
    "PerturbResult": "lightning_modules.robust.strategies",
    "PerturbStrategy": "lightning_modules.robust.strategies",
    "FGSMRS": "lightning_modules.robust.strategies",
    "NFGSM": "lightning_modules.robust.strategies",
    "GradAlign": "lightning_modules.robust.strategies",
    "PGDK": "lightning_modules.robust.strategies",
    "robustness_report": "lightning_modules.robust.autoattack",
    "WarmupHalvingLR": "lightning_modules.robust.schedules",
    "fgsm_rs_step": "lightning_modules.robust.fgsm",
    "pgd": "lightning_modules.robust.pgd",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

#: this room's ``neuroalign`` commands, "name": "module:function" (read by :mod:`neuroalign.cli`)
COMMANDS: dict[str, str] = {
    "plot-schedule": "lightning_modules.robust.schedules:plot_schedule",
    "attack-figure": "lightning_modules.robust.attack_figure:attack_figure",
}
