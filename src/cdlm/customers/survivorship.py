"""Survivorship: which source's value a profile field keeps, with lineage.

A field takes the value of the most trusted source; between equally trusted sources the most
recently collected value wins. Rectification by staff outranks every source. For every field the
lineage names the source record that supplied the surviving value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cdlm.config import ConfigError
from cdlm.core.vocabulary import SourceKind

DEFAULT_TRUST: dict[SourceKind, int] = {
    SourceKind.STAFF: 100,
    SourceKind.CRM: 80,
    SourceKind.TRANSACTION: 70,
    SourceKind.SUPPORT: 60,
    SourceKind.WEB_FORM: 50,
    # Self-declared in answers to a survey, often run by a panel or partner: below a form.
    SourceKind.SURVEY: 45,
    SourceKind.IMPORT: 40,
    # Public profiles on social networks: self-declared, unverified, often stale.
    SourceKind.SOCIAL: 35,
    SourceKind.THIRD_PARTY: 30,
}


def trust_table(overrides: dict[str, int]) -> dict[SourceKind, int]:
    """The default trust levels with ``overrides`` (``CDLM_SOURCE_TRUST``) applied.

    Staff rectification keeps the top level whatever the overrides say.
    """
    table = dict(DEFAULT_TRUST)
    for name, level in overrides.items():
        try:
            kind = SourceKind(name)
        except ValueError:
            known = ", ".join(k.value for k in SourceKind)
            raise ConfigError(
                "CDLM_SOURCE_TRUST", f"unknown source kind {name!r} ({known})"
            ) from None
        table[kind] = level
    table[SourceKind.STAFF] = max(table.values()) + 1 if overrides else table[SourceKind.STAFF]
    return table


@dataclass(frozen=True)
class Provenance:
    """Where a set of values came from."""

    source_record_id: str
    source_system: str
    source_kind: SourceKind
    collected_at: datetime

    def lineage_entry(self, trust: int) -> dict[str, Any]:
        return {
            "source_record_id": self.source_record_id,
            "source_system": self.source_system,
            "source_kind": self.source_kind.value,
            "collected_at": self.collected_at.isoformat(),
            "trust": trust,
        }


def _current_trust(entry: dict[str, Any], table: dict[SourceKind, int]) -> int:
    # Judged by today's table, not the number stored when the value arrived: a changed
    # CDLM_SOURCE_TRUST then applies to old values too.
    try:
        return table[SourceKind(str(entry["source_kind"]))]
    except (KeyError, ValueError):
        return int(entry["trust"])


def _wins(
    incoming_trust: int,
    incoming_at: datetime,
    current: dict[str, Any] | None,
    table: dict[SourceKind, int],
) -> bool:
    if current is None:
        return True
    current_trust = _current_trust(current, table)
    if incoming_trust != current_trust:
        return incoming_trust > current_trust
    return incoming_at >= datetime.fromisoformat(str(current["collected_at"]))


def survive(
    values: dict[str, str],
    lineage: dict[str, dict[str, Any]],
    incoming: dict[str, str],
    provenance: Provenance,
    trust: dict[SourceKind, int] | None = None,
) -> list[str]:
    """Merge ``incoming`` into ``values``/``lineage`` in place; returns the fields that changed."""
    table = trust or DEFAULT_TRUST
    level = table.get(provenance.source_kind, 0)
    changed: list[str] = []
    for name, value in incoming.items():
        if _wins(level, provenance.collected_at, lineage.get(name), table):
            if values.get(name) != value:
                changed.append(name)
            values[name] = value
            lineage[name] = provenance.lineage_entry(level)
    return changed


def remove(
    values: dict[str, str],
    lineage: dict[str, dict[str, Any]],
    name: str,
    provenance: Provenance,
    trust: dict[SourceKind, int] | None = None,
) -> bool:
    """Clear a field by rectification; lineage records who cleared it."""
    table = trust or DEFAULT_TRUST
    existed = values.pop(name, None) is not None
    lineage[name] = {**provenance.lineage_entry(table[SourceKind.STAFF]), "cleared": True}
    return existed
