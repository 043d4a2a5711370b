"""The core room: helpers that every other room imports and that import nothing of the project.

Errors the user can fix (:mod:`~neuroalign.core.errors`), offline checks (:mod:`~neuroalign.core.offline`),
layer lookup and hooks (:mod:`~neuroalign.core.layers`), image files (:mod:`~neuroalign.core.images`),
device and input-size helpers (:mod:`~neuroalign.core.modules`), checkpoint files
(:mod:`~neuroalign.core.checkpoints`), output folders (:mod:`~neuroalign.core.output_paths`), console
tables (:mod:`~neuroalign.core.report`), progress (:mod:`~neuroalign.core.progress`), figures
(:mod:`~neuroalign.core.figures`) and lazy package
exports (:mod:`~neuroalign.core.lazy`). See ``docs/ARCHITECTURE.md``.
"""
