"""The import direction of the house (docs/ARCHITECTURE.md), read from the source with ``ast``.

Every product module belongs to one layer, found by the longest matching prefix in :data:`LAYERS`:
core (0) < components (1) < systems (2) < commands (3) < CLI (4). A module may import modules of its
own layer or below, never above; there is no cycle between modules; project modules are imported with
absolute imports at module level (a function-local import that hides a cycle is still a cycle), except
in the CLI, which loads commands on demand; components do not import Lightning. A package ``__init__``
that lists lazy exports (``_EXPORTS``) may only name modules inside its own package, and importing it
counts as importing the highest layer it exports. Because importing any module of a package runs the
package's ``__init__`` first, an ``__init__`` imports eagerly only what its lowest-layer module may import.

The checker is run on the real tree and, to show that it can fail, on small trees with planted faults.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("neuroalign", "lightning_modules", "callbacks", "datamodules")
CORE, COMPONENT, SYSTEM, COMMAND, CLI = range(5)
NAMES = {CORE: "core", COMPONENT: "component", SYSTEM: "system", COMMAND: "command", CLI: "CLI"}

#: module prefix -> layer; the longest matching prefix wins (keep in step with docs/ARCHITECTURE.md)
LAYERS: dict[str, int] = {
    "neuroalign": CLI,
    "neuroalign.core": CORE,
    "lightning_modules": SYSTEM,
    "lightning_modules.hparams": SYSTEM,
    "lightning_modules.zoo": COMPONENT,
    "lightning_modules.zoo.commands": COMMAND,
    "lightning_modules.robust": COMPONENT,
    "lightning_modules.robust.module": SYSTEM,
    "lightning_modules.robust.attack_figure": COMMAND,
    "lightning_modules.evolution": COMPONENT,
    "lightning_modules.evolution.module": SYSTEM,
    "lightning_modules.evolution.training": SYSTEM,
    "lightning_modules.evolution.analyses": COMMAND,
    "callbacks": SYSTEM,
    "callbacks.brainscore": COMPONENT,
    "callbacks.brainscore.commands": COMMAND,
    "datamodules": SYSTEM,
    "datamodules.transforms": COMPONENT,
    "datamodules.image_folder": COMPONENT,
    "datamodules.download": COMPONENT,
    "datamodules.shapes": COMPONENT,
    "datamodules.class_patterns": COMPONENT,
}
#: third-party packages a function may import lazily (heavy and optional at run time)
LAZY_OK = {"brainscore_vision", "brainscore_core", "brainio", "wandb", "torchattacks", "safetensors", "cma", "rsatoolbox"}


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    exports: dict[str, str] = field(default_factory=dict)  # lazy facade: name -> module
    imports: list[tuple[str, int, bool]] = field(default_factory=list)  # (target, line, module level)
    relative: list[int] = field(default_factory=list)
    lightning: list[int] = field(default_factory=list)  # lines importing lightning at module level


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _walk(node: ast.AST, module_level: bool, in_type_checking: bool = False):
    """Yield (import node, module level?, under TYPE_CHECKING?) for every import below ``node``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, module_level, in_type_checking
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            yield from _walk(child, False, in_type_checking)
        else:
            yield from _walk(child, module_level, in_type_checking or _type_checking_block(child))


def _exports(tree: ast.Module) -> dict[str, str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets):
            return {k: v for k, v in ast.literal_eval(node.value).items()}
    return {}


def read_tree(root: Path, packages=PACKAGES) -> dict[str, Module]:
    """Every module of ``packages`` under ``root`` with its project imports."""
    modules: dict[str, Module] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = _module_name(root, path)
            tree = ast.parse(path.read_text(), str(path))
            mod = Module(name, path, path.name == "__init__.py", exports=_exports(tree))
            for node, module_level, typing_only in _walk(tree, True):
                if isinstance(node, ast.ImportFrom) and node.level:
                    mod.relative.append(node.lineno)
                    continue
                if isinstance(node, ast.ImportFrom):
                    targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
                else:
                    targets = [a.name for a in node.names]
                for target in targets:
                    top = target.split(".")[0]
                    if top == "lightning" and module_level and not typing_only and node.lineno not in mod.lightning:
                        mod.lightning.append(node.lineno)
                    if top in packages:
                        mod.imports.append((target, node.lineno, module_level))
            modules[name] = mod
    for mod in modules.values():  # `from a.b import c`: keep a.b.c when it is a module, else a.b
        resolved, seen = [], set()
        for target, line, module_level in mod.imports:
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and (target, line) not in seen:
                seen.add((target, line))
                resolved.append((target, line, module_level))
        mod.imports = resolved
    return modules


def layer_of(name: str, layers: dict[str, int] = LAYERS) -> int | None:
    best = max((p for p in layers if name == p or name.startswith(p + ".")), key=len, default=None)
    return None if best is None else layers[best]


def _effective_layer(name: str, modules: dict[str, Module], layers: dict[str, int]) -> int | None:
    """A lazy facade counts as the highest layer it exports; any other module as its own layer."""
    mod = modules[name]
    if mod.exports:
        found = [_effective_layer(t, modules, layers) for t in mod.exports.values() if t in modules and t != name]
        found = [f for f in found if f is not None]
        return max(found) if found else layer_of(name, layers)
    return layer_of(name, layers)


