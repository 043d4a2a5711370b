"""Generators: codes -> [0, 1] RGB images (DeePSim fc6, raw pixels, Fourier)."""

from .base import Generator

__all__ = ["Generator"]
