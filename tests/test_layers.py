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
    return [(package, path) for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


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


# Inside service/: the rooms (a package, or a top-level module) and what each may import of the others.
# The edge and the routes call the pipeline; the pipeline calls inference and models; inference never imports HTTP.
SERVICE_ALLOWED = {
    "observability": {"settings"},
    "inference": {"observability", "settings"},
    "models": {"inference", "observability", "settings", "errors"},
    "corrections": {"settings", "errors"},
    "state": {"models", "observability", "settings", "errors"},
    "limits": {"api", "settings", "errors"},  # api: its request schema (TagRequest) only, checked below
    "pipeline": {"api", "inference", "models", "limits", "state", "settings", "errors"},
    "results": {"api", "models", "pipeline", "errors"},
    "api": {"pipeline", "results", "limits", "state", "models", "observability", "corrections", "settings", "errors"},
    "oip": {"api", "edge", "pipeline", "results", "state", "models", "settings", "errors"},
    "edge": {"api", "pipeline", "state", "observability", "settings", "errors"},
    "errors": {"api"},
    "settings": set(),
}
# modules of a room that rooms below the routes may import: the request schema, the body declarations
SHARED = {"service.api.schemas", "service.edge.bodies"}


def service_room(module: str) -> str | None:
    """ "service.inference.queue" -> "inference"; None for the app and the server, which compose everything."""
    parts = module.split(".")
    room = parts[1] if len(parts) > 1 and parts[0] == "service" else None
    return None if room in (None, "app", "server") else room


def project_imports(path: Path) -> set[str]:
    """The project modules `path` imports (full dotted names, `from a import b` as a.b when b is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES and module_path(name) is not None}


def module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def all_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


SERVICE_MODULES = sorted(name for name in all_modules() if service_room(name) is not None)


@pytest.mark.parametrize("module", SERVICE_MODULES)
def test_each_serving_room_imports_only_the_rooms_below_it(module: str) -> None:
    room = service_room(module)
    assert room in SERVICE_ALLOWED, f"{module}: a new room of service/; state what it may import in SERVICE_ALLOWED"
    for target in project_imports(all_modules()[module]):
        other = service_room(target) if target.startswith("service.") else None
        if other is None or other == room:
            continue
        if room in {"limits", "pipeline", "results", "errors", "oip"} and other in {"api", "edge"}:
            allowed = target in SHARED or (room == "oip" and target == "service.api.answers")
            assert allowed, f"{module} imports {target}: only {sorted(SHARED)} of the HTTP rooms"
            continue
        assert other in SERVICE_ALLOWED[room], f"{module} ({room}) imports {target} ({other}): an arrow the wrong way"


def test_inference_never_imports_http_or_the_routes() -> None:
    for module in SERVICE_MODULES:
        if service_room(module) == "inference":
            imported = {service_room(t) for t in project_imports(all_modules()[module]) if t.startswith("service.")}
            assert not imported & {"edge", "api", "oip", "pipeline", "models", "state"}, module


def test_no_import_cycle_anywhere() -> None:
    """Module-level imports of the whole project form no cycle (a function-level import is a deliberate lazy one)."""
    modules = all_modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                edges |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names}
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [node, target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
