"""Arrows point down: cli -> capability (extract, export, evaluate, ...) -> io/models/embed.

Read from the source with ``ast`` (nothing is imported), so an upward import hidden inside a
function body is found too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "trackreid"
LOWER = ("io", "models", "embed")
# What the lower layers may use: each other, and the package's leaf modules.
LOWER_MAY_IMPORT = ("trackreid.io", "trackreid.models", "trackreid.embed", "trackreid.errors",
                    "trackreid.suggest", "trackreid.runtime")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every ``trackreid`` module ``path`` imports, anywhere in the file, with its line number."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            mod = node.module or ""
            if mod == "trackreid":  # `from trackreid import x`: x may be a submodule
                found += [(node.lineno, f"trackreid.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, mod))
    return [(line, m) for line, m in found if m == "trackreid" or m.startswith("trackreid.")]


def allowed_below(module: str) -> bool:
    return module == "trackreid.__version__" or any(
        module == a or module.startswith(a + ".") for a in LOWER_MAY_IMPORT)


def test_the_scan_finds_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from trackreid.export import cached_onnx\n    from trackreid import extract\n")
    found = imported_modules(f)
    assert found == [(2, "trackreid.export"), (3, "trackreid.extract")]
    assert not any(allowed_below(m) for _, m in found)


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_never_import_upward(layer: str) -> None:
    bad = [f"{p.relative_to(PKG.parent)}:{line} imports {m}"
           for p in sorted((PKG / layer).rglob("*.py"))
           for line, m in imported_modules(p) if not allowed_below(m)]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_only_the_cli_imports_the_cli() -> None:
    bad = [f"{p.relative_to(PKG.parent)}:{line} imports {m}"
           for p in sorted(PKG.rglob("*.py")) if "cli" not in p.relative_to(PKG).parts
           and p.name != "__main__.py"
           for line, m in imported_modules(p) if m.startswith("trackreid.cli")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", ["associate", "run", "adapt", "search"])
def test_no_import_cycle_within_a_package(package: str) -> None:
    """Modules of one package import each other in one direction (imports in functions and for type
    checking included: a circle of types is a circle of ideas)."""
    mods = {f"trackreid.{package}.{p.stem}": p for p in (PKG / package).glob("*.py") if p.stem != "__init__"}
    graph = {m: {d for _, d in imported_modules(p) if d in mods and d != m} for m, p in mods.items()}
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        if m in path:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        for d in sorted(graph[m]):
            visit(d, [*path, m])
        done.add(m)

    for m in sorted(graph):
        visit(m, [])
