"""The enrichers cdlm has, which of them are enabled, and running the enabled ones.

``CDLM_ENRICHERS`` chooses the enabled ones: unset means all, ``none`` means none, otherwise a
comma-separated list of names (``phone,age_band``). An unknown name is refused, naming the known
ones, so a typo cannot silently switch enrichment off.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Final

from cdlm.quality.enrich.age import AgeBandEnricher
from cdlm.quality.enrich.base import Attribute, Derived, Enricher
from cdlm.quality.enrich.email import EmailDomainEnricher
from cdlm.quality.enrich.phone import PhoneEnricher
from cdlm.quality.enrich.postal import PostalRegionEnricher

SETTING = "CDLM_ENRICHERS"

#: Every enricher by name, in the order they run.
ENRICHERS: Final[Mapping[str, Enricher]] = MappingProxyType(
    {
        e.name: e
        for e in (PhoneEnricher(), EmailDomainEnricher(), AgeBandEnricher(), PostalRegionEnricher())
    }
)
ALL: Final[frozenset[str]] = frozenset(ENRICHERS)


class EnricherSettingError(ValueError):
    """The enabled-enrichers setting names something that is not an enricher."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def parse_enabled(raw: str | None, variable: str = SETTING) -> frozenset[str]:
    """The enabled enricher names from the setting's text (None when unset: all)."""
    if raw is None:
        return ALL
    value = raw.strip()
    if value.lower() == "none":
        return frozenset()
    names = [part.strip() for part in value.split(",")]
    if not value or any(not name for name in names):
        raise EnricherSettingError(
            variable, "empty name; give comma-separated enricher names, or 'none' for none"
        )
    unknown = sorted(set(names) - ALL)
    if unknown:
        raise EnricherSettingError(
            variable,
            f"unknown enricher {', '.join(repr(n) for n in unknown)}; "
            f"known: {', '.join(ENRICHERS)}",
        )
    return frozenset(names)


def enrich(
    values: Mapping[str, str], *, as_of: date, enabled: frozenset[str] = ALL
) -> dict[Attribute, Derived]:
    """Every attribute the enabled enrichers derive from ``values``, with its provenance."""
    out: dict[Attribute, Derived] = {}
    for name, enricher in ENRICHERS.items():
        if name not in enabled:
            continue
        derived = enricher.derive(values, as_of=as_of)
        if not derived:
            continue
        undeclared = set(derived) - set(enricher.derives)
        if undeclared:
            raise AssertionError(f"enricher {name} derived undeclared {sorted(undeclared)}")
        sources = tuple(f for f in enricher.reads if f in values)
        for attribute, value in derived.items():
            out[attribute] = Derived(attribute, value, name, enricher.version, sources)
    return out


def owner_of(attribute: Attribute) -> str:
    """The name of the enricher deriving ``attribute`` (each attribute has exactly one)."""
    return _OWNERS[attribute]


def _owners() -> Mapping[Attribute, str]:
    owners: dict[Attribute, str] = {}
    for name, enricher in ENRICHERS.items():
        for attribute in enricher.derives:
            assert attribute not in owners, f"{attribute} derived by two enrichers"
            owners[attribute] = name
    return MappingProxyType(owners)


_OWNERS: Final[Mapping[Attribute, str]] = _owners()
