"""The README's two set-up commands are where CI and users find them, and CI runs the test command."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _command(marker: str) -> str:
    match = re.search(rf"<!-- readme:{marker} -->\s*```bash\n(.+?)\n```", (ROOT / "README.md").read_text())
    assert match, f"README.md has no `{marker}` block"
    return match.group(1).strip()


def test_readme_commands_install_then_run():
    main, tests = _command("main-command"), _command("test-command")
    assert main.startswith("pip install -e .") and "neuroalign fit -c configs/quickstart.yaml" in main
    assert tests.startswith("pip install -e '.[test]'") and "python -m pytest" in tests
    assert "-n 2 --dist loadfile" in tests  # pyproject's test extra carries pytest-xdist
    assert "pytest-xdist" in (ROOT / "pyproject.toml").read_text()
    for config in re.findall(r"-c (\S+\.yaml)", main):
        assert (ROOT / config).is_file(), config


def test_ci_runs_the_readme_test_command():
    awk = next(line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("cmd="))
    extracted = subprocess.run(["bash", "-c", f"{awk}; printf %s \"$cmd\""], cwd=ROOT, capture_output=True, text=True, check=True)
    assert extracted.stdout == _command("test-command")
