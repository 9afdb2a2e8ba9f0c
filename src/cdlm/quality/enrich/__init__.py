"""Enrichment: coarse analysis attributes derived from profile values, with provenance.

Importing this package is cheap: each enricher loads its data (phonenumbers' geocoder, the
disposable-domain list, postal prefix tables) the first time it runs.
"""

from cdlm.quality.enrich.age import AgeBand
from cdlm.quality.enrich.base import (
    Attribute,
    Derived,
    Enricher,
    parse_provenance,
    provenance,
)
from cdlm.quality.enrich.email import DomainKind
from cdlm.quality.enrich.phone import LineType
from cdlm.quality.enrich.registry import (
    ALL,
    ENRICHERS,
    SETTING,
    EnricherSettingError,
    enrich,
    owner_of,
    parse_enabled,
)

__all__ = [
    "ALL",
    "ENRICHERS",
    "SETTING",
    "AgeBand",
    "Attribute",
    "Derived",
    "DomainKind",
    "Enricher",
    "EnricherSettingError",
    "LineType",
    "enrich",
    "owner_of",
    "parse_enabled",
    "parse_provenance",
    "provenance",
]
