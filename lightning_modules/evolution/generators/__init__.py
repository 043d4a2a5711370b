"""Generators: codes -> [0, 1] RGB images (DeePSim fc6, raw pixels, Fourier)."""

from .base import Generator
from .deepsim import DeepSimGenerator
from .fourier import FourierGenerator
from .pixels import PixelGenerator

__all__ = ["Generator", "DeepSimGenerator", "FourierGenerator", "PixelGenerator"]
