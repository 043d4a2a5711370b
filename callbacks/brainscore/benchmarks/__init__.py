"""Benchmarks: local lab folders, the built-in synthetic benchmark and brainscore-vision's public ones."""
