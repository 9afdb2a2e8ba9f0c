"""A segment's rule as frozen data: the condition tree, its operators and its validation.

A definition is one condition; a condition is a group (``all``: every one holds, ``any``: at
least one holds, ``not``: it does not hold) or a leaf on what cdlm keeps in clear:

- ``attribute``: a text analysis attribute (``attributes.country``...) equals a value or is
  one of several;
- ``score``: a numeric analysis attribute (``rfm.r``, ``churnRisk``...) equals a value, is
  one of several, or lies in a range (bounds included);
- ``lifecycleStage``: the customer's stage is one of several;
- ``qualityScore``: the profile's quality score lies in a range;
- ``event``: the customer did (or did not) do an event of a type within the last N days;
- ``eventCount``: the number of events of a type within N days is at least / at most k;
- ``eventAmount``: the total amount of events of a type in one currency within N days is at
  least / at most x (amounts are summed in the currency named, never converted);
- ``consent``: the customer may be processed for a purpose, answered by the consent service's
  one check after the SQL. It says who may be used at all, so it is allowed only where it
  restricts the whole segment: as the definition itself or a direct member of its ``all``.

The definition travels as plain JSON (the API's camelCase names, as a client sends them):
:func:`parse` turns it into these classes and reports every problem at once, each with its
path below ``root`` (``input.definition.all.2.score.atLeast``); :func:`to_json` writes the
normalised form stored with the segment. Nothing here reads the database: whether event types
and purposes exist is checked by the service (:func:`references` lists them with their paths).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cdlm.core.errors import ErrorCode, FieldIssue
from cdlm.core.vocabulary import LifecycleStage
from cdlm.customers.attributes import ATTRIBUTES, AttributeSource

#: Text attributes (compared by value), API path below ``Customer.analytics`` → column.
TEXT_ATTRIBUTES: Mapping[str, str] = {
    a.api_path: a.column for a in ATTRIBUTES if a.source is not AttributeSource.EVENTS
}
#: Numeric attributes (scores: compared by value or range), API path → column.
SCORE_ATTRIBUTES: Mapping[str, str] = {
    a.api_path: a.column for a in ATTRIBUTES if a.source is AttributeSource.EVENTS
}
#: Same shape as stored event types (:data:`cdlm.customers.events.EVENT_TYPE`).
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
PURPOSE_CODE = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")  #: as consent.service.CODE
MAX_DAYS = 3650
MAX_CONDITIONS = 100
MAX_DEPTH = 8
MAX_VALUES = 100
MAX_TEXT = 64
AMOUNT_LIMIT = Decimal("1000000000000")

#: The condition kinds, as the API names them (exactly one per condition).
GROUPS = ("all", "any", "not")
LEAVES = (
    "attribute",
    "score",
    "lifecycleStage",
    "qualityScore",
    "event",
    "eventCount",
    "eventAmount",
    "consent",
)
KINDS = GROUPS + LEAVES


@dataclass(frozen=True)
class AllOf:
    """Every condition holds."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one condition holds."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class NotThis:
    """The condition does not hold."""

    condition: Condition


@dataclass(frozen=True)
class TextIs:
    """A text attribute is one of ``values`` (``equals`` is one value)."""

    attribute: str  #: API path below Customer.analytics
    values: tuple[str, ...]
    single: bool = False  #: written as ``equals``

    @property
    def column(self) -> str:
        return TEXT_ATTRIBUTES[self.attribute]


@dataclass(frozen=True)
class ScoreIs:
    """A numeric attribute is one of ``values``, or between ``at_least`` and ``at_most``."""

    attribute: str
    values: tuple[float, ...] | None = None
    at_least: float | None = None
    at_most: float | None = None
    single: bool = False

    @property
    def column(self) -> str:
        return SCORE_ATTRIBUTES[self.attribute]


@dataclass(frozen=True)
class StageIs:
    """The lifecycle stage is one of ``stages``."""

    stages: tuple[LifecycleStage, ...]


@dataclass(frozen=True)
class QualityBetween:
    """The quality score (0 to 1) is between the bounds given."""

    at_least: float | None
    at_most: float | None


@dataclass(frozen=True)
class DidEvent:
    """An event of ``type`` happened (``did``) or not within the last ``within_days`` days."""

    type: str
    within_days: int
    did: bool = True


@dataclass(frozen=True)
class EventCount:
    """The number of events of ``type`` within ``within_days`` days is in the bounds."""

    type: str
    within_days: int
    at_least: int | None
    at_most: int | None


