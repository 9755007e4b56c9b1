"""The import graph points one way: core <- {model, service} <- cli, and serving never needs torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("tagger", "model", "service", "cli")
# what each package may import from the project; anything else of the project is an arrow the wrong way
ALLOWED = {"tagger": {"tagger"}, "model": {"tagger", "model"}, "service": {"tagger", "service"}, "cli": set(PACKAGES)}
NEVER = {"tagger": {"torch"}, "service": {"torch"}}


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """The top-level names of every module `path` imports (at module level only, if asked)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def modules() -> list[tuple[str, Path]]:
    return [(package, path) for package in PACKAGES for path in sorted((ROOT / package).glob("*.py"))]


@pytest.mark.parametrize(
    ("package", "path"), modules(), ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v
)
def test_no_module_imports_against_the_layers(package: str, path: Path) -> None:
    project = imports(path) & set(PACKAGES)
    assert project <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {sorted(project - ALLOWED[package])}"
    assert not imports(path) & NEVER.get(package, set()), f"{path.relative_to(ROOT)} imports torch"


def test_the_cli_imports_training_code_only_when_a_command_needs_it() -> None:
    heavy = {"torch", "onnx"}
    assert not imports(ROOT / "cli" / "main.py", top_level_only=True) & heavy
    # and nothing it imports at start-up pulls torch in either: `tagger serve` runs without it
    code = "import sys, cli.main, service.app; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
