"""The package's layering, read from its source with `ast` (no import, no
subprocess: milliseconds). Issue 15's "done when": no module imports a
private name of another module, no front end imports the CLI layer, and
targets are told apart by what they can do, not by their kind."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

HARNESS = Path(__file__).resolve().parent.parent / "harness"
#: the CLI layer (the entry point, the CLI, its sub-commands): only it may import itself
CLI_LAYER = ("harness.cli", "harness.commands", "harness.__main__")
#: names that ask a target's kind rather than its capabilities; only harness/targets may use them
KIND_QUESTIONS = {"is_board"}
#: a target's duck-typed attributes, asked for with hasattr instead of its capabilities
ATTRIBUTE_QUESTIONS = {"plugin_args", "instructions", "open_link", "wait_ready", "reset"}


@functools.lru_cache(maxsize=1)
def _modules() -> tuple[tuple[str, Path, ast.Module], ...]:
    """Every module of the package, parsed once for all the tests here."""
    found = []
    for path in sorted(HARNESS.rglob("*.py")):
        parts = path.relative_to(HARNESS.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path, ast.parse(path.read_text(), str(path))))
    return tuple(found)


def _imported_module(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module name an ImportFrom reads from."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _imports(module: str, path: Path, tree: ast.Module):
    """(line, imported module, names) of every import in the module, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _imported_module(module, path, node)
            yield node.lineno, source, [a.name for a in node.names]
            for alias in node.names:  # `from harness import commands` names a module too
                yield node.lineno, f"{source}.{alias.name}", []
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(HARNESS.parent)}:{line}"


def test_no_module_imports_a_private_name_of_another_module():
    bad = []
    for module, path, tree in _modules():
        for line, source, names in _imports(module, path, tree):
            if not source.startswith("harness") or source == module:
                continue
            bad += [f"{_where(path, line)}: from {source} import {n}" for n in names if _private(n)]
            if any(_private(part) for part in source.split(".")):
                bad.append(f"{_where(path, line)}: imports the private module {source}")
    assert not bad, "private names imported across modules (make them public, or keep them in one module):\n" + \
        "\n".join(bad)


def test_no_front_end_imports_the_cli_layer():
    bad = []
    for module, path, tree in _modules():
        if module.startswith(CLI_LAYER):
            continue
        for line, source, _ in _imports(module, path, tree):
            if source.startswith(CLI_LAYER):
                bad.append(f"{_where(path, line)}: {module} imports {source}")
    assert not bad, "only harness.cli and harness.commands may import the CLI layer:\n" + "\n".join(bad)


def test_targets_are_asked_for_capabilities_not_their_kind():
    bad = []
    for module, path, tree in _modules():
        if module.startswith("harness.targets"):
            continue
        for node in ast.walk(tree):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else \
                node.name if isinstance(node, ast.alias) else None
            if name in KIND_QUESTIONS:
                bad.append(f"{_where(path, getattr(node, 'lineno', 0))}: {name}")
    assert not bad, "ask `capabilities_of(platform)` or `target.capabilities` instead:\n" + "\n".join(bad)


#: private attributes of the standard library that are its public API
STDLIB_PRIVATE = {"_exit", "_asdict", "_replace", "_fields", "_getframe"}
KNOWN_PRIVATE_READS: set[str] = set()  # none left


def _own_names(tree: ast.Module) -> set[str]:
    """Every name a module defines or assigns (functions, classes, attributes, variables, arguments)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def test_no_module_reads_a_private_attribute_another_module_defines():
    """`thing._name` where this module defines no `_name` (so another one
    does): a private function or field used across modules. `self._x` and
    `cls._x` are the class's own (or its base's) and are not judged."""
    bad = []
    for module, path, tree in _modules():
        own = _own_names(tree) | STDLIB_PRIVATE
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own \
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                if f"{path.relative_to(HARNESS.parent)}: {ast.unparse(node)}" not in KNOWN_PRIVATE_READS:
                    bad.append(f"{_where(path, node.lineno)}: {ast.unparse(node)}")
    assert not bad, "private attributes of another module's objects (make them public):\n" + "\n".join(bad)


def test_targets_are_not_asked_what_they_have_with_hasattr():
    """hasattr(target, "plugin_args") and the like ask what a target is by
    the attributes it happens to have; `Capabilities` says what it offers."""
    bad = []
    for module, path, tree in _modules():
        if module.startswith("harness.targets"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "hasattr" \
                    and len(node.args) == 2 and isinstance(node.args[1], ast.Constant) \
                    and node.args[1].value in ATTRIBUTE_QUESTIONS:
                bad.append(f"{_where(path, node.lineno)}: {ast.unparse(node)}")
    assert not bad, "ask `target.capabilities` instead:\n" + "\n".join(bad)
