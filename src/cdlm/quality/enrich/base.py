"""What an enricher is, what it produces, and the clean-up every enricher does on its input.

An enricher reads a few sealed profile values (in process memory only) and derives coarse
categories kept in clear for analysis: a country, a region code, a band, a kind. It never passes
a personal value through, never does I/O and never raises on odd input: what it cannot read it
leaves out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol

from cdlm.core.text import has_control_characters

#: Prefix of the lineage source of a derived value: ``enricher:<name>@<version>``.
PROVENANCE_PREFIX = "enricher:"
_PROVENANCE = re.compile(r"^enricher:(?P<name>[a-z][a-z0-9_]{0,31})@(?P<version>[0-9]{1,6})$")


class Attribute(StrEnum):
    """The analysis attributes enrichers derive (kept in clear, erased with the customer)."""

    PHONE_COUNTRY = "phone_country"  #: ISO 3166-1 alpha-2 of the phone number
    PHONE_REGION = "phone_region"  #: ISO 3166-2 subdivision of a geographic phone number
    PHONE_LINE_TYPE = "phone_line_type"  #: a :class:`LineType`
    EMAIL_DOMAIN_KIND = "email_domain_kind"  #: a :class:`DomainKind`
    AGE_BAND = "age_band"  #: an :class:`AgeBand`
    POSTAL_REGION = "postal_region"  #: ISO 3166-2 subdivision of the postal code


class Enricher(Protocol):
    """Derives analysis attributes from profile values.

    ``derive`` is pure: same values and ``as_of``, same answer; no I/O, no clock, no exception on
    any input (missing, empty, malformed or hostile values give no attribute). It returns only
    attributes listed in ``derives``, each a coarse category, never a personal value.
    """

    @property
    def name(self) -> str:
        """Stable name: the ``CDLM_ENRICHERS`` setting and lineage use it."""

    @property
    def version(self) -> int:
        """Bumped whenever the same input may derive a different value."""

    @property
    def reads(self) -> tuple[str, ...]:
        """The profile fields it reads (keys of ``cdlm.quality.fields.PROFILE_FIELDS``)."""

    @property
    def derives(self) -> tuple[Attribute, ...]:
        """The attributes it may derive."""

    def derive(self, values: Mapping[str, str], *, as_of: date) -> dict[Attribute, str]:
        """The attributes it can derive from ``values`` as of the day ``as_of``."""


def provenance(name: str, version: int) -> str:
    """The lineage source of values derived by enricher ``name`` at ``version``."""
    return f"{PROVENANCE_PREFIX}{name}@{version}"


def parse_provenance(source: str) -> tuple[str, int] | None:
    """``(name, version)`` of an ``enricher:<name>@<version>`` lineage source; None for any other
    source (a source system, a staff member)."""
    match = _PROVENANCE.fullmatch(source)
    if match is None:
        return None
    return match["name"], int(match["version"])


@dataclass(frozen=True)
class Derived:
    """One derived attribute value with where it came from."""

    attribute: Attribute
    value: str
    enricher: str
    version: int
    #: The profile fields present and read when it was derived (names, never values).
    sources: tuple[str, ...]

    @property
    def provenance(self) -> str:
        """``enricher:<name>@<version>``, as lineage shows it."""
        return provenance(self.enricher, self.version)


def text(values: Mapping[str, str], field: str, max_length: int) -> str | None:
    """``values[field]`` stripped, or None when absent, not a string, blank, longer than
    ``max_length`` or holding control characters or bidirectional overrides (no real value of
    the field does)."""
    raw = values.get(field)
    if not isinstance(raw, str):
        return None
    value = raw.strip()
    if not value or len(value) > max_length:
        return None
    if has_control_characters(value):
        return None
    return value
