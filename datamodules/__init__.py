"""DataModules of neuroalign: ImageNet, Imagenette, CIFAR-10 and the built-in procedural shapes.

Every DataModule takes ``data_dir`` first and ``batch_size``, ``num_workers``, ``rotation``,
``grayscale_p`` and ``input_size`` (linked from the model) among its keyword arguments, yields [0, 1]
RGB tensors (no normalisation: models normalise inside) and exposes ``num_classes``, ``class_names``
and ``imagenet_indices`` for LightningCLI links.
"""

from datamodules.base import VisionDataModule
from datamodules.cifar10 import CIFAR10DataModule
from datamodules.imagenet import ImageNetDataModule
from datamodules.imagenette import IMAGENETTE_CLASSES, ImagenetteDataModule
from datamodules.procedural import SHAPE_CLASSES, ShapesDataModule
from datamodules.transforms import HardRotation, build_train_transform, build_val_transform

__all__ = [
    "VisionDataModule",
    "ImageNetDataModule",
    "ImagenetteDataModule",
    "CIFAR10DataModule",
    "ShapesDataModule",
    "HardRotation",
    "build_train_transform",
    "build_val_transform",
    "IMAGENETTE_CLASSES",
    "SHAPE_CLASSES",
]