def _cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), over the eager import edges."""
    graph = {n: sorted({t for t, _, _ in m.imports if t != n}) for n, m in modules.items()}
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def violations(root: Path, packages=PACKAGES, layers: dict[str, int] = LAYERS) -> list[str]:
    """Every broken rule of the house under ``root``, one line each (empty when the house holds)."""
    modules = read_tree(root, packages)
    problems = []
    for name, mod in sorted(modules.items()):
        own = layer_of(name, layers)
        where = mod.path.relative_to(root)
        if own is None:
            problems.append(f"{where}: module {name} has no layer (add its prefix to LAYERS and docs/ARCHITECTURE.md)")
            continue
        problems += [f"{where}:{line}: relative import (use the absolute module path)" for line in mod.relative]
        if own == COMPONENT:
            problems += [f"{where}:{line}: a component imports lightning" for line in mod.lightning]
        package = name if mod.is_package else name.rsplit(".", 1)[0]
        for exported, target in mod.exports.items():
            if not (target == package or target.startswith(package + ".")):
                problems.append(f"{where}: lazy export {exported!r} names {target}, outside package {package}")
        for target, line, module_level in mod.imports:
            if not module_level and own != CLI:
                problems.append(f"{where}:{line}: function-local import of {target} (import project modules at module level)")
            theirs = _effective_layer(target, modules, layers)
            if theirs is not None and theirs > own and not name.startswith(target + "."):
                problems.append(f"{where}:{line}: {NAMES[own]} {name} imports {NAMES[theirs]} {target} (arrows run down only)")
        if mod.is_package:  # importing any module of a package runs its __init__ first
            floor = min(layer_of(m, layers) for m in modules if (m == name or m.startswith(name + ".")) and layer_of(m, layers) is not None)
            for target, line, module_level in mod.imports:
                theirs = _effective_layer(target, modules, layers)
                if module_level and theirs is not None and theirs > floor:
                    problems.append(
                        f"{where}:{line}: package {name} imports {NAMES[theirs]} {target} eagerly, so importing its "
                        f"{NAMES[floor]} modules imports it too (make it a lazy export)"
                    )
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in _cycles(modules)]
    return problems


def test_the_house_holds():
    problems = violations(ROOT)
    assert not problems, "\n" + "\n".join(problems)


def test_every_layer_is_inhabited():
    modules = read_tree(ROOT)
    assert {layer_of(n) for n in modules} == {CORE, COMPONENT, SYSTEM, COMMAND, CLI}


def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


PLANTED_LAYERS = {"pkg": SYSTEM, "pkg.core": CORE, "pkg.parts": COMPONENT, "pkg.parts.sys": SYSTEM, "pkg.top": CLI}


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"pkg/core/a.py": "import pkg.parts.b\n", "pkg/parts/b.py": ""}, "core pkg.core.a imports component pkg.parts.b"),
        ({"pkg/parts/b.py": "from pkg.top import main\n", "pkg/top.py": "def main(): pass\n"}, "component pkg.parts.b imports CLI pkg.top"),
        ({"pkg/parts/b.py": "def f():\n    from pkg.parts import c\n", "pkg/parts/c.py": ""}, "function-local import of pkg.parts.c"),
        ({"pkg/parts/b.py": "import pkg.parts.c\n", "pkg/parts/c.py": "def f():\n    import pkg.parts.b\n"}, "import cycle: pkg.parts.b -> pkg.parts.c"),
        ({"pkg/parts/b.py": "from . import c\n", "pkg/parts/c.py": ""}, "relative import"),
        ({"pkg/parts/b.py": "from lightning.pytorch import Callback\n"}, "a component imports lightning"),
        ({"pkg/parts/__init__.py": "_EXPORTS = {'Main': 'pkg.top'}\n", "pkg/top.py": ""}, "names pkg.top, outside package pkg.parts"),
        ({"pkg/other/x.py": ""}, "has no layer"),
        ({"pkg/parts/__init__.py": "from pkg.parts.sys import S\n", "pkg/parts/sys.py": ""}, "package pkg.parts imports system pkg.parts.sys eagerly"),
    ],
)
def test_the_checker_finds_planted_faults(tmp_path, files, expected):
    root = _plant(tmp_path, {"pkg/__init__.py": "", "pkg/core/__init__.py": "", "pkg/parts/__init__.py": "", **files})
    layers = dict(PLANTED_LAYERS)
    if "pkg/other/x.py" in files:
        layers.pop("pkg")
    problems = violations(root, ("pkg",), layers)
    assert any(expected in p for p in problems), problems


def test_the_checker_accepts_downward_and_type_checking_imports(tmp_path):
    root = _plant(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/core/__init__.py": "",
            "pkg/core/err.py": "",
            "pkg/parts/__init__.py": "_EXPORTS = {'B': 'pkg.parts.b'}\n",
            "pkg/parts/b.py": "from typing import TYPE_CHECKING\nfrom pkg.core.err import X\nif TYPE_CHECKING:\n    from lightning import LightningModule\n",
            "pkg/top.py": "def main():\n    from pkg.parts import B\n",
        },
    )
    assert violations(root, ("pkg",), PLANTED_LAYERS) == []