@dataclass(frozen=True)
class EventAmount:
    """The total amount of events of ``type`` in ``currency`` within the days is in bounds
    (no event counts as 0)."""

    type: str
    within_days: int
    currency: str
    at_least: Decimal | None
    at_most: Decimal | None


@dataclass(frozen=True)
class MayProcess:
    """The customer may be processed for ``purpose`` (the consent service's one check)."""

    purpose: str


Condition = (
    AllOf
    | AnyOf
    | NotThis
    | TextIs
    | ScoreIs
    | StageIs
    | QualityBetween
    | DidEvent
    | EventCount
    | EventAmount
    | MayProcess
)


@dataclass(frozen=True)
class Definition:
    """A segment's rule: one condition (usually an ``all`` group)."""

    condition: Condition

    def purposes(self) -> tuple[str, ...]:
        """The purposes members must be processable for (applied after the SQL)."""
        found = [c.purpose for c in _top_level(self.condition) if isinstance(c, MayProcess)]
        return tuple(dict.fromkeys(found))


def _top_level(condition: Condition) -> list[Condition]:
    return list(condition.conditions) if isinstance(condition, AllOf) else [condition]


# --------------------------------------------------------------------------- parsing


class _Parser:
    def __init__(self) -> None:
        self.issues: list[FieldIssue] = []
        self.count = 0

    def problem(self, path: str, code: ErrorCode, message: str) -> None:
        self.issues.append(FieldIssue(path, code, message))

    def condition(self, raw: Any, path: str, depth: int, top: bool) -> Condition | None:
        self.count += 1
        if self.count == MAX_CONDITIONS + 1:
            self.problem(
                path,
                ErrorCode.TOO_MANY_ITEMS,
                f"A definition has at most {MAX_CONDITIONS} conditions.",
            )
        if depth > MAX_DEPTH:
            self.problem(path, ErrorCode.TOO_MANY_ITEMS, f"Groups nest at most {MAX_DEPTH} deep.")
            return None
        if not isinstance(raw, Mapping):
            self.problem(path, ErrorCode.INVALID_FORMAT, "A condition is an object.")
            return None
        given = [k for k in KINDS if raw.get(k) is not None]
        unknown = sorted(set(raw) - set(KINDS))
        for key in unknown:
            self.problem(f"{path}.{key}", ErrorCode.VALIDATION, "Not a kind of condition.")
        if len(given) != 1:
            self.problem(
                path,
                ErrorCode.REQUIRED if not given else ErrorCode.VALIDATION,
                "Give exactly one kind of condition: " + ", ".join(KINDS) + ".",
            )
            return None
        kind = given[0]
        value = raw[kind]
        here = f"{path}.{kind}"
        if kind in ("all", "any"):
            return self.group(kind, value, here, depth, top)
        if kind == "not":
            inner = self.condition(value, here, depth + 1, top=False)
            return NotThis(inner) if inner is not None else None
        if not isinstance(value, Mapping):
            self.problem(here, ErrorCode.INVALID_FORMAT, "A condition is an object.")
            return None
        if kind == "consent":
            return self.consent(value, here, top)
        leaf: Condition | None = getattr(self, _LEAF_METHODS[kind])(value, here)
        return leaf

    def group(self, kind: str, value: Any, path: str, depth: int, top: bool) -> Condition | None:
        if not isinstance(value, Sequence) or isinstance(value, str) or not value:
            self.problem(path, ErrorCode.REQUIRED, "A group holds at least one condition.")
            return None
        members = [
            # Consent is the whole definition or a member of its top-level `all`: never
            # deeper, where the SQL cannot apply it (it is checked after the statement).
            self.condition(item, f"{path}.{i}", depth + 1, top=top and kind == "all" and depth == 1)
            for i, item in enumerate(value)
        ]
        kept = tuple(m for m in members if m is not None)
        if len(kept) != len(members):
            return None
        return AllOf(kept) if kind == "all" else AnyOf(kept)

    # -- leaves

    def _text(self, value: Any, path: str, *, pattern: re.Pattern[str] | None = None) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.problem(path, ErrorCode.REQUIRED, "Give a value.")
            return None
        if len(value) > MAX_TEXT:
            self.problem(path, ErrorCode.TOO_LONG, f"At most {MAX_TEXT} characters.")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            return None
        return value

    def _one_operator(self, raw: Mapping[str, Any], path: str, operators: Sequence[str]) -> bool:
        given = [o for o in operators if raw.get(o) is not None]
        ranged = raw.get("atLeast") is not None or raw.get("atMost") is not None
        count = len([o for o in given if o not in ("atLeast", "atMost")]) + (1 if ranged else 0)
        if count != 1:
            names = ", ".join(o for o in operators if o not in ("atLeast", "atMost"))
            rng = " or a range (atLeast and/or atMost)" if "atLeast" in operators else ""
            self.problem(path, ErrorCode.VALIDATION, f"Give exactly one of {names}{rng}.")
            return False
        return True

    def _values(self, raw: Any, path: str) -> list[Any] | None:
        if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
            self.problem(path, ErrorCode.REQUIRED, "Give at least one value.")
            return None
        if len(raw) > MAX_VALUES:
            self.problem(path, ErrorCode.TOO_MANY_ITEMS, f"At most {MAX_VALUES} values.")
            return None
        return list(raw)

    def attribute(self, raw: Mapping[str, Any], path: str) -> Condition | None:
        given = raw.get("attribute")
        name = given if isinstance(given, str) else ""
        ok = True
        if name not in TEXT_ATTRIBUTES:
            hint = " (it is a score: use a score condition)" if name in SCORE_ATTRIBUTES else ""
            self.problem(
                f"{path}.attribute",
                ErrorCode.UNKNOWN_CODE,
                f"Not a text analysis attribute{hint}; known: {', '.join(TEXT_ATTRIBUTES)}.",
            )
            ok = False
        if not self._one_operator(raw, path, ("equals", "in")):
            return None
        if raw.get("equals") is not None:
            value = self._text(raw["equals"], f"{path}.equals")
            return TextIs(name, (value,), single=True) if ok and value is not None else None
        values = self._values(raw["in"], f"{path}.in")
        if values is None:
            return None
        texts = [self._text(v, f"{path}.in.{i}") for i, v in enumerate(values)]
        if not ok or any(t is None for t in texts):
            return None
        return TextIs(name, tuple(dict.fromkeys(t for t in texts if t is not None)))

    def _number(self, value: Any, path: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(path, ErrorCode.INVALID_FORMAT, "Give a number.")
            return None
        if not math.isfinite(value):
            self.problem(path, ErrorCode.INVALID_FORMAT, "Give a finite number.")
            return None
        return float(value)

    def _range(self, raw: Mapping[str, Any], path: str) -> tuple[float | None, float | None, bool]:
        low = raw.get("atLeast")
        high = raw.get("atMost")
        low_n = self._number(low, f"{path}.atLeast") if low is not None else None
        high_n = self._number(high, f"{path}.atMost") if high is not None else None
        ok = (low is None or low_n is not None) and (high is None or high_n is not None)
        if ok and low_n is not None and high_n is not None and low_n > high_n:
            self.problem(f"{path}.atMost", ErrorCode.VALIDATION, "atMost is below atLeast.")
            ok = False
        return low_n, high_n, ok

    def score(self, raw: Mapping[str, Any], path: str) -> Condition | None:
        given = raw.get("attribute")
        name = given if isinstance(given, str) else ""
        ok = True
        if name not in SCORE_ATTRIBUTES:
            hint = " (it is text: use an attribute condition)" if name in TEXT_ATTRIBUTES else ""
            self.problem(
                f"{path}.attribute",
                ErrorCode.UNKNOWN_CODE,
                f"Not a numeric analysis attribute{hint}; known: {', '.join(SCORE_ATTRIBUTES)}.",
            )
            ok = False
        if not self._one_operator(raw, path, ("equals", "in", "atLeast", "atMost")):
            return None
        if raw.get("equals") is not None:
            number = self._number(raw["equals"], f"{path}.equals")
            if not ok or number is None:
                return None
            return ScoreIs(name, values=(number,), single=True)
        if raw.get("in") is not None:
            values = self._values(raw["in"], f"{path}.in")
            if values is None:
                return None
            numbers = [self._number(v, f"{path}.in.{i}") for i, v in enumerate(values)]
            if not ok or any(n is None for n in numbers):
                return None
            return ScoreIs(name, values=tuple(dict.fromkeys(n for n in numbers if n is not None)))
        low, high, in_range = self._range(raw, path)
        return ScoreIs(name, at_least=low, at_most=high) if ok and in_range else None

    def lifecycle_stage(self, raw: Mapping[str, Any], path: str) -> Condition | None:
        values = self._values(raw.get("in"), f"{path}.in")
        if values is None:
            return None
        stages: list[LifecycleStage] = []
        for i, value in enumerate(values):
            try:
                stages.append(LifecycleStage(value))
            except ValueError:
                self.problem(f"{path}.in.{i}", ErrorCode.UNKNOWN_CODE, "Not a lifecycle stage.")
        if len(stages) != len(values):
            return None
        return StageIs(tuple(dict.fromkeys(stages)))

    def quality_score(self, raw: Mapping[str, Any], path: str) -> Condition | None:
        if raw.get("atLeast") is None and raw.get("atMost") is None:
            self.problem(path, ErrorCode.REQUIRED, "Give atLeast and/or atMost.")
            return None
        low, high, ok = self._range(raw, path)
        return QualityBetween(low, high) if ok else None

    def _event_base(self, raw: Mapping[str, Any], path: str) -> tuple[str, int] | None:
        ok = True
        kind = raw.get("type")
        if not isinstance(kind, str) or not EVENT_TYPE.fullmatch(kind):
            self.problem(
                f"{path}.type",
                ErrorCode.INVALID_FORMAT,
                "Event types are codes such as order.placed (lower case, starting with a letter).",
            )
            ok = False
        days = raw.get("withinDays")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            self.problem(
                f"{path}.withinDays",
                ErrorCode.IMPLAUSIBLE,
                f"Count days from 1 to {MAX_DAYS}.",
            )
            ok = False
        return (kind, days) if ok else None  # type: ignore[return-value]

    def event(self, raw: Mapping[str, Any], path: str) -> Condition | None:
        base = self._event_base(raw, path)
        did = raw.get("did", True)
        if not isinstance(did, bool):
            self.problem(f"{path}.did", ErrorCode.INVALID_FORMAT, "Give true or false.")
            return None
        return DidEvent(base[0], base[1], did) if base is not None else None

    def _count(self, value: Any, path: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
            self.problem(path, ErrorCode.IMPLAUSIBLE, "Give a whole number of events, 0 or more.")
            return None
        return value

    def event_count(self, raw: Mapping[str, Any], path: str) -> Condition | None:
        base = self._event_base(raw, path)
        low, high = raw.get("atLeast"), raw.get("atMost")
        if low is None and high is None:
            self.problem(path, ErrorCode.REQUIRED, "Give atLeast and/or atMost.")
            return None
        low_n = self._count(low, f"{path}.atLeast") if low is not None else None
        high_n = self._count(high, f"{path}.atMost") if high is not None else None
        if (low is not None and low_n is None) or (high is not None and high_n is None):
            return None
        if low_n is not None and high_n is not None and low_n > high_n:
            self.problem(f"{path}.atMost", ErrorCode.VALIDATION, "atMost is below atLeast.")
            return None
        return EventCount(base[0], base[1], low_n, high_n) if base is not None else None

    def _amount(self, value: Any, path: str) -> Decimal | None:
        try:
            amount = Decimal(str(value)) if not isinstance(value, bool) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite():
            self.problem(path, ErrorCode.INVALID_FORMAT, "Give a decimal amount.")
            return None
        if amount.copy_abs() >= AMOUNT_LIMIT:
            self.problem(path, ErrorCode.IMPLAUSIBLE, "Amounts are below 1,000,000,000,000.")
            return None
        exponent = amount.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2:
            self.problem(path, ErrorCode.INVALID_FORMAT, "Amounts have at most 2 decimals.")
            return None
        return amount

    def event_amount(self, raw: Mapping[str, Any], path: str) -> Condition | None:
        base = self._event_base(raw, path)
        currency = raw.get("currency")
        ok = True
        if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
            self.problem(
                f"{path}.currency", ErrorCode.INVALID_FORMAT, "Give an ISO 4217 code (EUR)."
            )
            ok = False
        low, high = raw.get("atLeast"), raw.get("atMost")
        if low is None and high is None:
            self.problem(path, ErrorCode.REQUIRED, "Give atLeast and/or atMost.")
            return None
        low_d = self._amount(low, f"{path}.atLeast") if low is not None else None
        high_d = self._amount(high, f"{path}.atMost") if high is not None else None
        if (low is not None and low_d is None) or (high is not None and high_d is None):
            return None
        if low_d is not None and high_d is not None and low_d > high_d:
            self.problem(f"{path}.atMost", ErrorCode.VALIDATION, "atMost is below atLeast.")
            return None
        if base is None or not ok:
            return None
        return EventAmount(base[0], base[1], str(currency), low_d, high_d)

    def consent(self, raw: Mapping[str, Any], path: str, top: bool) -> Condition | None:
        purpose = raw.get("purpose")
        ok = True
        if not isinstance(purpose, str) or not PURPOSE_CODE.fullmatch(purpose):
            self.problem(f"{path}.purpose", ErrorCode.INVALID_FORMAT, "Give a purpose code.")
            ok = False
        if not top:
            self.problem(
                path,
                ErrorCode.VALIDATION,
                "A consent condition restricts the whole segment: use it as the definition or "
                "directly inside its top-level all group (not under any or not).",
            )
            ok = False
        return MayProcess(str(purpose)) if ok else None


_LEAF_METHODS = {
    "attribute": "attribute",
    "score": "score",
    "lifecycleStage": "lifecycle_stage",
    "qualityScore": "quality_score",
    "event": "event",
    "eventCount": "event_count",
    "eventAmount": "event_amount",
}


def parse(raw: Any, root: str) -> tuple[Definition | None, list[FieldIssue]]:
    """The definition in ``raw`` (the API's JSON form) and every problem with it, each on its
    path below ``root``; the definition is None when there is any problem."""
    parser = _Parser()
    condition = parser.condition(raw, root, 1, top=True)
    if parser.issues or condition is None:
        return None, parser.issues
    return Definition(condition), []


@dataclass(frozen=True)
class Reference:
    """A name a definition uses that must exist: an event type or a purpose, with its path."""

    kind: str  #: "eventType" or "purpose"
    name: str
    path: str


def references(raw: Any, root: str) -> Iterator[Reference]:
    """The event types and purposes named in ``raw`` (the JSON form), with their paths; only
    well-formed names (malformed ones are :func:`parse`'s problems)."""
    if not isinstance(raw, Mapping):
        return
    for kind in KINDS:
        value = raw.get(kind)
        if value is None:
            continue
        here = f"{root}.{kind}"
        if kind in ("all", "any") and isinstance(value, Sequence) and not isinstance(value, str):
            for i, item in enumerate(value):
                yield from references(item, f"{here}.{i}")
        elif kind == "not":
            yield from references(value, here)
        elif isinstance(value, Mapping):
            name = value.get("type") if kind.startswith("event") else value.get("purpose")
            ok = EVENT_TYPE if kind.startswith("event") else PURPOSE_CODE
            if kind in LEAVES[4:] and isinstance(name, str) and ok.fullmatch(name):
                field = "purpose" if kind == "consent" else "type"
                yield Reference(
                    "purpose" if kind == "consent" else "eventType", name, f"{here}.{field}"
                )


# --------------------------------------------------------------------------- JSON


def _range_json(low: Any, high: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if low is not None:
        found["atLeast"] = low
    if high is not None:
        found["atMost"] = high
    return found


def condition_json(condition: Condition) -> dict[str, Any]:
    """The JSON form of ``condition`` (what :func:`parse` reads back)."""
    match condition:
        case AllOf(conditions):
            return {"all": [condition_json(c) for c in conditions]}
        case AnyOf(conditions):
            return {"any": [condition_json(c) for c in conditions]}
        case NotThis(inner):
            return {"not": condition_json(inner)}
        case TextIs(attribute, values, single):
            operator: dict[str, Any] = {"equals": values[0]} if single else {"in": list(values)}
            return {"attribute": {"attribute": attribute, **operator}}
        case ScoreIs(attribute, values, low, high, single):
            if values is not None:
                operator = {"equals": values[0]} if single else {"in": list(values)}
            else:
                operator = _range_json(low, high)
            return {"score": {"attribute": attribute, **operator}}
        case StageIs(stages):
            return {"lifecycleStage": {"in": [s.value for s in stages]}}
        case QualityBetween(low, high):
            return {"qualityScore": _range_json(low, high)}
        case DidEvent(kind, days, did):
            return {"event": {"type": kind, "withinDays": days, "did": did}}
        case EventCount(kind, days, low, high):
            return {"eventCount": {"type": kind, "withinDays": days, **_range_json(low, high)}}
        case EventAmount(kind, days, currency, low, high):
            bounds = _range_json(
                str(low) if low is not None else None, str(high) if high is not None else None
            )
            return {
                "eventAmount": {"type": kind, "withinDays": days, "currency": currency, **bounds}
            }
        case MayProcess(purpose):
            return {"consent": {"purpose": purpose}}
    raise TypeError(f"not a condition: {condition!r}")


def to_json(definition: Definition) -> dict[str, Any]:
    """The stored form: a version and the condition."""
    return {"version": 1, "condition": condition_json(definition.condition)}


def from_json(stored: Mapping[str, Any]) -> Definition:
    """A stored definition (written by :func:`to_json`, so valid)."""
    found, issues = parse(stored["condition"], "definition")
    if found is None:
        raise ValueError(f"stored segment definition is invalid: {issues}")
    return found
