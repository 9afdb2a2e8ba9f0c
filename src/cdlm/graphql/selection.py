"""What a query selected below a field (to audit which personal fields were read)."""

from __future__ import annotations

from typing import Any

from strawberry.types.info import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection


def _walk(selections: list[Selection], prefix: str, found: set[str]) -> None:
    for selection in selections:
        if isinstance(selection, SelectedField):
            path = f"{prefix}{selection.name}"
            found.add(path)
            _walk(selection.selections, f"{path}.", found)
        elif isinstance(selection, InlineFragment | FragmentSpread):
            _walk(selection.selections, prefix, found)


def selected_paths(info: Info[Any, Any]) -> set[str]:
    """Dotted paths selected below the current field, e.g. ``profile.email``.

    Paths through a connection's ``edges.node`` or ``nodes`` are reported from the node down.
    """
    found: set[str] = set()
    for field in info.selected_fields:
        _walk(field.selections, "", found)
    normalized = set()
    for path in found:
        for prefix in ("edges.node.", "nodes."):
            if path.startswith(prefix):
                path = path[len(prefix) :]
        normalized.add(path)
    return normalized
