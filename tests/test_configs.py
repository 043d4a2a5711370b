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
