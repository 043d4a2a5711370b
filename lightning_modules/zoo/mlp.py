"""``mlp``: a plain ReLU multi-layer perceptron for small images, registered in the zoo's ``custom`` family.

The smallest network the zoo builds, for experiments that need many cheap training steps on a CPU: the
catastrophic-overfitting demo on the built-in shapes (``configs/robust/quickstart_co_demo.yaml``) and
the collapse test on sklearn's digits. Its layers are named ``fc1`` .. ``fc<depth>`` (each followed by
``act<i>``) and ``head``, so Brain-Score maps and evolution units can name them.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from lightning_modules.zoo.custom import register_model

__all__ = ["MLP"]


@register_model(
    "mlp",
    mean=(0.0, 0.0, 0.0),  # no normalisation: the network sees the [0,1] pixels
    std=(1.0, 1.0, 1.0),
    input_size=16,
    num_classes=10,
    hint="train it (configs/robust/quickstart_co_demo.yaml)",
)
class MLP(nn.Sequential):
    """``Flatten -> [Linear(width) -> ReLU] x depth -> Linear(num_classes)`` on ``in_chans x img_size x img_size`` images.

    Args:
        img_size: input side in pixels.
        in_chans: input channels.
        num_classes: classifier outputs.
        width: units of each hidden layer.
        depth: number of hidden layers (0: a linear classifier).
    """

    def __init__(self, img_size: int = 16, in_chans: int = 3, num_classes: int = 10, width: int = 512, depth: int = 2) -> None:
        if min(img_size, in_chans, num_classes, width) < 1 or depth < 0:
            raise ValueError(f"MLP needs positive sizes and depth >= 0, got {img_size=}, {in_chans=}, {num_classes=}, {width=}, {depth=}")
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        features = in_chans * img_size * img_size
        for i in range(1, depth + 1):
            layers[f"fc{i}"], layers[f"act{i}"] = nn.Linear(features, width), nn.ReLU()
            features = width
        layers["head"] = nn.Linear(features, num_classes)
        super().__init__(layers)
        self.num_classes = num_classes
