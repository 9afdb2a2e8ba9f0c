"""Retention disposal of request data (``cdlm.dsr.disposal``): what is due on each side of the
cutoff, paging with ``after``, and the effect in the database.

Rows are made through the real services with the clock frozen at chosen moments; a row is due
when its time is strictly before the cutoff, so each function is checked a microsecond before,
at, and after it. Open requests are never due, and a requester's details, once destroyed, are
unreadable because the request's key is gone.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.principal import SYSTEM
from cdlm.dsr import disposal, execution, intake, outbox, service
from cdlm.dsr.models import (
    AccessExport,
    DataSubjectRequest,
    DownloadToken,
    Notification,
    RequestEvent,
    RequestType,
    VerificationCode,
    VerificationMethod,
)
from cdlm.dsr.notifier import LogNotifier, Message, Notifier
from cdlm.dsr.workflow import Status
from cdlm.retention import archive, policies
from cdlm.retention import service as holds
from cdlm.retention import sweep as sweeping
from cdlm.retention.models import Action, Trigger
from cdlm.vault.keys import provider_from_settings
from cdlm.vault.service import MissingKey, Vault
from tests.factories import make_customer

CUTOFF = datetime(2030, 1, 1, tzinfo=UTC)
BEFORE = CUTOFF - timedelta(microseconds=1)
AFTER = CUTOFF + timedelta(days=1)
LONG_AGO = CUTOFF - timedelta(days=200)
NOTIFIER = LogNotifier()


class Unreachable:
    """A notifier whose every send fails (the message stays in the outbox)."""

    async def send(self, message: Message) -> None:
        raise ConnectionError("relay down")


async def filed(
    vault: Vault,
    settings: Settings,
    email: str,
    at: datetime,
    request_type: RequestType = RequestType.ACCESS,
    notifier: Notifier = NOTIFIER,
) -> uuid.UUID:
    """A request staff filed (identity checked) at ``at``: it is VERIFIED."""
    with clock.frozen_at(at):
        done = await intake.file_request(
            SYSTEM,
            vault,
            settings,
            notifier,
            intake.Filing(
                request_type,
                intake.Subject(IdentifierKind.EMAIL, email),
                VerificationMethod.IDENTITY_DOCUMENT,
            ),
        )
    return done.request_id


async def closed(
    vault: Vault, settings: Settings, email: str, at: datetime, status: Status = Status.DENIED
) -> uuid.UUID:
    """A request closed (denied or cancelled) at ``at``."""
    request_id = await filed(vault, settings, email, at - timedelta(days=2))
    with clock.frozen_at(at):
        await service.decide(SYSTEM, vault, NOTIFIER, request_id, status, "Unfounded.")
    return request_id


async def notified(
    vault: Vault, settings: Settings, email: str, at: datetime, notifier: Notifier = NOTIFIER
) -> uuid.UUID:
    """A request denied at ``at``: the requester is written to (through ``notifier``)."""
    request_id = await filed(vault, settings, email, at - timedelta(days=2))
    with clock.frozen_at(at):
        await service.decide(SYSTEM, vault, notifier, request_id, Status.DENIED, "Unfounded.")
    return request_id


async def exported(
    vault: Vault, auth: AuthSettings, settings: Settings, email: str, at: datetime
) -> uuid.UUID:
    """An access request carried out at ``at``: completed, with an export and a link."""
    request_id = await filed(vault, settings, email, at - timedelta(days=2))
    with clock.frozen_at(at):
        await service.decide(SYSTEM, vault, NOTIFIER, request_id, Status.APPROVED, None)
        done = await execution.execute(SYSTEM, vault, auth, settings, NOTIFIER, request_id)
    assert done.status is Status.COMPLETED
    return request_id


async def submitted(
    vault: Vault, auth: AuthSettings, settings: Settings, email: str, at: datetime
) -> uuid.UUID:
    """A self-service request at ``at``, waiting for the code it was sent."""
    with clock.frozen_at(at):
        done = await intake.submit(
            vault,
            auth,
            settings,
            NOTIFIER,
            intake.RequestSubmission(
                RequestType.ACCESS,
                intake.Subject(IdentifierKind.EMAIL, email),
                client_address="198.51.100.7",
            ),
        )
    return done.request_id


def ids(candidates: list[disposal.Candidate]) -> list[str]:
    return [c.id for c in candidates]


# ------------------------------------------------------------------------------ exports


async def test_exports_are_due_strictly_before_the_cutoff_and_deleted_with_their_links(
    vault: Vault, auth: AuthSettings, settings: Settings
) -> None:
    customer = (await make_customer(vault, email="known@example.com")).customer_id
    old = await exported(vault, auth, settings, "known@example.com", BEFORE)
    at_cutoff = await exported(vault, auth, settings, "edge@example.com", CUTOFF)
    later = await exported(vault, auth, settings, "later@example.com", AFTER)
    old_export = await AccessExport.get(request_id=old)
    assert await DownloadToken.filter(export_id=old_export.id).count() == 1

    [due] = await disposal.exports_due(CUTOFF, None, 10)
    assert due.id == str(old_export.id)
    assert due.customer_id == customer  # a hold on the customer can keep it
    assert due.at == BEFORE

    assert await disposal.delete_exports([due.id]) == 1
    assert await AccessExport.filter(request_id=old).count() == 0
    assert await DownloadToken.filter(export_id=old_export.id).count() == 0
    assert await AccessExport.filter(request_id__in=[at_cutoff, later]).count() == 2
    assert await DataSubjectRequest.filter(id=old).exists()  # the request stays
    assert await disposal.exports_due(CUTOFF, None, 10) == []
    assert await disposal.delete_exports([]) == 0


async def test_exports_are_paged_in_id_order_after_a_cursor(
    vault: Vault, auth: AuthSettings, settings: Settings
) -> None:
    for n in range(3):
        await exported(vault, auth, settings, f"page{n}@example.com", BEFORE - timedelta(days=n))
    everything = ids(await disposal.exports_due(CUTOFF, None, 10))
    assert everything == sorted(everything, key=uuid.UUID)
    assert len(everything) == 3
    first = ids(await disposal.exports_due(CUTOFF, None, 2))
    rest = ids(await disposal.exports_due(CUTOFF, first[-1], 2))
    assert first + rest == everything
    assert await disposal.exports_due(CUTOFF, everything[-1], 2) == []


# ------------------------------------------------------------------- verification codes


async def test_codes_are_due_strictly_before_the_cutoff_and_deleted(
    vault: Vault, auth: AuthSettings, settings: Settings
) -> None:
    old = await submitted(vault, auth, settings, "old@example.com", BEFORE)
    edge = await submitted(vault, auth, settings, "edge@example.com", CUTOFF)
    later = await submitted(vault, auth, settings, "later@example.com", AFTER)
    old_code = await VerificationCode.get(request_id=old)

    [due] = await disposal.codes_due(CUTOFF, None, 10)
    assert (due.id, due.at, due.customer_id) == (str(old_code.id), BEFORE, None)
    page = ids(await disposal.codes_due(AFTER + timedelta(seconds=1), None, 2))
    rest = ids(await disposal.codes_due(AFTER + timedelta(seconds=1), page[-1], 2))
    assert len(page) == 2
    assert len(rest) == 1
    assert page + rest == sorted(page + rest, key=uuid.UUID)

    assert await disposal.delete_codes([due.id]) == 1
    assert not await VerificationCode.filter(request_id=old).exists()
    assert await VerificationCode.filter(request_id__in=[edge, later]).count() == 2
    assert (await DataSubjectRequest.get(id=old)).status is Status.IDENTITY_PENDING


# ------------------------------------------------------------------------ notifications


async def test_only_settled_notifications_are_due(vault: Vault, settings: Settings) -> None:
    sent = await notified(vault, settings, "sent@example.com", BEFORE)
    sent_at_cutoff = await notified(vault, settings, "edge@example.com", CUTOFF)
    pending = await notified(vault, settings, "pending@example.com", BEFORE, Unreachable())
    given_up = await notified(vault, settings, "gaveup@example.com", BEFORE, Unreachable())
    for _ in range(outbox.MAX_ATTEMPTS - 1):
        await outbox.deliver_pending(vault, Unreachable(), [given_up])
    keyless = await notified(vault, settings, "keyless@example.com", BEFORE, Unreachable())
    await vault.shred(keyless)
    await outbox.deliver_pending(vault, Unreachable(), [keyless])  # given up at once

    rows = {n.request_id: n for n in await Notification.all()}
    assert rows[sent].sent_at is not None
    assert rows[sent].payload_sealed is None
    assert rows[pending].sent_at is None
    assert rows[pending].attempts == 1
    assert rows[given_up].attempts == outbox.MAX_ATTEMPTS
    assert rows[keyless].attempts == outbox.MAX_ATTEMPTS

    due = await disposal.notifications_due(CUTOFF, None, 10)
    expected = {str(rows[r].id) for r in (sent, given_up, keyless)}
    assert set(ids(due)) == expected  # not the one still being retried, nor the one at cutoff
    assert all(c.customer_id is None for c in due)
    first = ids(await disposal.notifications_due(CUTOFF, None, 2))
    rest = ids(await disposal.notifications_due(CUTOFF, first[-1], 2))
    assert first + rest == sorted(expected, key=uuid.UUID)

    assert await disposal.delete_notifications(ids(due)) == 3
    left = set(await Notification.all().values_list("request_id", flat=True))
    assert left == {sent_at_cutoff, pending}
    assert await disposal.delete_notifications([]) == 0


# ----------------------------------------------------------------------- closed requests


async def test_only_closed_requests_are_due_and_only_before_the_cutoff(
    vault: Vault, auth: AuthSettings, settings: Settings
) -> None:
    denied = await closed(vault, settings, "denied@example.com", BEFORE)
    cancelled = await closed(vault, settings, "cancelled@example.com", BEFORE, Status.CANCELLED)
    completed = await exported(vault, auth, settings, "completed@example.com", BEFORE)
    await closed(vault, settings, "edge@example.com", CUTOFF)
    await closed(vault, settings, "later@example.com", AFTER)
    # Open requests received long before the cutoff, in every open state reachable here.
    verified = await filed(vault, settings, "verified@example.com", LONG_AGO)
    approved = await filed(vault, settings, "approved@example.com", LONG_AGO)
    on_hold = await filed(vault, settings, "held@example.com", LONG_AGO)
    with clock.frozen_at(LONG_AGO):
        await service.decide(SYSTEM, vault, NOTIFIER, approved, Status.APPROVED, None)
        await service.decide(SYSTEM, vault, NOTIFIER, on_hold, Status.ON_HOLD, "Legal review.")
    pending = await submitted(vault, auth, settings, "pending@example.com", LONG_AGO)

    due = await disposal.closed_requests_due(CUTOFF, None, 10)
    assert set(ids(due)) == {str(denied), str(cancelled), str(completed)}
    assert {c.at for c in due} == {BEFORE}
    kinds = {c.id: c.kind for c in due}
    assert kinds[str(completed)] == "dsr.exports"  # holds on dsr.exports keep it
    assert kinds[str(denied)] == kinds[str(cancelled)] == ""
    untouched = {verified, approved, on_hold, pending}
    assert not untouched & {uuid.UUID(i) for i in ids(due)}

    first = ids(await disposal.closed_requests_due(CUTOFF, None, 2))
    rest = ids(await disposal.closed_requests_due(CUTOFF, first[-1], 2))
    assert first + rest == sorted(ids(due), key=uuid.UUID)
    assert len(first) == 2


async def test_shredding_destroys_the_requesters_details_and_keeps_the_record(
    vault: Vault, settings: Settings
) -> None:
    gone = await closed(vault, settings, "shredded@example.com", BEFORE)
    kept = await closed(vault, settings, "kept@example.com", BEFORE)
    open_one = await filed(vault, settings, "open@example.com", LONG_AGO)
    assert (await DataSubjectRequest.get(id=gone)).subject_sealed is not None

    assert await disposal.shred_requesters(vault, [str(gone)]) == 1
    row = await DataSubjectRequest.get(id=gone)
    assert (row.subject_sealed, row.details_sealed, row.subject_index) == (None, None, "")
    assert row.status is Status.DENIED  # the record of the request stays
    assert await RequestEvent.filter(request_id=gone).exists()
    # The key is gone from the database, not only from this vault's cache.
    fresh = Vault(provider_from_settings(settings))
    assert await fresh.customer_keys([gone]) == {}
    with pytest.raises(MissingKey):
        await vault.customer_key(gone)
    assert await service.requester(vault, row) is None

    # Shredded requests are no longer due for shredding, but still due for deletion.
    with_details = await disposal.closed_requests_due(CUTOFF, None, 10, with_details_only=True)
    assert ids(with_details) == [str(kept)]
    assert str(gone) in ids(await disposal.closed_requests_due(CUTOFF, None, 10))

    for other in (kept, open_one):
        still = await DataSubjectRequest.get(id=other)
        requester = await service.requester(vault, still)
        assert requester is not None
        assert requester.value.endswith("@example.com")


async def test_deleting_requests_removes_them_with_everything_attached(
    vault: Vault, auth: AuthSettings, settings: Settings
) -> None:
    doomed = await exported(vault, auth, settings, "doomed@example.com", BEFORE)
    other = await exported(vault, auth, settings, "other@example.com", BEFORE)
    export_id = (await AccessExport.get(request_id=doomed)).id
    assert await Notification.filter(request_id=doomed).exists()
    assert await RequestEvent.filter(request_id=doomed).exists()

    assert await disposal.delete_requests(vault, [str(doomed)]) == 1
    assert not await DataSubjectRequest.filter(id=doomed).exists()
    assert not await RequestEvent.filter(request_id=doomed).exists()
    assert not await Notification.filter(request_id=doomed).exists()
    assert not await AccessExport.filter(request_id=doomed).exists()
    assert not await DownloadToken.filter(export_id=export_id).exists()
    assert await Vault(provider_from_settings(settings)).customer_keys([doomed]) == {}
    # The other request is whole.
    assert await DataSubjectRequest.filter(id=other).exists()
    assert await AccessExport.filter(request_id=other).exists()
    assert await vault.customer_keys([other]) != {}
    assert await disposal.delete_requests(vault, [str(doomed)]) == 0


async def test_customers_with_open_requests(vault: Vault, settings: Settings) -> None:
    asking = (await make_customer(vault, email="asking@example.com")).customer_id
    done = (await make_customer(vault, email="done@example.com")).customer_id
    quiet = (await make_customer(vault, email="quiet@example.com")).customer_id
    open_id = await filed(vault, settings, "asking@example.com", LONG_AGO)
    closed_id = await closed(vault, settings, "done@example.com", BEFORE)
    assert (await DataSubjectRequest.get(id=open_id)).customer_id == asking
    assert (await DataSubjectRequest.get(id=closed_id)).customer_id == done
    assert await disposal.customers_with_open_requests([asking, done, quiet]) == {asking}


# ------------------------------------------------------------------- holds in the sweep


async def test_the_sweep_keeps_closed_requests_a_legal_hold_covers(
    vault: Vault, auth: AuthSettings, settings: Settings, tmp_path: Path
) -> None:
    held_customer = (await make_customer(vault, email="held@example.com")).customer_id
    of_held_customer = await closed(vault, settings, "held@example.com", BEFORE)
    with_copy = await exported(vault, auth, settings, "copy@example.com", BEFORE)
    plain = await closed(vault, settings, "plain@example.com", BEFORE)
    await policies.create_policy(
        SYSTEM,
        category="dsr.requests",
        period_days=30,
        trigger=Trigger.SINCE_REQUEST_COMPLETION,
        action=Action.DELETE,
    )
    with clock.frozen_at(CUTOFF + timedelta(days=31)):
        await holds.place_hold(SYSTEM, reason="Litigation", customer_id=held_customer)
        await holds.place_hold(SYSTEM, reason="Regulator inquiry", category="dsr.exports")
        report = await sweeping.sweep(
            SYSTEM, vault, archive.LocalArchiveStore(tmp_path / "archive")
        )
    [outcome] = report.outcomes
    assert (outcome.disposed, outcome.skipped_held) == (1, 2)
    assert not await DataSubjectRequest.filter(id=plain).exists()
    for kept in (of_held_customer, with_copy):
        row = await DataSubjectRequest.get(id=kept)
        assert await service.requester(vault, row) is not None
    assert await AccessExport.filter(request_id=with_copy).exists()
