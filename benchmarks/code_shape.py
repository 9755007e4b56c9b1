"""The shape of a tree's serving code: modules and lines per folder of service/, its longest modules and functions.

    python benchmarks/code_shape.py [ROOT ...]      # default: this checkout; several: side by side

What issue 24's closing note compares before and after the rooms (a worktree of the older commit as a ROOT).
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path


def shape(root: Path) -> None:
    service = root / "service"
    modules, lines, functions, sizes = Counter[str](), Counter[str](), [], []
    for path in sorted(service.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        folder = str(path.parent.relative_to(root))
        modules[folder] += 1
        lines[folder] += len(text.splitlines())
        sizes.append((len(text.splitlines()), str(path.relative_to(root))))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((length, f"{path.relative_to(root)}:{node.name}"))
    print(f"{root}:")
    for folder in sorted(modules):
        print(f"  {folder:40} {modules[folder]:3} modules {lines[folder]:6} lines")
    print("  longest modules:  " + ", ".join(f"{name} {n}" for n, name in sorted(sizes, reverse=True)[:3]))
    print("  longest functions: " + ", ".join(f"{name} {n}" for n, name in sorted(functions, reverse=True)[:5]))


if __name__ == "__main__":
    for given in sys.argv[1:] or [str(Path(__file__).resolve().parents[1])]:
        shape(Path(given).resolve())
