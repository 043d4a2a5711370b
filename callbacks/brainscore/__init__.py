"""The Brain-Score room: types, metrics, features, the scoring engine, benchmarks and commands.

Plain code, usable without Lightning: :func:`callbacks.brainscore.engine.score_model` scores a model on
benchmarks; :class:`callbacks.BrainScoreCallback` calls it at every epoch end. See ``docs/ARCHITECTURE.md``.
"""
