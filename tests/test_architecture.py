"""The layering of DESIGN.md holds: dependencies point one way, no import circle, a light CLI.

The import graph is read from the source (every ``import cnnlab...`` and
``from cnnlab... import``, at any depth of a module), so a lazy import inside a
function counts as a dependency too; only the circle check is restricted to the
imports that run when a module is imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "cnnlab"

# What each area may import (besides itself). "" is the package root (version, lazy fit / load).
BASE = {"", "errors", "files"}
LOW = BASE | {"ops", "nn", "spec", "models", "data"}
ALLOWED = {
    "": BASE | {"train", "inference"},  # cnnlab.fit / cnnlab.load, imported on first use
    "errors": set(),
    "files": {"errors"},
    "ops": BASE,
    "nn": BASE | {"ops"},
    "spec": BASE | {"ops", "nn"},
    "models": BASE | {"ops", "nn", "spec"},
    "data": BASE | {"ops"},
    "inference": LOW,
    "train": LOW | {"inference", "report"},  # report: only run_experiment's final write_report, inside the function
    "explain": LOW | {"inference"},
    "report": LOW | {"inference", "explain"},  # never train: train writes the report (a circle otherwise)
    "serve": LOW | {"inference", "explain"},
    "cli": LOW | {"inference", "train", "explain", "report", "serve"},
    "__main__": {"cli"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # also what sits under `if TYPE_CHECKING:` and try / except at the top
        nodes = [n for top in tree.body for n in ast.walk(top) if not isinstance(top, (ast.FunctionDef, ast.ClassDef))]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "cnnlab":
            for alias in node.names:  # `from cnnlab.data import remote` imports the submodule, not the package's names
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if (PACKAGE.parent / submodule.replace(".", "/")).with_suffix(".py").is_file()
                          or (PACKAGE.parent / submodule.replace(".", "/") / "__init__.py").is_file() else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "cnnlab")
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_area_is_known() -> None:
    assert {_area(m) for m in MODULES} <= set(ALLOWED)


def test_dependencies_point_one_way() -> None:
    wrong = []
    for module, path in sorted(MODULES.items()):
        for target in _imports(path, top_level_only=False):
            if target not in MODULES:
                continue
            here, there = _area(module), _area(target)
            if here != there and there not in ALLOWED[here]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_no_import_circle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for target in _imports(path, top_level_only=True):
            if target in MODULES and target != module:
                graph[module].add(target)
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_the_checks_catch_a_circle(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from cnnlab.train.trainer import Trainer\nfrom cnnlab.data import remote\n")
    assert _imports(tmp_path / "a.py", top_level_only=True) == {"cnnlab.train.trainer", "cnnlab.data.remote"}
    (tmp_path / "b.py").write_text("def f():\n    import cnnlab.cli\n")
    assert _imports(tmp_path / "b.py", top_level_only=True) == set()
    assert _imports(tmp_path / "b.py", top_level_only=False) == {"cnnlab.cli"}


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["data", "--help"]])
def test_help_does_not_import_torch(argv: list[str]) -> None:
    code = ("import sys\nfrom cnnlab.cli import main\ncode = main(%r)\n"
            "sys.stdout.write('\\nTORCH=%%s' %% ('torch' in sys.modules))\nsys.exit(code)") % (argv,)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    assert done.stdout.rstrip().endswith("TORCH=False")


def test_python_dash_m_cnnlab_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "cnnlab", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("cnnlab ")
