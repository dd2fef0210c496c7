"""The layer rule: no module imports from a layer above its own.

The layer table is read from docs/architecture.md (the fenced `layers` block), so the map
and this check cannot drift apart: a module that is not on the map fails here, and so does
every import that goes upward. Imports are found with `ast`, wherever they are: at module
level, inside functions, under `if TYPE_CHECKING:`, and `importlib.import_module("...")`
with a literal name. A module's layer is the longest dotted prefix in the table that
matches whole components of its name (`modelport.backends` covers
`modelport.backends.managed` and `modelport.backends.managed.supervisor` alike), so files
moving inside a package do not touch the table.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "modelport"
MAP = REPO / "docs" / "architecture.md"


@dataclass(frozen=True)
class Layer:
    rank: int
    name: str


@dataclass(frozen=True)
class LayerMap:
    prefixes: dict[str, Layer]  # dotted module prefix -> its layer
    exceptions: dict[tuple[str, str], str]  # (importer prefix, imported prefix) -> why
    pure: frozenset[str]  # layers whose modules never do I/O
    io_modules: frozenset[str]  # what a pure layer may not import

    def layer_of(self, module: str) -> Layer | None:
        match = _longest_prefix(module, self.prefixes)
        return self.prefixes[match] if match else None

    def excused(self, importer: str, imported: str) -> bool:
        return any(_covers(a, importer) and _covers(b, imported) for a, b in self.exceptions)


@dataclass(frozen=True)
class Import:
    line: int
    target: str  # dotted module name, `pkg.__init__` for a package


def _covers(prefix: str, module: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _longest_prefix(module: str, prefixes: dict[str, Layer]) -> str | None:
    matches = [p for p in prefixes if _covers(p, module)]
    return max(matches, key=len) if matches else None


def _fenced(markdown: str, info: str) -> list[list[str]]:
    """Rows (whitespace-split, comments dropped) of the fenced block tagged `info`."""
    found = re.search(rf"^```{info}\n(.*?)^```", markdown, re.M | re.S)
    assert found, f"docs/architecture.md has no ```{info} block"
    rows = (line.split("#", 1)[0].split() for line in found.group(1).splitlines())
    return [row for row in rows if row]


def parse_layer_map(markdown: str) -> LayerMap:
    prefixes: dict[str, Layer] = {}
    for rank, name, *modules in _fenced(markdown, "layers"):
        for module in modules:
            assert module not in prefixes, f"{module} is on the map twice"
            prefixes[module] = Layer(int(rank), name)
    exceptions: dict[tuple[str, str], str] = {}
    for importer, imported, *why in _fenced(markdown, "layer-exceptions"):
        assert why, f"the exception {importer} -> {imported} needs a reason"
        exceptions[(importer, imported)] = " ".join(why)
    pure: set[str] = set()
    io_modules: set[str] = set()
    for key, *values in _fenced(markdown, "no-io"):
        (pure if key == "layers:" else io_modules).update(values)
    return LayerMap(prefixes, exceptions, frozenset(pure), frozenset(io_modules))


def module_name(path: Path, root: Path = REPO) -> str:
    """modelport/wire/sse.py -> modelport.wire.sse; a package is `pkg.__init__`."""
    return ".".join(path.relative_to(root).with_suffix("").parts)


def _on_disk(dotted: str, root: Path) -> str | None:
    base = root.joinpath(*dotted.split("."))
    if base.with_suffix(".py").is_file():
        return dotted
    if (base / "__init__.py").is_file():
        return dotted + ".__init__"
    return None


def _resolve(dotted: str, root: Path) -> str:
    """The module a dotted name loads; names not on disk (yet) stay as written."""
    return _on_disk(dotted, root) or dotted


def _package_of(module: str) -> list[str]:
    parts = module.split(".")
    return parts[:-1]  # `a.b.__init__` -> a.b; `a.b.c` -> a.b


def imports_of(source: str, module: str, root: Path = REPO) -> list[Import]:
    """Every import in `source`, read as the module named `module`, with targets resolved."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, _resolve(a.name, root)) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: climb from the importer's own package
                package = _package_of(module)
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = _on_disk(f"{base}.{alias.name}", root)
                found.append(Import(node.lineno, submodule or _resolve(base, root)))
        elif _is_import_module_call(node):
            assert isinstance(node, ast.Call) and isinstance(node.args[0], ast.Constant)
            found.append(Import(node.lineno, _resolve(str(node.args[0].value), root)))
    return found


def _is_import_module_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call) or not node.args:
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    first = node.args[0]
    return (
        name == "import_module" and isinstance(first, ast.Constant) and isinstance(first.value, str)
    )


