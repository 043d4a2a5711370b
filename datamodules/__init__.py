"""DataModules of neuroalign: ImageNet, Imagenette, CIFAR-10 and the built-in procedural shapes.

Every DataModule takes ``data_dir`` first and ``batch_size``, ``num_workers``, ``rotation``,
``grayscale_p`` and ``input_size`` (linked from the model) among its keyword arguments, yields [0, 1]
RGB tensors (no normalisation: models normalise inside) and exposes ``num_classes``, ``class_names``
and ``imagenet_indices`` for LightningCLI links. Members are imported on first use, so the plain
components here (transforms, image folders) import without Lightning.
"""

from neuroalign.core.lazy import lazy_exports

_EXPORTS = {
    "VisionDataModule": "datamodules.base",
    "ImageNetDataModule": "datamodules.imagenet",
    "ImagenetteDataModule": "datamodules.imagenette",
    "IMAGENETTE_CLASSES": "datamodules.imagenette",
    "CIFAR10DataModule": "datamodules.cifar10",
    "ShapesDataModule": "datamodules.procedural",
    "SHAPE_CLASSES": "datamodules.shapes",
    "HardRotation": "datamodules.transforms",
    "build_train_transform": "datamodules.transforms",
    "build_val_transform": "datamodules.transforms",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
