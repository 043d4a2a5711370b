"""Export to a brainscore-vision model plugin: the folder imports through brainscore-vision's plugin machinery."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from brainscore_reference import reference_neural_benchmark
from callbacks.brainscore.brainio_data import import_brainscore_vision
from callbacks.brainscore.commands.export import export_brainscore, read_region_layer_map
from neuroalign.core.errors import ConfigError
from neuroalign.core.layers import LayerCapture
from lightning_modules.zoo import build_model

TINY = dict(depth=1, embed_dim=16, num_heads=2, mlp_dim=16)
LAYER_MAP = {"V1": "patch_embed", "V2": "blocks.0.norm1", "V4": "blocks.0", "IT": "norm"}
IDENTIFIER = "neuroalign-tiny-vit"


@pytest.fixture
def checkpoint(tmp_path):
    """A neuroalign-style Lightning checkpoint of a tiny CIFAR ViT (hparams as LightningCLI stores them)."""
    torch.manual_seed(3)
    model = build_model("cifar_vit", **TINY)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    hparams = {"model": {"class_path": "lightning_modules.zoo.ZooModel",
                         "init_args": {"name": "cifar_vit", "pretrained": False, "model_kwargs": TINY}}}
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": hparams, "epoch": 3}, path)
    return path, model


@pytest.fixture
def plugin_registry(tmp_path, monkeypatch):
    """Let brainscore-vision's plugin machinery look for model plugins in tmp_path/plugins as well."""
    import_brainscore_vision()
    import brainscore_vision.models
    from brainscore_core.plugin_management import import_plugin

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    monkeypatch.setattr(brainscore_vision.models, "__path__", [*brainscore_vision.models.__path__, str(plugins)])
    original = import_plugin.ImportPlugin.__init__

    def init(self, library_root, plugin_type, identifier, registry_prefix=None):
        if plugin_type == "models" and identifier == IDENTIFIER:
            self.plugin_type, self.identifier, self.registry_name = plugin_type, identifier, "model_registry"
            self.plugins_dir = plugins  # the real search (locate_plugin) over our folder
            self.plugin_dirname = self.locate_plugin()
        else:
            original(self, library_root, plugin_type, identifier, registry_prefix)

    monkeypatch.setattr(import_plugin.ImportPlugin, "__init__", init)
    yield plugins
    for name in [m for m in sys.modules if m.startswith("brainscore_vision.models.neuroalign_")]:
        del sys.modules[name]
    brainscore_vision.model_registry.pop(IDENTIFIER, None)


def test_exported_plugin_loads_model_commitment(checkpoint, plugin_registry, tmp_path):
    import brainscore_vision
    from brainscore_vision.model_helpers.brain_transformation import ModelCommitment

    ckpt, original = checkpoint
    out = export_brainscore(str(plugin_registry / "neuroalign_tiny"), IDENTIFIER, LAYER_MAP,
                            checkpoint=str(ckpt), behavioral_readout_layer="head")
    names = {p.name for p in (plugin_registry / "neuroalign_tiny").iterdir()}
    assert {"__init__.py", "model.py", "region_layer_map", "requirements.txt", "test.py", "weights.pth"} <= names
    assert json.loads((plugin_registry / "neuroalign_tiny" / "region_layer_map" / f"{IDENTIFIER}.json").read_text()) == LAYER_MAP
    assert out.endswith("neuroalign_tiny")

    commitment = brainscore_vision.load_model(IDENTIFIER)  # real registry lookup, import and build
    assert isinstance(commitment, ModelCommitment) and commitment.identifier == IDENTIFIER
    assert dict(commitment.layer_model.region_layer_map) == LAYER_MAP
    assert commitment.layers == [*LAYER_MAP.values(), "head"]

    # the checkpoint's weights made it into the plugin: same activations as the original network
    image = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(image)
    exported = commitment.activations_model([str(image)], layers=["norm"])
    original.eval()
    with torch.no_grad(), LayerCapture(original, ["norm"]) as cap:
        expected = cap.run(torch.from_numpy(np.asarray(Image.open(image), dtype=np.float32) / 255).permute(2, 0, 1)[None])
    np.testing.assert_allclose(exported.values.reshape(-1), expected["norm"].numpy().reshape(-1), atol=1e-5)

    # the generated plugin test passes
    namespace: dict = {}
    exec(compile((plugin_registry / "neuroalign_tiny" / "test.py").read_text(), "test.py", "exec"), namespace)
    namespace["test_has_identifier"]()


def test_exported_plugin_scores_on_a_brainscore_benchmark(checkpoint, plugin_registry, tmp_path):
    import brainscore_vision

    ckpt, _ = checkpoint
    export_brainscore(str(plugin_registry / "neuroalign_tiny"), IDENTIFIER, LAYER_MAP, checkpoint=str(ckpt))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(20):
        paths.append(str(tmp_path / f"s{i}.png"))
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(paths[-1])
    responses = rng.normal(size=(2, 20, 5)) + rng.normal(size=(1, 20, 5)) * 3
    benchmark = reference_neural_benchmark(responses, [f"s{i}" for i in range(20)], paths, "IT")
    score = benchmark(brainscore_vision.load_model(IDENTIFIER))
    assert np.isfinite(float(score)) and np.isfinite(float(score.attrs["raw"]))


def test_model_name_yaml_map_and_published_weights(tmp_path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text(yaml.safe_dump({"region_layer_map": {"V1": "blocks.0.norm1", "IT": "norm"}}, sort_keys=False))
    out = tmp_path / "neuroalign_named"
    export_brainscore(str(out), "named", str(mapping), model="cifar_vit", model_kwargs={"model_kwargs": TINY})
    assert not (out / "weights.pth").exists()  # no checkpoint: the published weights are used
    namespace = {"__file__": str(out / "model.py"), "__name__": "exported_model"}
    exec(compile((out / "model.py").read_text(), "model.py", "exec"), namespace)
    assert namespace["ZOO_ARGS"] == {"name": "cifar_vit", "model_kwargs": TINY}
    assert namespace["get_layers"]("named") == ["blocks.0.norm1", "norm"]
    with pytest.raises(ConfigError, match="no downloadable weights"):  # cifar_vit has no published weights
        namespace["build_network"]()
    assert read_region_layer_map(mapping) == {"V1": "blocks.0.norm1", "IT": "norm"}


def test_bad_inputs(checkpoint, tmp_path):
    ckpt, _ = checkpoint
    with pytest.raises(ConfigError, match="not a Python identifier"):
        export_brainscore(str(tmp_path / "my-plugin"), IDENTIFIER, LAYER_MAP, checkpoint=str(ckpt))
    with pytest.raises(ConfigError, match="nearest valid names"):
        export_brainscore(str(tmp_path / "p1"), IDENTIFIER, {"IT": "norm2"}, checkpoint=str(ckpt))
    with pytest.raises(ConfigError, match="unknown region 'V3'"):
        export_brainscore(str(tmp_path / "p2"), IDENTIFIER, {"V3": "norm"}, checkpoint=str(ckpt))
    with pytest.raises(ConfigError, match="no model name"):
        export_brainscore(str(tmp_path / "p3"), IDENTIFIER, LAYER_MAP)
    (tmp_path / "p4").mkdir()
    (tmp_path / "p4" / "x").write_text("x")
    with pytest.raises(ConfigError, match="overwrite"):
        export_brainscore(str(tmp_path / "p4"), IDENTIFIER, LAYER_MAP, checkpoint=str(ckpt))
