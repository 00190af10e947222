"""Imports run downward only (docs/architecture.md, "Layers"): every import in api/ and keys/,
function-level ones included, read with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Lowest first. A module belongs to the longest prefix listed; a module may import its own layer
# and every layer below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("keys",),
    ("api.config",),
    ("api.formats", "api.signing"),
    ("api.core",),
    ("api.models",),
    ("api.runtime",),
    ("api.auth", "api.content", "api.media"),
    ("api.methods", "api.web"),
    ("api.app", "api.server", "api"),  # "api": the package itself, nothing below it
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, the prefix that placed it) for an ``api``/``keys`` module."""
    best: tuple[int, str] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or (prefix != "api" and module.startswith(prefix + "."))
            if inside and (
                    best is None or len(prefix) > len(best[1])):
                best = (index, prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The api/keys modules ``path`` imports anywhere in its body (``from api import x`` counts as
    ``api.x`` when that is a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names
                       if f"{node.module}.{alias.name}" in known)
    return {name for name in out if name.split(".")[0] in ("api", "keys")}


def sources() -> dict[str, Path]:
    return {module_name(path): path
            for folder in ("api", "keys") for path in sorted((ROOT / folder).rglob("*.py"))}


def graph() -> dict[str, set[str]]:
    modules = sources()
    known = set(modules)
    return {name: imports_of(path, known) - {name} for name, path in modules.items()}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(edges.items()):
        here, _ = layer_of(module)
        for target in sorted(targets):
            if target == "api" or module.startswith(target + "."):
                continue  # a package's own __init__ (imported on the way down)
            there, prefix = layer_of(target)
            if there > here:
                found.append(f"{module} (layer {here}) imports {target} (layer {there}, "
                             f"{prefix})")
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles among modules (siblings of one layer may import each other, never round)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in edges or node.startswith(target + "."):
                continue
            if state.get(target) == 1:
                found.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_every_module_has_a_layer():
    for module in sources():
        layer_of(module)


def test_imports_run_downward_only():
    found = upward_imports(graph())
    assert not found, "upward imports:\n" + "\n".join(found)


def test_keys_never_imports_api():
    found = [f"{module} imports {target}" for module, targets in sorted(graph().items())
             if module.split(".")[0] == "keys" for target in sorted(targets)
             if target.split(".")[0] == "api"]
    assert not found, "\n".join(found)


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" → ".join(c) for c in found)


def test_method_modules_never_import_each_other():
    """Only ``common`` and a family package's own ``shared`` are shared among method modules."""
    found = []
    for module, targets in sorted(graph().items()):
        if not module.startswith("api.methods.") :
            continue
        package = module.rsplit(".", 1)[0]
        for target in sorted(targets):
            if not target.startswith("api.methods.") or module.startswith(target + "."):
                continue
            if target == "api.methods.common" or target == package + ".shared":
                continue
            found.append(f"{module} imports {target}")
    assert not found, "\n".join(found)


def test_the_checks_see_an_upward_import():
    edges = {"api.core.dispatch": {"api.methods.common"}, "api.methods.common": set()}
    assert upward_imports(edges) == [
        "api.core.dispatch (layer 3) imports api.methods.common (layer 7, api.methods)"]
    assert cycles({"api.media.a": {"api.content.b"}, "api.content.b": {"api.media.a"}})
