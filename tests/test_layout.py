"""The layout's import rules (docs/design.md, Dependencies): core/ and graphql/ import no
domain, config imports only core, and no two packages import each other, directly or around a
loop (function-level imports count too; the schema root, the domains' GraphQL modules and
loaders, and the composition roots are above every package and left out)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.pure

SRC = Path(__file__).resolve().parents[1] / "src" / "cdlm"
ROOTS = {"app", "cli", "lambda_handler", "__main__", "api", "db"}
ABOVE_SERVICES = {"api", "api.py", "loaders.py"}  # a domain's GraphQL modules and loaders


def _imports(path: Path) -> set[str]:
    """The top-level cdlm units ``path`` imports (``cdlm.core.clock`` -> ``core``)."""
    package = ["cdlm", *path.relative_to(SRC).parts[:-1]]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
            elif node.module:
                names = [node.module]
        found |= {n.split(".")[1] for n in names if n.startswith("cdlm.")}
    return found


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).parts
        unit = parts[0].removesuffix(".py")
        if unit in ROOTS or "migrations" in parts or ABOVE_SERVICES & {*parts, path.name}:
            continue
        edges[unit] |= _imports(path) - {unit} - ROOTS
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        for other in edges.get(unit, ()):
            if other not in index:
                visit(other)
                low[unit] = min(low[unit], low[other])
            elif other in stack:
                low[unit] = min(low[unit], index[other])
        if low[unit] == index[unit]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == unit:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for unit in list(edges):
        if unit not in index:
            visit(unit)
    return groups


def test_no_two_packages_import_each_other() -> None:
    assert _cycles(_graph()) == []


@pytest.mark.parametrize(
    ("unit", "allowed"),
    [("core", set()), ("graphql", {"core"}), ("config", {"core"})],
)
def test_the_shared_layers_import_no_domain(unit: str, allowed: set[str]) -> None:
    assert _graph()[unit] <= allowed


def test_the_schema_root_is_imported_by_the_roots_only() -> None:
    importers = set()
    for path in SRC.rglob("*.py"):
        unit = path.relative_to(SRC).parts[0].removesuffix(".py")
        if unit not in ROOTS and "api" in _imports(path):
            importers.add(path.relative_to(SRC).as_posix())
    assert importers == set()


def test_graphql_modules_evaluate_annotations_when_they_are_defined() -> None:
    # Strawberry reads every field's annotation when a type is declared; postponed annotations
    # are strings it parses again one by one, a noticeable part of the API's start-up.
    modules = [*SRC.glob("*/api.py"), *SRC.glob("*/api/*.py")]
    assert len(modules) > 10
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        postponed = any(
            isinstance(node, ast.ImportFrom)
            and node.module == "__future__"
            and any(alias.name == "annotations" for alias in node.names)
            for node in tree.body
        )
        assert not postponed, f"{path.relative_to(SRC)}: drop `from __future__ import annotations`"
