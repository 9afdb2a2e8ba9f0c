"""Legal clocks: month arithmetic, pauses, extensions, overdue, CCPA acknowledgement, and the
``CDLM_DSR_CLOCKS`` overrides. Pure rules: no database."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdlm.config import ConfigError, load_settings
from cdlm.core.jurisdictions import RULES, ClockRule, Jurisdiction, parse_rules
from cdlm.dsr.deadlines import Pause, RequestClock, add_business_days, add_months

pytestmark = pytest.mark.pure

JAN_31 = datetime(2026, 1, 31, 9, tzinfo=UTC)
#: Due date of a GDPR request received on JAN_31: the month's last day.
FEB_28 = datetime(2026, 2, 28, 9, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)
KNOWN = "gdpr, uk_gdpr, ccpa, lgpd"


def _malformed(part: str) -> str:
    return f"{part!r} is not like gdpr=1m+2m or lgpd=15d"


def _refusal(raw: str) -> str:
    """Why ``parse_rules`` refuses ``raw``."""
    try:
        parse_rules(raw)
    except ValueError as refused:
        return str(refused)
    raise AssertionError(f"{raw!r} was accepted")


# ------------------------------------------------------------------------- the defaults


def test_the_default_rules_are_the_laws() -> None:
    assert {
        Jurisdiction.GDPR: ClockRule(months=1, extension_months=2, pause_while_waiting=True),
        Jurisdiction.UK_GDPR: ClockRule(months=1, extension_months=2, pause_while_waiting=True),
        Jurisdiction.CCPA: ClockRule(
            days=45, extension_days=45, acknowledge_business_days=10, pause_while_waiting=False
        ),
        Jurisdiction.LGPD: ClockRule(days=15, pause_while_waiting=False),
    } == RULES
    assert [j for j in Jurisdiction if RULES[j].extendable] == [
        Jurisdiction.GDPR,
        Jurisdiction.UK_GDPR,
        Jurisdiction.CCPA,
    ]


# ------------------------------------------------------------------- CDLM_DSR_CLOCKS


def test_month_units_are_months() -> None:
    assert parse_rules("gdpr=1m+2m") == {Jurisdiction.GDPR: RULES[Jurisdiction.GDPR]}
    two_months = parse_rules("gdpr=2m")[Jurisdiction.GDPR]
    assert two_months == ClockRule(months=2)
    assert not two_months.extendable
    clock = RequestClock(
        datetime(2026, 12, 31, 9, tzinfo=UTC), Jurisdiction.GDPR, custom_rule=two_months
    )
    assert clock.due_at(JAN_31) == datetime(2027, 2, 28, 9, tzinfo=UTC)
    assert not clock.can_extend(JAN_31)


def test_days_and_months_mix_across_base_and_extension() -> None:
    rules = parse_rules("ccpa=45d+1m,gdpr=10d+2m,lgpd=1m+15d")
    assert rules == {
        Jurisdiction.CCPA: ClockRule(
            days=45, extension_months=1, acknowledge_business_days=10, pause_while_waiting=False
        ),
        Jurisdiction.GDPR: ClockRule(days=10, extension_months=2),
        Jurisdiction.LGPD: ClockRule(months=1, extension_days=15, pause_while_waiting=False),
    }
    ccpa = RequestClock(JAN_31, Jurisdiction.CCPA, custom_rule=rules[Jurisdiction.CCPA])
    assert ccpa.due_at(JAN_31) == datetime(2026, 3, 17, 9, tzinfo=UTC)  # 45 days
    assert ccpa.extend().due_at(JAN_31) == datetime(2026, 4, 17, 9, tzinfo=UTC)  # + 1 month
    lgpd = RequestClock(JAN_31, Jurisdiction.LGPD, custom_rule=rules[Jurisdiction.LGPD])
    assert lgpd.due_at(JAN_31) == FEB_28
    assert lgpd.can_extend(FEB_28)
    assert lgpd.extend().due_at(JAN_31) == datetime(2026, 3, 15, 9, tzinfo=UTC)


def test_names_ignore_case_and_space_around_them_but_units_are_lower_case() -> None:
    rules = parse_rules(" GDPR = 2m , Uk_Gdpr=30d+60d ,, ccpa=30d\n")
    assert rules == {
        Jurisdiction.GDPR: ClockRule(months=2),
        Jurisdiction.UK_GDPR: ClockRule(days=30, extension_days=60),
        Jurisdiction.CCPA: ClockRule(
            days=30, acknowledge_business_days=10, pause_while_waiting=False
        ),
    }
    for part in ("gdpr=1M", "gdpr=30D", "gdpr=1m+2M", "gdpr=1m + 2m", "gdpr=1 m"):
        assert _refusal(part) == _malformed(part)


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("1d", ClockRule(days=1)),
        ("9d", ClockRule(days=9)),
        ("99d", ClockRule(days=99)),
        ("999d", ClockRule(days=999)),
        ("007d", ClockRule(days=7)),
        ("999m", ClockRule(months=999)),
        ("1m+999d", ClockRule(months=1, extension_days=999)),
        ("999d+999m", ClockRule(days=999, extension_months=999)),
    ],
)
def test_amounts_have_one_to_three_digits(spec: str, rule: ClockRule) -> None:
    assert parse_rules(f"gdpr={spec}") == {Jurisdiction.GDPR: rule}


@pytest.mark.parametrize("spec", ["1000d", "1000m", "0999d", "1m+1000d", "1000d+1m"])
def test_four_digits_are_refused(spec: str) -> None:
    assert _refusal(f"lgpd={spec}") == _malformed(f"lgpd={spec}")


@pytest.mark.parametrize("part", ["gdpr=0d", "gdpr=0m", "gdpr=000m", "ccpa=0d+45d"])
def test_a_clock_that_gives_no_time_is_refused(part: str) -> None:
    assert _refusal(part) == f"{part!r} gives no time to answer (at least 1d or 1m)"


def test_an_extension_of_nothing_is_no_extension() -> None:
    rule = parse_rules("ccpa=45d+0d")[Jurisdiction.CCPA]
    assert rule == ClockRule(days=45, acknowledge_business_days=10, pause_while_waiting=False)
    assert not RequestClock(JAN_31, Jurisdiction.CCPA, custom_rule=rule).can_extend(JAN_31)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("eu=1m", f"'eu' is not a jurisdiction ({KNOWN})"),
        (" EU =1m", f"'EU' is not a jurisdiction ({KNOWN})"),
        ("gdpr=1m,california=45d", f"'california' is not a jurisdiction ({KNOWN})"),
        ("=1m", f"'' is not a jurisdiction ({KNOWN})"),
        ("uk-gdpr=1m", f"'uk-gdpr' is not a jurisdiction ({KNOWN})"),
        ("gdpr:1m", f"'gdpr:1m' is not a jurisdiction ({KNOWN})"),
        ("1m+2m", f"'1m+2m' is not a jurisdiction ({KNOWN})"),
        ("eu=nonsense", f"'eu' is not a jurisdiction ({KNOWN})"),  # the name is checked first
    ],
)
def test_unknown_jurisdictions_are_refused(raw: str, message: str) -> None:
    assert _refusal(raw) == message


@pytest.mark.parametrize(
    ("raw", "part"),
    [
        ("gdpr", "gdpr"),
        ("gdpr=", "gdpr="),
        ("gdpr=1", "gdpr=1"),
        ("gdpr=m", "gdpr=m"),
        ("gdpr=1w", "gdpr=1w"),
        ("gdpr=1y", "gdpr=1y"),
        ("gdpr=-1d", "gdpr=-1d"),
        ("gdpr=1.5m", "gdpr=1.5m"),
        ("gdpr=1m2m", "gdpr=1m2m"),
        ("gdpr=1m+", "gdpr=1m+"),
        ("gdpr=+2m", "gdpr=+2m"),
        ("gdpr=1m+2m+3m", "gdpr=1m+2m+3m"),
        ("gdpr==1m", "gdpr==1m"),
        ("ccpa=45d, gdpr=1m;lgpd=15d", "gdpr=1m;lgpd=15d"),  # the part is shown stripped
    ],
)
def test_malformed_specs_are_refused(raw: str, part: str) -> None:
    assert _refusal(raw) == _malformed(part)


@pytest.mark.parametrize("raw", ["", " ", ",", " , ,, "])
def test_no_override_is_an_empty_table(raw: str) -> None:
    assert parse_rules(raw) == {}


def test_an_override_keeps_the_jurisdictions_acknowledgement_and_pause_rule() -> None:
    rules = parse_rules("gdpr=30d,uk_gdpr=2m+1m,ccpa=1m+30d,lgpd=20d+5d")
    for jurisdiction, rule in rules.items():
        base = RULES[jurisdiction]
        assert rule.acknowledge_business_days == base.acknowledge_business_days, jurisdiction
        assert rule.pause_while_waiting is base.pause_while_waiting, jurisdiction
    assert rules[Jurisdiction.CCPA].acknowledge_business_days == 10
    assert [j for j, r in rules.items() if r.pause_while_waiting] == [
        Jurisdiction.GDPR,
        Jurisdiction.UK_GDPR,
    ]
    # The acknowledgement duty survives a new length: 10 business days after receipt.
    friday = datetime(2026, 11, 20, 12, tzinfo=UTC)
    ccpa = RequestClock(friday, Jurisdiction.CCPA, custom_rule=rules[Jurisdiction.CCPA])
    assert ccpa.acknowledge_by() == datetime(2026, 12, 4, 12, tzinfo=UTC)
    assert ccpa.pause(friday + DAY) is ccpa


def _settings_with(clocks: str | None) -> dict[Jurisdiction, ClockRule]:
    environ = {"CDLM_DATA_DIR": "/nonexistent/cdlm", "CDLM_TOKEN_SECRET": "s" * 32}
    if clocks is not None:
        environ["CDLM_DSR_CLOCKS"] = clocks
    return load_settings(environ).dsr_clocks


def test_the_setting_holds_only_the_jurisdictions_it_names() -> None:
    """Settings keep the overrides alone; a request under a jurisdiction not named gets the
    default rule when it is received (``settings.dsr_clocks.get(j, RULES[j])``)."""
    assert _settings_with(None) == {}
    assert _settings_with("") == {}
    clocks = _settings_with("ccpa=30d")
    assert clocks == {
        Jurisdiction.CCPA: ClockRule(
            days=30, acknowledge_business_days=10, pause_while_waiting=False
        )
    }
    assert {j: clocks.get(j, RULES[j]) for j in Jurisdiction} == {
        **RULES,
        Jurisdiction.CCPA: clocks[Jurisdiction.CCPA],
    }


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("eu=1m", f"'eu' is not a jurisdiction ({KNOWN}) (got 'eu=1m')"),
        ("gdpr=1000d", "'gdpr=1000d' is not like gdpr=1m+2m or lgpd=15d (got 'gdpr=1000d')"),
        ("gdpr=0d", "'gdpr=0d' gives no time to answer (at least 1d or 1m) (got 'gdpr=0d')"),
    ],
)
def test_a_bad_setting_stops_the_start_naming_the_variable(raw: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _settings_with(raw)
    assert refused.value.variable == "CDLM_DSR_CLOCKS"
    assert str(refused.value) == f"CDLM_DSR_CLOCKS: {problem}"


# ------------------------------------------------------------------ stored rules


@pytest.mark.parametrize(
    "rule",
    [
        *RULES.values(),
        ClockRule(months=2, extension_days=10, pause_while_waiting=False),
        ClockRule(days=1, acknowledge_business_days=3, pause_while_waiting=True),
    ],
)
def test_a_rule_survives_its_json_snapshot(rule: ClockRule) -> None:
    stored = json.loads(json.dumps(rule.to_json()))
    assert ClockRule.from_json(stored) == rule
    assert stored["pause_while_waiting"] is rule.pause_while_waiting


def test_the_snapshot_names_every_part_of_the_rule() -> None:
    assert RULES[Jurisdiction.CCPA].to_json() == {
        "months": 0,
        "days": 45,
        "extension_months": 0,
        "extension_days": 45,
        "acknowledge_business_days": 10,
        "pause_while_waiting": False,
    }
    assert RULES[Jurisdiction.GDPR].to_json() == {
        "months": 1,
        "days": 0,
        "extension_months": 2,
        "extension_days": 0,
        "acknowledge_business_days": None,
        "pause_while_waiting": True,
    }


def test_a_clock_follows_its_own_rule_over_the_jurisdictions() -> None:
    rule = ClockRule(days=10, pause_while_waiting=False)
    clock = RequestClock(JAN_31, Jurisdiction.GDPR, custom_rule=rule)
    assert clock.rule is rule
    assert clock.due_at(JAN_31) == JAN_31 + 10 * DAY
    assert clock.pause(JAN_31 + DAY) is clock
    assert not clock.can_extend(JAN_31)
    assert RequestClock(JAN_31, Jurisdiction.GDPR).rule is RULES[Jurisdiction.GDPR]


# ------------------------------------------------------------------- month arithmetic


def test_one_month_ends_on_the_same_day_or_the_months_last_day() -> None:
    assert add_months(datetime(2026, 3, 15, tzinfo=UTC), 1) == datetime(2026, 4, 15, tzinfo=UTC)
    assert add_months(JAN_31, 1) == datetime(2026, 2, 28, 9, tzinfo=UTC)
    assert add_months(datetime(2028, 1, 31, tzinfo=UTC), 1) == datetime(2028, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 30, tzinfo=UTC), 3) == datetime(2027, 2, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (
            datetime(2026, 12, 15, 23, 59, 59, 999_999),
            1,
            datetime(2027, 1, 15, 23, 59, 59, 999_999),
        ),
        (datetime(2026, 12, 31), 1, datetime(2027, 1, 31)),
        (datetime(2026, 12, 31), 2, datetime(2027, 2, 28)),
        (datetime(2027, 12, 31), 2, datetime(2028, 2, 29)),
        (datetime(2026, 11, 30), 2, datetime(2027, 1, 30)),
        (datetime(2026, 10, 31), 1, datetime(2026, 11, 30)),
        (datetime(2026, 1, 31), 12, datetime(2027, 1, 31)),
        (datetime(2026, 1, 31), 25, datetime(2028, 2, 29)),
        (datetime(2028, 2, 29), 12, datetime(2029, 2, 28)),
        (datetime(2028, 2, 29), 48, datetime(2032, 2, 29)),
        (datetime(2028, 2, 29), 1, datetime(2028, 3, 29)),
        (datetime(2000, 1, 31), 1, datetime(2000, 2, 29)),  # divisible by 400: leap
        (datetime(2100, 1, 31), 1, datetime(2100, 2, 28)),  # divisible by 100: not leap
        (datetime(2026, 5, 31), 0, datetime(2026, 5, 31)),
    ],
)
def test_months_across_year_ends_and_leap_years(
    start: datetime, months: int, end: datetime
) -> None:
    assert add_months(start.replace(tzinfo=UTC), months) == end.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "days", "end"),
    [
        (datetime(2026, 11, 20, 12), 1, datetime(2026, 11, 23, 12)),  # Friday -> Monday
        (datetime(2026, 11, 20, 12), 5, datetime(2026, 11, 27, 12)),  # Friday -> Friday
        (datetime(2026, 11, 21, 12), 1, datetime(2026, 11, 23, 12)),  # Saturday -> Monday
        (datetime(2026, 11, 22, 12), 1, datetime(2026, 11, 23, 12)),  # Sunday -> Monday
        (datetime(2026, 11, 21, 12), 0, datetime(2026, 11, 21, 12)),  # none: the same instant
        (datetime(2026, 11, 19, 8), 2, datetime(2026, 11, 23, 8)),  # Thursday -> Monday
        (datetime(2026, 11, 16, 0), 10, datetime(2026, 11, 30, 0)),  # Monday -> Monday
        (datetime(2026, 12, 31, 12), 1, datetime(2027, 1, 1, 12)),  # holidays are not skipped
    ],
)
def test_business_days_skip_weekends(start: datetime, days: int, end: datetime) -> None:
    assert add_business_days(start.replace(tzinfo=UTC), days) == end.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("received", "acknowledge_by"),
    [
        (datetime(2026, 11, 20, 12), datetime(2026, 12, 4, 12)),  # Friday
        (datetime(2026, 11, 21, 12), datetime(2026, 12, 4, 12)),  # Saturday
        (datetime(2026, 11, 22, 12), datetime(2026, 12, 4, 12)),  # Sunday
        (datetime(2026, 11, 23, 12), datetime(2026, 12, 7, 12)),  # Monday
    ],
)
def test_ccpa_receipt_is_confirmed_within_ten_business_days(
    received: datetime, acknowledge_by: datetime
) -> None:
    clock = RequestClock(received.replace(tzinfo=UTC), Jurisdiction.CCPA)
    assert clock.acknowledge_by() == acknowledge_by.replace(tzinfo=UTC)
    # Counted from receipt: neither the extension nor the due date moves it.
    assert clock.extend().acknowledge_by() == acknowledge_by.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "jurisdiction", [Jurisdiction.GDPR, Jurisdiction.UK_GDPR, Jurisdiction.LGPD]
)
def test_only_ccpa_asks_for_a_confirmation_of_receipt(jurisdiction: Jurisdiction) -> None:
    assert RequestClock(JAN_31, jurisdiction).acknowledge_by() is None


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=0, max_value=36),
)
def test_adding_months_never_goes_back_and_keeps_the_time(moment: datetime, months: int) -> None:
    later = add_months(moment, months)
    assert later >= moment
    assert later.time() == moment.time()
    assert later.tzinfo is moment.tzinfo
    assert (later.year - moment.year) * 12 + later.month - moment.month == months
    assert later.day == moment.day or (later.day < moment.day and (later + DAY).day == 1)


# ------------------------------------------------------------- due dates, extensions


@pytest.mark.parametrize(
    ("jurisdiction", "due", "extended"),
    [
        (Jurisdiction.GDPR, FEB_28, datetime(2026, 4, 28, 9, tzinfo=UTC)),
        (Jurisdiction.UK_GDPR, FEB_28, datetime(2026, 4, 28, 9, tzinfo=UTC)),
        (
            Jurisdiction.CCPA,
            datetime(2026, 3, 17, 9, tzinfo=UTC),
            datetime(2026, 5, 1, 9, tzinfo=UTC),
        ),
        (Jurisdiction.LGPD, datetime(2026, 2, 15, 9, tzinfo=UTC), None),
    ],
)
def test_due_dates_and_extensions(
    jurisdiction: Jurisdiction, due: datetime, extended: datetime | None
) -> None:
    clock = RequestClock(JAN_31, jurisdiction)
    assert clock.due_at(JAN_31) == due
    if extended is None:
        assert not clock.can_extend(JAN_31)
    else:
        assert clock.can_extend(JAN_31)
        longer = clock.extend()
        assert longer.due_at(JAN_31) == extended
        assert not longer.can_extend(JAN_31)
    assert not clock.can_extend(due + timedelta(seconds=1))


@pytest.mark.parametrize(
    ("received", "due", "extended"),
    [
        # The two further months run from the end of the first (28 February, not 31 January).
        (datetime(2026, 1, 31, 9), datetime(2026, 2, 28, 9), datetime(2026, 4, 28, 9)),
        (datetime(2028, 1, 31, 9), datetime(2028, 2, 29, 9), datetime(2028, 4, 29, 9)),
        (datetime(2026, 12, 31, 9), datetime(2027, 1, 31, 9), datetime(2027, 3, 31, 9)),
        (datetime(2027, 11, 30, 9), datetime(2027, 12, 30, 9), datetime(2028, 2, 29, 9)),
        (datetime(2026, 10, 31, 9), datetime(2026, 11, 30, 9), datetime(2027, 1, 30, 9)),
    ],
)
def test_gdpr_extension_across_month_ends(
    received: datetime, due: datetime, extended: datetime
) -> None:
    clock = RequestClock(received.replace(tzinfo=UTC), Jurisdiction.GDPR)
    assert clock.due_at(clock.received_at) == due.replace(tzinfo=UTC)
    assert clock.extend().due_at(clock.received_at) == extended.replace(tzinfo=UTC)


def test_ccpa_extension_is_45_more_days_across_the_year_end() -> None:
    clock = RequestClock(datetime(2026, 11, 20, 12, tzinfo=UTC), Jurisdiction.CCPA)
    assert clock.due_at(clock.received_at) == datetime(2027, 1, 4, 12, tzinfo=UTC)
    assert clock.extend().due_at(clock.received_at) == datetime(2027, 2, 18, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("jurisdiction", "due"),
    [
        (Jurisdiction.GDPR, FEB_28),
        (Jurisdiction.UK_GDPR, FEB_28),
        (Jurisdiction.CCPA, JAN_31 + 45 * DAY),
    ],
)
def test_an_extension_is_possible_up_to_the_original_due_instant_and_once(
    jurisdiction: Jurisdiction, due: datetime
) -> None:
    clock = RequestClock(JAN_31, jurisdiction)
    assert clock.can_extend(JAN_31)
    assert clock.can_extend(due - SECOND)
    assert clock.can_extend(due)
    assert not clock.can_extend(due + MICROSECOND)
    assert not clock.can_extend(due + SECOND)
    extended = clock.extend()
    assert extended.extended
    assert not extended.can_extend(JAN_31)
    assert not extended.can_extend(due)
    assert extended.extend() == extended  # one extension, however often it is asked for


def test_lgpd_is_never_extended() -> None:
    clock = RequestClock(JAN_31, Jurisdiction.LGPD)
    assert not clock.rule.extendable
    for moment in (JAN_31 - DAY, JAN_31, JAN_31 + 15 * DAY, JAN_31 + 16 * DAY):
        assert not clock.can_extend(moment)


def test_time_spent_paused_also_moves_the_last_moment_to_extend() -> None:
    clock = RequestClock(JAN_31, Jurisdiction.GDPR)
    waited = clock.pause(JAN_31 + DAY).resume(JAN_31 + 4 * DAY)
    assert waited.can_extend(FEB_28 + 3 * DAY)
    assert not waited.can_extend(FEB_28 + 3 * DAY + SECOND)
    # Extended, the pauses still count: two months after 28 February, then three days.
    assert waited.extend().due_at(FEB_28) == datetime(2026, 5, 1, 9, tzinfo=UTC)
    # While paused, the original due date has not passed, however late it is.
    still = clock.pause(JAN_31 + DAY)
    assert still.can_extend(FEB_28 + 100 * DAY)


# ------------------------------------------------------------------------- pauses


def test_waiting_on_the_requester_stops_a_clock_that_may_pause() -> None:
    clock = RequestClock(JAN_31, Jurisdiction.GDPR, custom_rule=ClockRule(days=15))
    paused = clock.pause(JAN_31 + timedelta(days=2))
    assert paused.paused()
    assert paused.pause(JAN_31 + timedelta(days=3)) == paused
    later = JAN_31 + timedelta(days=40)
    assert not paused.overdue(later)  # a paused request is never overdue
    resumed = paused.resume(JAN_31 + timedelta(days=7))
    assert resumed.resume(JAN_31 + timedelta(days=9)) == resumed
    assert resumed.due_at(later) == JAN_31 + timedelta(days=15 + 5)
    assert resumed.days_left(JAN_31 + timedelta(days=18)) == 2
    assert resumed.overdue(JAN_31 + timedelta(days=20, seconds=1))
    assert resumed.days_left(JAN_31 + timedelta(days=22)) == -2


def test_separate_pauses_add_up() -> None:
    clock = RequestClock(JAN_31, Jurisdiction.GDPR)
    once = clock.pause(JAN_31 + DAY).resume(JAN_31 + 3 * DAY)  # 2 days
    twice = once.pause(JAN_31 + 5 * DAY).resume(JAN_31 + 6 * DAY)  # 1 day
    thrice = twice.pause(JAN_31 + 10 * DAY).resume(JAN_31 + 10 * DAY + timedelta(hours=12))
    later = JAN_31 + 90 * DAY
    assert once.due_at(later) == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert twice.due_at(later) == datetime(2026, 3, 3, 9, tzinfo=UTC)
    assert thrice.due_at(later) == datetime(2026, 3, 3, 21, tzinfo=UTC)
    assert thrice.pauses == (
        Pause(JAN_31 + DAY, JAN_31 + 3 * DAY),
        Pause(JAN_31 + 5 * DAY, JAN_31 + 6 * DAY),
        Pause(JAN_31 + 10 * DAY, JAN_31 + 10 * DAY + timedelta(hours=12)),
    )
    assert not thrice.paused()
    assert not thrice.overdue(datetime(2026, 3, 3, 21, tzinfo=UTC))
    assert thrice.overdue(datetime(2026, 3, 3, 21, tzinfo=UTC) + SECOND)


def test_an_open_pause_keeps_moving_the_due_date_with_now() -> None:
    clock = RequestClock(JAN_31, Jurisdiction.GDPR)
    open_pause = clock.pause(JAN_31 + 2 * DAY)
    assert open_pause.due_at(JAN_31 + 2 * DAY) == FEB_28
    assert open_pause.due_at(JAN_31 + 5 * DAY) == FEB_28 + 3 * DAY
    assert open_pause.due_at(JAN_31 + 9 * DAY + SECOND) == FEB_28 + 7 * DAY + SECOND
    # The days left stand still while the clock is stopped.
    assert open_pause.days_left(JAN_31 + 2 * DAY) == 26
    assert open_pause.days_left(JAN_31 + 60 * DAY) == 26
    # A closed pause and an open one: both count.
    again = open_pause.resume(JAN_31 + 4 * DAY).pause(JAN_31 + 10 * DAY)
    assert again.paused()
    assert again.due_at(JAN_31 + 10 * DAY) == FEB_28 + 2 * DAY
    assert again.due_at(JAN_31 + 15 * DAY) == FEB_28 + 7 * DAY


def test_resuming_before_the_pause_started_counts_nothing() -> None:
    paused = RequestClock(JAN_31, Jurisdiction.GDPR).pause(JAN_31 + 5 * DAY)
    resumed = paused.resume(JAN_31 + 3 * DAY)
    assert resumed.pauses == (Pause(JAN_31 + 5 * DAY, JAN_31 + 5 * DAY),)
    assert not resumed.paused()
    assert resumed.due_at(JAN_31 + 30 * DAY) == FEB_28
    assert paused.resume(JAN_31 + 5 * DAY).due_at(JAN_31 + 30 * DAY) == FEB_28


def test_pausing_a_paused_clock_and_resuming_a_running_one_change_nothing() -> None:
    running = RequestClock(JAN_31, Jurisdiction.GDPR)
    assert running.resume(JAN_31 + DAY) is running
    paused = running.pause(JAN_31 + DAY)
    assert paused.pause(JAN_31 + 2 * DAY) is paused
    assert paused.pauses == (Pause(JAN_31 + DAY),)
    resumed = paused.resume(JAN_31 + 3 * DAY)
    assert resumed.resume(JAN_31 + 4 * DAY) is resumed
    assert resumed.due_at(JAN_31 + 10 * DAY) == FEB_28 + 2 * DAY


@pytest.mark.parametrize(
    "clock",
    [
        RequestClock(JAN_31, Jurisdiction.CCPA),
        RequestClock(JAN_31, Jurisdiction.LGPD),
        RequestClock(
            JAN_31, Jurisdiction.GDPR, custom_rule=ClockRule(days=15, pause_while_waiting=False)
        ),
    ],
    ids=["ccpa", "lgpd", "gdpr-configured-not-to-pause"],
)
def test_a_clock_that_runs_from_receipt_never_pauses(clock: RequestClock) -> None:
    due = clock.due_at(JAN_31)
    current = clock
    for start, end in ((1, 3), (5, 6), (10, 12)):
        current = current.pause(JAN_31 + start * DAY)
        assert current is clock
        assert not current.paused()
        current = current.resume(JAN_31 + end * DAY)
        assert current is clock
    assert current.pauses == ()
    assert current.due_at(JAN_31 + 30 * DAY) == due
    assert not current.overdue(due)
    assert current.overdue(due + SECOND)
    assert current.days_left(due - 10 * DAY) == 10


# ----------------------------------------------------------- overdue and days left


def test_due_is_not_overdue_one_instant_later_is() -> None:
    clock = RequestClock(JAN_31, Jurisdiction.LGPD)
    due = JAN_31 + 15 * DAY
    assert clock.due_at(due) == due
    assert not clock.overdue(due - MICROSECOND)
    assert not clock.overdue(due)
    assert clock.overdue(due + MICROSECOND)
    assert clock.overdue(due + SECOND)


def test_a_paused_clock_is_never_overdue() -> None:
    clock = RequestClock(JAN_31, Jurisdiction.GDPR)
    # Paused before the due date, looked at long after it.
    early = clock.pause(JAN_31 + DAY)
    assert not early.overdue(FEB_28 + 1000 * DAY)
    # Paused once already late: not overdue while paused, late again once resumed.
    late = clock.pause(FEB_28 + DAY)
    assert not late.overdue(FEB_28 + 5 * DAY)
    assert late.days_left(FEB_28 + 5 * DAY) == -1
    resumed = late.resume(FEB_28 + 5 * DAY)
    assert resumed.due_at(FEB_28 + 5 * DAY) == FEB_28 + 4 * DAY
    assert resumed.overdue(FEB_28 + 5 * DAY)


@pytest.mark.parametrize(
    ("before_due", "days_left"),
    [
        (3 * DAY, 3),
        (3 * DAY - SECOND, 3),
        (3 * DAY + SECOND, 4),
        (DAY, 1),
        (DAY - MICROSECOND, 1),
        (DAY + MICROSECOND, 2),
        (SECOND, 1),
        (MICROSECOND, 1),
        (timedelta(0), 0),
        (-MICROSECOND, -1),
        (-SECOND, -1),
        (-DAY + SECOND, -1),
        (-DAY, -1),
        (-DAY - SECOND, -2),
        (-3 * DAY + SECOND, -3),
        (-3 * DAY, -3),
        (-3 * DAY - SECOND, -4),
    ],
)
def test_days_left_count_a_started_day_as_a_whole_one(
    before_due: timedelta, days_left: int
) -> None:
    """Away from zero on both sides: 0 only at the due instant itself, 1 up to it, -1 from the
    first moment overdue (so a negative count and ``overdue`` always agree)."""
    clock = RequestClock(JAN_31, Jurisdiction.CCPA)
    due = JAN_31 + 45 * DAY
    assert clock.days_left(due - before_due) == days_left
    assert clock.overdue(due - before_due) is (days_left < 0)


@given(st.timedeltas(min_value=timedelta(days=-400), max_value=timedelta(days=400)))
def test_days_left_are_negative_exactly_when_overdue(offset: timedelta) -> None:
    clock = RequestClock(JAN_31, Jurisdiction.GDPR).pause(JAN_31 + DAY).resume(JAN_31 + 2 * DAY)
    now = FEB_28 + DAY + offset
    left = clock.days_left(now)
    assert (left < 0) is clock.overdue(now)
    assert (left == 0) is (now == clock.due_at(now))
    remaining = (clock.due_at(now) - now) / DAY
    if left >= 0:
        assert left - 1 < remaining <= left
    else:
        assert left <= remaining < left + 1


def test_no_business_days_after_a_moment_is_that_moment() -> None:
    friday = datetime(2026, 1, 30, 17, tzinfo=UTC)
    assert add_business_days(friday, 0) == friday
    assert add_business_days(friday, -3) == friday  # never goes back


def test_rules_pauses_and_clocks_are_immutable_values() -> None:
    rule = RULES[Jurisdiction.GDPR]
    pause = Pause(JAN_31)
    clock = RequestClock(JAN_31, Jurisdiction.GDPR)
    for value, attribute in ((rule, "months"), (pause, "ended_at"), (clock, "extended")):
        with pytest.raises(FrozenInstanceError):
            setattr(value, attribute, None)
    assert len({rule, RULES[Jurisdiction.GDPR]}) == 1  # hashable, as values are
