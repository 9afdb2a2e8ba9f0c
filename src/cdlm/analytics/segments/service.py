"""Segments: save a definition, tell its size, list its members.

A definition is checked as a whole before anything is saved or counted: every problem (a
malformed condition, an unknown attribute, event type or purpose) is reported at once, each on
its path. An event type is known when events of that type have been stored or it is one of the
purchase types (:data:`PURCHASE_TYPES`): a segment on a type nobody sends would silently stay
empty. A purpose is known when it is declared.

Members are the customers the SQL part selects (:mod:`.sql`; restricted, erased and merged-away
customers never are) who may be processed for every purpose of the definition's consent
conditions, as the consent service's one check (:func:`cdlm.consent.service.answers`) answers
now: the SQL runs first, then consent is applied to its rows in batches.

The size is the exact count of the SQL part, then, when the definition has consent conditions,
consent applied to every customer when there are at most :data:`EXACT_CONSENT_LIMIT` of them
(exact), or else to the first :data:`EXACT_CONSENT_LIMIT` by id (ids are random, so a uniform
sample) and the share kept scaled up to the whole (an estimate).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.connection import get_connection
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cdlm.analytics.segments import definition as rules
from cdlm.analytics.segments import sql
from cdlm.analytics.segments.models import Segment
from cdlm.audit import service as audit
from cdlm.consent import service as consent
from cdlm.core import clock
from cdlm.core.errors import Conflict, ErrorCode, FieldIssue, NotFound, ValidationFailed
from cdlm.core.locks import lock_names
from cdlm.core.principal import Principal
from cdlm.core.text import text_problem

#: Event types known even before any is stored: the default purchase types of the scores.
PURCHASE_TYPES: frozenset[str] = frozenset({"purchase"})
#: Up to this many customers of the SQL part, consent is applied to all (an exact size);
#: beyond, to a sample of this many.
EXACT_CONSENT_LIMIT = 2000
#: Customers whose consent is asked in one call of the consent service.
CONSENT_BATCH = 500
MAX_NAME = 200
MAX_DESCRIPTION = 2000


# --------------------------------------------------------------------------- checking


async def _known_event_types(names: set[str]) -> set[str]:
    wanted = sorted(names - PURCHASE_TYPES)
    if not wanted:
        return set(names)
    rows = await get_connection("default").execute_query_dict(
        "SELECT t.type FROM unnest($1::text[]) AS t(type) "
        "WHERE EXISTS (SELECT 1 FROM events AS e WHERE e.type = t.type)",
        [wanted],
    )
    return {row["type"] for row in rows} | (names & PURCHASE_TYPES)


async def check_definition(raw: Any, path: str) -> rules.Definition:
    """The definition in ``raw`` (the API's JSON form), or :class:`ValidationFailed` listing
    every problem with it on its path below ``path``."""
    text = text_problem(raw)
    if text is not None:
        raise ValidationFailed(text, field=path, code=ErrorCode.INVALID_FORMAT)
    found, issues = rules.parse(raw, path)
    references = list(rules.references(raw, path))
    event_types = {r.name for r in references if r.kind == "eventType"}
    purposes = {r.name for r in references if r.kind == "purpose"}
    known_types = await _known_event_types(event_types) if event_types else set()
    known_purposes = (
        {p.code for p in await consent.all_purposes() if p.code in purposes} if purposes else set()
    )
    for reference in references:
        if reference.kind == "eventType" and reference.name not in known_types:
            issues.append(
                FieldIssue(
                    reference.path,
                    ErrorCode.UNKNOWN_CODE,
                    "No event of this type has been stored and it is not a purchase type.",
                )
            )
        elif reference.kind == "purpose" and reference.name not in known_purposes:
            issues.append(
                FieldIssue(reference.path, ErrorCode.UNKNOWN_CODE, "No purpose has this code.")
            )
    if issues or found is None:
        raise ValidationFailed.from_issues(issues)
    return found


def _text_issues(name: str | None, description: str | None, prefix: str) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    if name is not None:
        if not name.strip():
            issues.append(FieldIssue(f"{prefix}.name", ErrorCode.REQUIRED, "Give a name."))
        elif len(name) > MAX_NAME:
            issues.append(
                FieldIssue(f"{prefix}.name", ErrorCode.TOO_LONG, f"At most {MAX_NAME} characters.")
            )
        elif (problem := text_problem(name)) is not None:
            issues.append(FieldIssue(f"{prefix}.name", ErrorCode.INVALID_FORMAT, problem))
    if description is not None:
        if len(description) > MAX_DESCRIPTION:
            issues.append(
                FieldIssue(
                    f"{prefix}.description",
                    ErrorCode.TOO_LONG,
                    f"At most {MAX_DESCRIPTION} characters.",
                )
            )
        elif (problem := text_problem(description)) is not None:
            issues.append(FieldIssue(f"{prefix}.description", ErrorCode.INVALID_FORMAT, problem))
    return issues


def _author(actor: Principal) -> str:
    return f"{actor.kind.value}:{actor.id or actor.name}"


async def _name_free(name: str, path: str, *, but: uuid.UUID | None = None) -> None:
    await lock_names([f"segment.name:{name}"])  # concurrent saves of one name: one wins
    taken = Segment.filter(name=name)
    if but is not None:
        taken = taken.exclude(id=but)
    if await taken.exists():
        raise Conflict("Another segment has this name.", field=path)


# --------------------------------------------------------------------------- saving


@dataclass(frozen=True)
class SegmentDraft:
    """A new segment: ``definition`` in the API's JSON form; ``path`` is where the input sits
    (error paths start there)."""

    name: str
    definition: Any
    description: str = ""
    path: str = "input"


async def create_segment(actor: Principal, draft: SegmentDraft) -> Segment:
    """Save a new segment (its name unique), audited."""
    issues = _text_issues(draft.name, draft.description, draft.path)
    try:
        checked = await check_definition(draft.definition, f"{draft.path}.definition")
    except ValidationFailed as error:
        issues += error.issues
    if issues:
        raise ValidationFailed.from_issues(issues)
    name = draft.name.strip()
    async with in_transaction():
        await _name_free(name, f"{draft.path}.name")
        now = clock.now()
        segment = await Segment.create(
            id=uuid.uuid4(),
            name=name,
            description=draft.description.strip(),
            definition=rules.to_json(checked),
            created_at=now,
            created_by=_author(actor),
            updated_at=now,
            updated_by=_author(actor),
        )
        await audit.record(actor, "segment.create", target_type="segment", target_id=segment.id)
    return segment


@dataclass(frozen=True)
class SegmentChange:
    """A change to a segment: None keeps a value; an empty description clears it."""

    segment_id: uuid.UUID
    name: str | None = None
    description: str | None = None
    definition: Any | None = None
    path: str = "input"


async def update_segment(actor: Principal, change: SegmentChange) -> Segment:
    """Change a segment's name, description or definition, audited with the fields changed."""
    issues = _text_issues(change.name, change.description, change.path)
    checked: rules.Definition | None = None
    if change.definition is not None:
        try:
            checked = await check_definition(change.definition, f"{change.path}.definition")
        except ValidationFailed as error:
            issues += error.issues
    if issues:
        raise ValidationFailed.from_issues(issues)
    async with in_transaction():
        segment = await Segment.filter(id=change.segment_id).select_for_update().first()
        if segment is None:
            raise NotFound("No segment has this id.", field=f"{change.path}.id")
        changed: list[str] = []
        if change.name is not None and change.name.strip() != segment.name:
            await _name_free(change.name.strip(), f"{change.path}.name", but=segment.id)
            segment.name = change.name.strip()
            changed.append("name")
        if change.description is not None and change.description.strip() != segment.description:
            segment.description = change.description.strip()
            changed.append("description")
        if checked is not None and rules.to_json(checked) != segment.definition:
            segment.definition = rules.to_json(checked)
            changed.append("definition")
        if changed:
            segment.updated_at = clock.now()
            segment.updated_by = _author(actor)
            await segment.save()
            await audit.record(
                actor, "segment.update", target_type="segment", target_id=segment.id, fields=changed
            )
    return segment


# --------------------------------------------------------------------------- reading


def definition_of(segment: Segment) -> rules.Definition:
    """The saved definition of ``segment``."""
    return rules.from_json(segment.definition)


async def segment(segment_id: uuid.UUID) -> Segment | None:
    """The segment with this id, or None."""
    return await Segment.get_or_none(id=segment_id)


async def segments_by_ids(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Segment]:
    """Segments by id (one query)."""
    return {s.id: s for s in await Segment.filter(id__in=list(ids))}


@dataclass(frozen=True)
class SegmentFilter:
    """Which segments to list: every criterion given must hold."""

    name_contains: str | None = None


def segments_query(criteria: SegmentFilter) -> QuerySet[Segment]:
    """The segments matching ``criteria`` (unordered: the caller pages it)."""
    query = Segment.all()
    if criteria.name_contains:
        query = query.filter(Q(name__icontains=criteria.name_contains))
    return query


async def _run(compiled: sql.Compiled) -> list[dict[str, Any]]:
    return await get_connection("default").execute_query_dict(
        compiled.statement, compiled.arguments
    )


async def _permitted(ids: list[uuid.UUID], purposes: Sequence[str]) -> list[uuid.UUID]:
    """Those of ``ids`` every purpose may process now (the consent service's one check),
    in order; a purpose no longer declared admits nobody."""
    if not ids or not purposes:
        return ids
    declared = {p.code: p for p in await consent.all_purposes() if p.code in purposes}
    if len(declared) != len(set(purposes)):
        return []
    kept: list[uuid.UUID] = []
    for start in range(0, len(ids), CONSENT_BATCH):
        batch = ids[start : start + CONSENT_BATCH]
        answers = await consent.answers(batch, list(declared.values()))
        kept += [i for i in batch if all(a.permitted for a in answers[i])]
    return kept


@dataclass(frozen=True)
class SegmentSize:
    """How many customers a definition selects now."""

    matching: int  #: the SQL part, exact (consent not applied)
    estimated: int  #: with consent applied: exact when ``exact``, else scaled from a sample
    exact: bool
    consent_checked: int  #: customers consent was asked for (0 without consent conditions)


async def size(definition: rules.Definition, now: datetime | None = None) -> SegmentSize:
    """The size of ``definition`` now (see the module's note on exact and estimated)."""
    moment = now or clock.now()
    rows = await _run(sql.count(definition, moment))
    matching = int(rows[0]["n"])
    purposes = definition.purposes()
    if not purposes or matching == 0:
        return SegmentSize(matching, matching, True, 0)
    sample = await _run(sql.member_ids(definition, moment, limit=EXACT_CONSENT_LIMIT))
    ids = [row["id"] for row in sample]
    kept = len(await _permitted(ids, purposes))
    if matching <= EXACT_CONSENT_LIMIT:
        return SegmentSize(matching, kept, True, len(ids))
    return SegmentSize(matching, round(matching * kept / len(ids)), False, len(ids))


async def preview(actor: Principal, raw: Any, path: str = "definition") -> SegmentSize:
    """The size a definition (the API's JSON form) would have, checked first; nothing saved."""
    return await size(await check_definition(raw, path))


@dataclass(frozen=True)
class MembersPage:
    """What a page of members asks for: ``size`` ids after ``after`` (and before ``before``),
    or with ``backwards`` the last ``size`` before ``before``."""

    size: int
    after: uuid.UUID | None = None
    before: uuid.UUID | None = None
    backwards: bool = False


@dataclass(frozen=True)
class Members:
    """A page of member ids in id order, and whether more lie on either side."""

    ids: list[uuid.UUID]
    has_next_page: bool
    has_previous_page: bool


async def members(definition: rules.Definition, page: MembersPage) -> Members:
    """A page of the members of ``definition`` now, keyset-paged on the customer id. One
    statement for the SQL part, then (with consent conditions) two for consent per chunk of
    ``size + 1`` rows; another chunk is read only when consent dropped customers."""
    now = clock.now()
    want = page.size + 1
    purposes = definition.purposes()
    found: list[uuid.UUID] = []
    after, before = page.after, page.before
    while len(found) < want:
        rows = await _run(
            sql.member_ids(
                definition, now, limit=want, after=after, before=before, backwards=page.backwards
            )
        )
        ids = [row["id"] for row in rows]
        found += await _permitted(ids, purposes)
        if len(ids) < want:
            break
        if page.backwards:
            before = ids[-1]
        else:
            after = ids[-1]
    more = len(found) > page.size
    chosen = found[: page.size]
    if page.backwards:
        chosen.reverse()
        return Members(chosen, page.before is not None, more)
    return Members(chosen, more, page.after is not None)


async def segment_size(segment: Segment) -> SegmentSize:
    """The size of a saved segment now."""
    return await size(definition_of(segment))


def stored_condition(segment: Segment) -> Mapping[str, Any]:
    """The saved definition's condition in the API's JSON form."""
    condition: Mapping[str, Any] = segment.definition["condition"]
    return condition
