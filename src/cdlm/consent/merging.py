"""Consent when two profiles become one, and when they are told apart again.

Nothing in the ledger is rewritten. A merge appends, on the survivor, one ``MERGE`` entry per
purpose the merged profile had decided: the most restrictive of the two profiles' latest
decisions (:func:`most_restrictive_entry`). An unmerge appends ``UNMERGE`` entries that give
each profile its own decisions back, with every decision made on the survivor after the merge
applied to both (a decision is made about the person, and it was one profile then). Where the
survivor had no decision of its own for a purpose it got through the merge, its unmerge entry
is a withdrawal: the grant was the other person's, and no decision is never read as consent.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cdlm.consent.models import ConsentEntry, Decision, Method
from cdlm.consent.service import LEDGER, current_entries, sign, stripe_of_customer
from cdlm.core import clock
from cdlm.core.principal import Principal
from cdlm.customers import service as customers

CHANNEL = "identity"


@dataclass(frozen=True)
class Planned:
    """An entry to append: a decision about one purpose for one customer."""

    customer_id: uuid.UUID
    purpose_id: uuid.UUID
    decision: Decision
    notice_version: int | None


def most_restrictive_entry(one: ConsentEntry | None, other: ConsentEntry | None) -> ConsentEntry:
    """Of two profiles' latest decisions about a purpose, the one both must live with: a refusal
    (denied, withdrawn) beats a grant, a decision beats none, and between equals the later."""
    if one is None or other is None:
        chosen = one or other
        assert chosen is not None, "at least one side has decided"
        return chosen
    one_refuses = one.decision is not Decision.GRANTED
    other_refuses = other.decision is not Decision.GRANTED
    if one_refuses != other_refuses:
        return one if one_refuses else other
    return max(one, other, key=lambda e: (e.decided_at, e.sequence))


def _differs(entry: ConsentEntry | None, decision: Decision, notice: int | None) -> bool:
    return entry is None or entry.decision is not decision or entry.notice_version != notice


def plan_merge(
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    latest: dict[tuple[uuid.UUID, uuid.UUID], ConsentEntry],
) -> list[Planned]:
    """The ``MERGE`` entries of a merge, from both profiles' latest decisions."""
    planned = []
    purposes = sorted({p for c, p in latest if c == merged_id})
    for purpose_id in purposes:
        mine = latest.get((survivor_id, purpose_id))
        chosen = most_restrictive_entry(mine, latest[(merged_id, purpose_id)])
        planned.append(Planned(survivor_id, purpose_id, chosen.decision, chosen.notice_version))
    return planned


def plan_unmerge(
    sides: Mapping[uuid.UUID, Sequence[uuid.UUID]],
    survivor_id: uuid.UUID,
    merged_at: datetime,
    history: list[ConsentEntry],
) -> list[Planned]:
    """The ``UNMERGE`` entries of an unmerge, from the ledgers (oldest first) of both profiles
    and of the profiles still merged into each (``sides``: profile → itself and those).

    Per purpose, a decision recorded on the survivor after the merge applies to both profiles;
    otherwise each profile answers with the most restrictive of its members' latest own
    decisions (``MERGE`` and ``UNMERGE`` entries are derived, not decisions, so they do not
    count). An entry is planned only where that differs from what the profile answers with now;
    a grant a profile had only through the other side becomes a withdrawal.
    """
    own: dict[tuple[uuid.UUID, uuid.UUID], ConsentEntry] = {}
    after: dict[uuid.UUID, ConsentEntry] = {}
    current: dict[tuple[uuid.UUID, uuid.UUID], ConsentEntry] = {}
    for entry in history:
        purpose_id: uuid.UUID = entry.purpose_id  # type: ignore[attr-defined]
        current[(entry.customer_id, purpose_id)] = entry
        if entry.method in (Method.MERGE, Method.UNMERGE):
            continue
        if entry.customer_id == survivor_id and entry.recorded_at > merged_at:
            after[purpose_id] = entry
        else:
            own[(entry.customer_id, purpose_id)] = entry
    planned = []
    purposes = sorted({p for _, p in current})
    for customer_id, members in sides.items():
        for purpose_id in purposes:
            wanted = after.get(purpose_id)
            if wanted is None:
                decided = [own[(m, purpose_id)] for m in members if (m, purpose_id) in own]
                wanted = functools.reduce(most_restrictive_entry, decided) if decided else None
            now = current.get((customer_id, purpose_id))
            if wanted is None:
                if now is not None and now.decision is Decision.GRANTED:
                    planned.append(Planned(customer_id, purpose_id, Decision.WITHDRAWN, None))
                continue
            if _differs(now, wanted.decision, wanted.notice_version):
                planned.append(
                    Planned(customer_id, purpose_id, wanted.decision, wanted.notice_version)
                )
    return planned


async def _append(
    actor: Principal, planned: list[Planned], method: Method, heads: dict[int, str]
) -> list[uuid.UUID]:
    """Append ``planned``, each entry after the head of its customer's stripe (all locked)."""
    if not planned:
        return []
    now = clock.now()
    entries = []
    for each in planned:
        stripe = stripe_of_customer(each.customer_id)
        entry = ConsentEntry(
            id=uuid.uuid4(),
            customer_id=each.customer_id,
            purpose_id=each.purpose_id,
            decision=each.decision,
            notice_version=each.notice_version,
            method=method,
            channel=CHANNEL,
            decided_at=now,
            recorded_at=now,
            evidence_sealed=None,
            actor_kind=actor.kind.value,
            actor_id=actor.id,
            stripe=stripe,
            prev_hash=heads[stripe],
        )
        sign(entry)
        heads[stripe] = entry.hash
        entries.append(entry)
    await ConsentEntry.bulk_create(entries)
    return [e.id for e in entries]


async def merge(actor: Principal, survivor_id: uuid.UUID, merged_id: uuid.UUID) -> list[uuid.UUID]:
    """Append the merge's entries (in the caller's transaction); returns their ids."""
    purposes = (
        await ConsentEntry.filter(customer_id=merged_id)
        .distinct()
        .values_list("purpose_id", flat=True)
    )
    if not purposes:
        return []  # the merged profile decided nothing: the survivor's decisions stand
    # The merged profile's rows are locked by the merge: no decision of it arrives meanwhile.
    # Its entries go to the survivor's stripe; the merged profile's is locked too, in the fixed
    # order, so a decision written to either meanwhile cannot interleave.
    heads = await LEDGER.lock({stripe_of_customer(c) for c in (survivor_id, merged_id)})
    latest = await current_entries([survivor_id, merged_id], [uuid.UUID(str(p)) for p in purposes])
    return await _append(actor, plan_merge(survivor_id, merged_id, latest), Method.MERGE, heads)


async def unmerge(
    actor: Principal, survivor_id: uuid.UUID, merged_id: uuid.UUID, merged_at: datetime
) -> list[uuid.UUID]:
    """Append the unmerge's entries (in the caller's transaction, once the profiles merged into
    each side point at it again); returns their ids."""
    # Entries go to both profiles' stripes: both locked, in the fixed order (no deadlock with a
    # merge or another unmerge of the same two).
    heads = await LEDGER.lock({stripe_of_customer(c) for c in (survivor_id, merged_id)})
    sides = {
        profile: [profile, *await customers.absorbed(profile)]
        for profile in (survivor_id, merged_id)
    }
    everyone = [m for members in sides.values() for m in members]
    history = list(await ConsentEntry.filter(customer_id__in=everyone).order_by("sequence"))
    return await _append(
        actor, plan_unmerge(sides, survivor_id, merged_at, history), Method.UNMERGE, heads
    )
