"""Every YAML file under configs/ parses with ``neuroalign fit --print_config``.

Full configs (with a ``model`` key) are parsed alone; partial ones (logger, trainer, data, callback
overlays) are composed on top of ``configs/quickstart.yaml``, the way the README uses them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neuroalign.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ALL = sorted(p for p in CONFIGS.rglob("*.yaml"))


def test_configs_exist():
    assert (CONFIGS / "quickstart.yaml").is_file()
    assert len(ALL) >= 5


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(CONFIGS)) for p in ALL])
def test_config_parses(path, capsys):
    content = yaml.safe_load(path.read_text()) or {}
    args = ["-c", str(path)] if "model" in content else ["-c", str(CONFIGS / "quickstart.yaml"), "-c", str(path)]
    with pytest.raises(SystemExit) as info:
        main(["fit", "--print_config", *args])
    assert info.value.code == 0, capsys.readouterr().err
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"]


def test_crossvit_profile_config_globs_match_crossvit_18_dagger_layers():
    timm = pytest.importorskip("timm")
    import torch

    from callbacks.brainscore.profile import resolve_profile_layers

    config = yaml.safe_load((CONFIGS / "brainscore" / "crossvit_table2_profile.yaml").read_text())
    args = config["trainer"]["callbacks"][0]["init_args"]
    with torch.device("meta"):  # module names only: no weights allocated, nothing downloaded
        net = timm.create_model("crossvit_18_dagger_240", pretrained=False)
    layers = resolve_profile_layers(net, args["profile_layers"])
    small = [n for n in layers if ".blocks.0." in n]
    large = [n for n in layers if ".blocks.1." in n]
    assert len(small) == 3 * 1 * 2 and len(large) == 3 * 6 * 2 and len(layers) == 48  # both branches of the 3 multi-scale blocks
    assert set(args["region_layer_map"].values()) | {args["behavioral_readout_layer"]} <= set(layers)  # the paper's layers are candidates
