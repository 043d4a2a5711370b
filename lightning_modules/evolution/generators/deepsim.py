"""DeePSim fc6 generator (Dosovitskiy and Brox 2016) as used by the Ponce lab (docs/recipes.md section 3).

4096-d code -> three Linear(4096, 4096) + LeakyReLU(0.3) (``defc7``, ``defc6``, ``defc5``) ->
256 x 4 x 4 -> transposed convolutions up to 256 x 256 (``deconv5`` ... ``deconv0``; the ``conv*_1``
layers are 3x3 stride-1 transposed convolutions, as in the converted Caffe model). The raw output
is BGR, mean-subtracted, in 0-255; :meth:`DeepSimGenerator.forward` returns RGB in [0, 1].

The module's ``state_dict`` has exactly the keys of the public ``upconvGAN_fc6.pt`` file
(``defc7.weight``, ..., ``deconv0.bias``), ~56.1 M parameters (224 MB of float32).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor, nn

from neuroalign.core.errors import ConfigError
from neuroalign.core.offline import require_download
from lightning_modules.evolution.generators.base import Generator

__all__ = ["DeepSimGenerator", "DEEPSIM_FC6_URL", "DEEPSIM_FC6_FILE", "WEIGHTS_CONFIG_KEY"]

#: public download address of the fc6 state dict (Binxu Wang's upconvGAN conversion)
DEEPSIM_FC6_URL = (
    "https://onedrive.live.com/download?cid=9CFFF6BCB39F6829&resid=9CFFF6BCB39F6829%2145339&authkey=AC2rQMt7Obr0Ba4"
)
DEEPSIM_FC6_FILE = "upconvGAN_fc6.pt"
#: where a config sets a local copy (the EvolutionModule's ``generator`` argument)
WEIGHTS_CONFIG_KEY = "model.init_args.generator.init_args.weights_path"
#: per-channel mean (RGB) that the raw BGR output is centred on, in 0-255
RGB_MEAN = (123.0, 117.0, 104.0)

# (name, in, out, kernel, stride) of the transposed convolutions; 4/2 doubles the size, 3/1 keeps it
_DECONVS = (
    ("deconv5", 256, 256, 4, 2),
    ("conv5_1", 256, 512, 3, 1),
    ("deconv4", 512, 256, 4, 2),
    ("conv4_1", 256, 256, 3, 1),
    ("deconv3", 256, 128, 4, 2),
    ("conv3_1", 128, 128, 3, 1),
    ("deconv2", 128, 64, 4, 2),
    ("deconv1", 64, 32, 4, 2),
    ("deconv0", 32, 3, 4, 2),
)


def _layers() -> OrderedDict[str, nn.Module]:
    """The fc6 generator layers in order, with the names of the public state dict."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for name in ("defc7", "defc6", "defc5"):
        layers[name] = nn.Linear(4096, 4096)
        layers[f"relu_{name}"] = nn.LeakyReLU(0.3)
    layers["reshape"] = nn.Unflatten(1, (256, 4, 4))
    for name, c_in, c_out, kernel, stride in _DECONVS:
        layers[name] = nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding=1)
        if name != "deconv0":
            layers[f"relu_{name}"] = nn.LeakyReLU(0.3)
    return layers


def default_weights_path() -> Path:
    """``$TORCH_HOME/hub/checkpoints/upconvGAN_fc6.pt`` (torch hub's checkpoint folder)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / DEEPSIM_FC6_FILE


class DeepSimGenerator(Generator):
    """DeePSim fc6 generator: 4096-d codes -> 256 x 256 RGB images in [0, 1].

    Args:
        weights_path: local ``upconvGAN_fc6.pt`` (a state dict). ``None`` uses torch hub's
            checkpoint folder and downloads the file there when online.
        pretrained: load the weights; ``False`` keeps a random initialisation (tests, benchmarks).

    Raises:
        MissingFileError: the weights are absent and the machine is offline.
        ConfigError: the file is not a DeePSim fc6 state dict (first mismatching key named).
    """

    def __init__(self, weights_path: str | None = None, pretrained: bool = True) -> None:
        super().__init__()
        self.code_dim = 4096
        self.image_size = 256
        if pretrained:
            with torch.device("meta"):  # no random init of 56 M parameters that are overwritten
                self._add_layers()
            self.load_state_dict(load_deepsim_state_dict(weights_path, self.state_dict()), assign=True)
        else:
            self._add_layers()
        self.register_buffer("rgb_mean", torch.tensor(RGB_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _add_layers(self) -> None:
        for name, layer in _layers().items():
            self.add_module(name, layer)

    def raw(self, codes: Tensor) -> Tensor:
        """Raw network output ``(N, 3, 256, 256)``: BGR, mean-subtracted, 0-255 scale."""
        x = self._as_input(codes)
        for name, layer in self.named_children():
            x = layer(x)
        return x

    def forward(self, codes: Tensor) -> Tensor:
        """``(N, 4096)`` codes -> ``(N, 3, 256, 256)`` RGB images in [0, 1]."""
        bgr = self.raw(codes)
        return ((bgr.flip(1) + self.rgb_mean).clamp(0.0, 255.0)) / 255.0


def load_deepsim_state_dict(weights_path: str | os.PathLike | None, expected: dict[str, Tensor]) -> dict[str, Tensor]:
    """Read (downloading when needed and possible) and check a DeePSim fc6 state dict.

    Args:
        weights_path: the file, or ``None`` for :func:`default_weights_path`.
        expected: a state dict (tensors of any device, e.g. meta) giving the required keys and shapes.

    Returns:
        The file's tensors as float32, keys as in ``expected`` (a leading ``G.`` or ``module.`` is
        dropped).
    """
    path = Path(weights_path).expanduser() if weights_path else default_weights_path()
    if not path.is_file():
        require_download(
            f"DeePSim fc6 generator weights {DEEPSIM_FC6_FILE}", path, WEIGHTS_CONFIG_KEY, DEEPSIM_FC6_URL,
            hint=f"Download it from {DEEPSIM_FC6_URL}",
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(DEEPSIM_FC6_URL, str(path), progress=True)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, pickle of a whole model, ...
        raise ConfigError(f"{path} is not a readable state dict ({type(err).__name__}); set `{WEIGHTS_CONFIG_KEY}` to an {DEEPSIM_FC6_FILE}") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConfigError(f"{path} is not a state dict of tensors; set `{WEIGHTS_CONFIG_KEY}` to an {DEEPSIM_FC6_FILE}")
    for prefix in ("module.", "G."):
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: value for key, value in state.items()}
    problem = _first_mismatch(state, expected)
    if problem:
        raise ConfigError(f"{path} is not a DeePSim fc6 state dict: {problem}; set `{WEIGHTS_CONFIG_KEY}` to an {DEEPSIM_FC6_FILE}")
    return {key: state[key].float() for key in expected}


def _first_mismatch(state: dict[str, Tensor], expected: dict[str, Tensor]) -> str:
    """Describe the first missing, wrongly shaped or unexpected key ('' when ``state`` fits)."""
    for key, ref in expected.items():
        if key not in state:
            return f"key '{key}' is missing"
        if tuple(state[key].shape) != tuple(ref.shape):
            return f"key '{key}' has shape {tuple(state[key].shape)}, expected {tuple(ref.shape)}"
    extra = [key for key in state if key not in expected]
    return f"unexpected key '{extra[0]}'" if extra else ""
