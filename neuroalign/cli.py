"""The ``neuroalign`` command.

``neuroalign fit|validate|test|predict`` is a :class:`NeuroAlignCLI` (LightningCLI in subclass mode:
models and data chosen by ``class_path``). Every other sub-command is a plain function listed in
:data:`COMMANDS` and run through ``jsonargparse.CLI``, so ``neuroalign <command> --help`` documents it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from unittest import mock

from callbacks.brainscore.commands import COMMANDS as BRAINSCORE_COMMANDS
from lightning_modules.evolution import COMMANDS as EVOLUTION_COMMANDS
from lightning_modules.robust import COMMANDS as ROBUST_COMMANDS
from lightning_modules.zoo import COMMANDS as ZOO_COMMANDS
from neuroalign.core.errors import MissingFileError, find_user_error

__all__ = ["COMMANDS", "main", "NeuroAlignCLI"]

#: non-Lightning sub-commands, "name": "module:function" (imported when run); each room registers its own
COMMANDS: dict[str, str] = {**ROBUST_COMMANDS, **BRAINSCORE_COMMANDS, **EVOLUTION_COMMANDS, **ZOO_COMMANDS}

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")


def _load(target: str) -> Callable:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _description(target: str) -> str:
    """First line of the docstring of ``target`` ("module:function"), read from its source without importing it."""
    module, _, attr = target.partition(":")
    top, _, rest = module.partition(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return target
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*(rest.split(".") if rest else []))
    source = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
    try:
        tree = ast.parse(source.read_text())
    except (OSError, SyntaxError):
        return target
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == attr:
            doc = ast.get_docstring(node) or ""
            return doc.strip().splitlines()[0].rstrip(".").replace("``", "`") if doc.strip() else target
    return target


def _usage() -> str:
    lines = [
        "usage: neuroalign {fit,validate,test,predict," + ",".join(COMMANDS) + "} ...",
        "",
        "Lightning sub-commands (configs: class_path/init_args YAML, see configs/):",
        "  fit, validate, test, predict   e.g. neuroalign fit -c configs/quickstart.yaml",
        "",
        "Other commands (neuroalign <command> --help):",
    ]
    for name, target in COMMANDS.items():
        lines.append(f"  {name:26s} {_description(target)}")
    return "\n".join(lines)


def _one_line(err: BaseException) -> str:
    """The user's message of ``err``; errors re-raised from DataLoader workers carry a traceback text."""
    text = str(err).strip()
    if "Original Traceback" in text:  # torch's ExceptionWrapper: the original message is the last line
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return text


def _check_config_files(argv: Sequence[str]) -> None:
    """A ``-c``/``--config`` file that does not exist is one line, not the usage of every option first."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--config=") else (argv[i + 1] if arg in ("-c", "--config") and i + 1 < len(argv) else None)
        if value is None or (":" in value and not value.endswith((".yaml", ".yml", ".json"))):  # inline YAML is jsonargparse's
            continue
        if not Path(value).expanduser().is_file():
            raise MissingFileError("config file", value, "-c/--config", hint="Configs are YAML files, e.g. configs/quickstart.yaml")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neuroalign`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in COMMANDS:
            from jsonargparse import CLI

            _quiet_library_warnings()
            func = _load(COMMANDS[argv[0]])
            result = CLI(func, args=argv[1:], prog=f"neuroalign {argv[0]}", as_positional=False)
            if result is not None and not isinstance(result, (int, bool)):
                print(result)
            return 0
        if argv and argv[0] in ("-h", "--help") or not argv:
            print(_usage())
            return 0
        _check_config_files(argv)
        from neuroalign.lightning_cli import NeuroAlignCLI

        _quiet_library_warnings()
        with mock.patch.object(sys, "argv", ["neuroalign", *argv]):  # LightningCLI reads sys.argv itself
            NeuroAlignCLI()
        return 0
    except Exception as err:  # noqa: BLE001 - user errors become one line, everything else propagates
        user_error = find_user_error(err)
        if user_error is None:
            raise
        print(f"neuroalign: error: {_one_line(user_error)}", file=sys.stderr)
        return 2


def _quiet_library_warnings() -> None:
    """Hide library deprecation notices a user cannot act on (each by message and module)."""
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", module=r"lightning\.pytorch\.utilities\._pytree")
    # brainscore-core's xarray subclasses (Score, DataAssembly) on import: nothing a user can change
    warnings.filterwarnings("ignore", message=r"xarray subclass \w+ should explicitly define __slots__", category=FutureWarning)
    # a resumed run writes to a new version folder (neuroalign.resume), so its checkpoint folder differs by design
    warnings.filterwarnings("ignore", message=r"The dirpath has changed from", module=r"lightning\.pytorch\.callbacks\.model_checkpoint")


def __getattr__(name: str):
    if name == "NeuroAlignCLI":
        from neuroalign.lightning_cli import NeuroAlignCLI

        return NeuroAlignCLI
    raise AttributeError(name)


if __name__ == "__main__":
    sys.exit(main())
