"""Generators: codes -> [0, 1] RGB images (DeePSim fc6, raw pixels, Fourier)."""

from lightning_modules.evolution.generators.base import Generator
from lightning_modules.evolution.generators.deepsim import DeepSimGenerator
from lightning_modules.evolution.generators.fourier import FourierGenerator
from lightning_modules.evolution.generators.pixels import PixelGenerator

__all__ = ["Generator", "DeepSimGenerator", "FourierGenerator", "PixelGenerator"]