def layer_violations(source: str, module: str, layers: LayerMap, root: Path = REPO) -> list[str]:
    """What is wrong with `module`'s imports: unmapped names, upward imports, I/O in pure code."""
    own = layers.layer_of(module)
    if own is None:
        return [f"{module} is on no layer: add it to the layers block in docs/architecture.md"]
    problems: list[str] = []
    for imp in imports_of(source, module, root):
        top = imp.target.split(".")[0]
        if own.name in layers.pure and any(_covers(m, imp.target) for m in layers.io_modules):
            problems.append(f"{module}:{imp.line} ({own.name}, no I/O) imports {imp.target}")
        if top != "modelport":
            continue
        theirs = layers.layer_of(imp.target)
        if theirs is None:
            problems.append(f"{module}:{imp.line} imports {imp.target}, which is on no layer")
        elif theirs.rank > own.rank and not layers.excused(module, imp.target):
            problems.append(
                f"{module}:{imp.line} ({own.name}, rank {own.rank}) imports {imp.target} "
                f"({theirs.name}, rank {theirs.rank}), a layer above its own"
            )
    return problems


LAYERS = parse_layer_map(MAP.read_text(encoding="utf-8"))
SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_no_module_imports_from_a_layer_above_its_own(path: Path) -> None:
    module = module_name(path)
    assert layer_violations(path.read_text(encoding="utf-8"), module, LAYERS) == []


def test_every_known_exception_is_still_needed() -> None:
    """An exception nobody uses any more is removed from the map, not kept as a loophole."""
    used: set[tuple[str, str]] = set()
    for path in SOURCES:
        module = module_name(path)
        for imp in imports_of(path.read_text(encoding="utf-8"), module):
            used |= {
                key
                for key in LAYERS.exceptions
                if _covers(key[0], module) and _covers(key[1], imp.target)
            }
    assert set(LAYERS.exceptions) <= used, set(LAYERS.exceptions) - used


def test_the_map_orders_the_layers_the_design_names() -> None:
    rank = {layer.name: layer.rank for layer in LAYERS.prefixes.values()}
    order = ["canonical", "wire", "backends", "router", "service", "gateway", "cli"]
    assert [rank[name] for name in order] == sorted(rank[name] for name in order)
    assert len({rank[name] for name in order}) == len(order)
    assert rank["discovery"] == rank["router"]
    assert rank["gateway"] == rank["agent"] == rank["hub"]
    assert {"canonical", "wire"} <= LAYERS.pure


UPWARD = [
    ("modelport.wire.fake", "from modelport.gateway.app import build_app\n"),
    ("modelport.wire.fake", "import modelport.router\n"),
    ("modelport.backends.fake", "from modelport import router\n"),
    ("modelport.backends.fake", "from ..router import Router\n"),
    ("modelport.backends.managed.fake", "from ...service import Reply\n"),
    ("modelport.types", "def f() -> None:\n    from modelport.backends.base import Backend\n"),
    (
        "modelport.router",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from modelport.gateway.server import Gateway\n",
    ),
    ("modelport.errors", "import importlib\nimportlib.import_module('modelport.cli')\n"),
    ("modelport.service.fake", "from modelport.config import Config\n"),
    ("modelport.wire.fake", "from modelport import connect\n"),  # the facade pulls backends
]


@pytest.mark.parametrize(("module", "source"), UPWARD)
def test_the_checker_flags_an_upward_import(module: str, source: str) -> None:
    problems = layer_violations(source, module, LAYERS)
    assert len(problems) == 1 and "a layer above its own" in problems[0], problems


DOWNWARD_OR_SIDEWAYS = [
    ("modelport.gateway.fake", "from modelport.service import Reply\nimport modelport.types\n"),
    ("modelport.backends.fake", "from . import http\nfrom .relay import HTTPRelay\n"),
    ("modelport.router", "from modelport.discovery import discover\n"),
    ("modelport.wire.openai.fake", "from ..sse import Frame\nfrom .. import codec_for\n"),
    ("modelport.cli", "import asyncio\nfrom modelport.gateway.server import Gateway\n"),
]


@pytest.mark.parametrize(("module", "source"), DOWNWARD_OR_SIDEWAYS)
def test_the_checker_allows_imports_down_and_sideways(module: str, source: str) -> None:
    assert layer_violations(source, module, LAYERS) == []


def test_the_checker_flags_io_in_a_pure_layer_and_modules_off_the_map() -> None:
    assert layer_violations("import aiohttp\n", "modelport.wire.fake", LAYERS)
    assert layer_violations("import asyncio\n", "modelport.scrub", LAYERS)
    assert layer_violations("import aiohttp\n", "modelport.backends.fake", LAYERS) == []
    assert layer_violations("import os\n", "modelport.nowhere", LAYERS)
    assert layer_violations("import modelport.nowhere\n", "modelport.cli", LAYERS)


def test_a_known_exception_excuses_exactly_its_import() -> None:
    table = (
        "```layers\n0 low modelport.low\n1 high modelport.high\n```\n"
        "```layer-exceptions\nmodelport.low.a modelport.high.b why it is so\n```\n"
        "```no-io\nlayers: low\nimports: socket\n```\n"
    )
    layers = parse_layer_map(table)
    assert layer_violations("import modelport.high.b\n", "modelport.low.a", layers) == []
    assert layer_violations("import modelport.high.c\n", "modelport.low.a", layers)
    assert layer_violations("import modelport.high.b\n", "modelport.low.z", layers)
