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
    ("api.app", "api.server", "api.cluster", "api.__main__", "api"),  # "api": the package
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


DYNAMIC = "<dynamic import>"  # importlib.import_module / __import__ with a computed name


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The api/keys modules ``path`` imports anywhere in its body: ``from api import x`` counts as
    ``api.x`` when that is a module, relative imports are resolved against the module's package,
    and ``importlib.import_module``/``__import__`` calls count by their literal name (a computed
    name is ``DYNAMIC``, which no module may use)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(
        ".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[:len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names
                       if f"{module}.{alias.name}" in known)
        elif isinstance(node, ast.Call) and _dynamic_import(node.func):
            name = node.args[0] if node.args else None
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                out.add(name.value)
            else:
                out.add(DYNAMIC)
    return {name for name in out if name == DYNAMIC or name.split(".")[0] in ("api", "keys")}


def _dynamic_import(func: ast.expr) -> bool:
    return ((isinstance(func, ast.Name) and func.id in ("__import__", "import_module"))
            or (isinstance(func, ast.Attribute) and func.attr == "import_module"))


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


def test_no_module_imports_by_a_computed_name():
    found = [name for name, targets in graph().items() if DYNAMIC in targets]
    assert not found, f"imports the layer test cannot follow: {found}"


def test_web_and_methods_never_import_each_other():
    """Siblings in one layer, but two separate edges: pages never call API handlers, handlers
    never render pages."""
    found = [f"{module} imports {target}" for module, targets in graph().items()
             for target in targets
             for mine, theirs in (("api.web", "api.methods"), ("api.methods", "api.web"))
             if module.startswith(mine) and target.startswith(theirs)]
    assert not found, "\n".join(found)


def test_relative_and_dynamic_imports_are_seen(tmp_path):
    folder = tmp_path / "api" / "core"
    folder.mkdir(parents=True)
    probe = folder / "probe.py"
    probe.write_text("from ..methods import common\nfrom . import errors\n"
                     "import importlib\nimportlib.import_module('api.web.pages')\n"
                     "__import__(name)\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = imports_of(probe, {"api.methods.common", "api.core.errors"})
    finally:
        ROOT = saved
    assert found == {"api.methods", "api.methods.common", "api.core", "api.core.errors",
                     "api.web.pages", DYNAMIC}


def test_the_checks_see_an_upward_import():
    edges = {"api.core.dispatch": {"api.methods.common"}, "api.methods.common": set()}
    assert upward_imports(edges) == [
        "api.core.dispatch (layer 3) imports api.methods.common (layer 7, api.methods)"]
    assert cycles({"api.media.a": {"api.content.b"}, "api.content.b": {"api.media.a"}})


def test_test_modules_import_the_postgres_driver_only_inside_tests():
    """The README's test command installs no postgres extra: a test module importing psycopg2
    at its top fails to collect there (.ci/run's SQLite run); import it where it is used."""
    tests = Path(__file__).resolve().parents[1]
    at_top = [str(path.relative_to(tests)) for path in sorted(tests.rglob("*.py"))
              for node in ast.parse(path.read_text()).body
              if isinstance(node, ast.Import | ast.ImportFrom)
              and any(name.split(".")[0] == "psycopg2" for name in (
                  [alias.name for alias in node.names] if isinstance(node, ast.Import)
                  else [node.module or ""]))]
    assert at_top == []
