"""neuroalign: make vision models brain-like and measure it; evolve what single units want.

This package holds the two ends of the house (``docs/ARCHITECTURE.md``): :mod:`neuroalign.core`, the
helpers every room imports and that import nothing of the project, and the ``neuroalign`` command on
top (:mod:`neuroalign.cli`), which imports every room and that nothing imports. The rooms themselves
are the design card's packages: ``lightning_modules``, ``datamodules`` and ``callbacks``.
"""
