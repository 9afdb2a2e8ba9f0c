"""Carrying out an approved request, step by step, resumably.

Each step runs in its own transaction together with the record that it is done (in the
request's ``progress``), under a lock on the request. A crash inside a step rolls the step back;
a crash between steps leaves the finished ones recorded. Running the request again (it is then
failed or still in progress) skips what is done and carries on where it stopped; every step is
also safe to repeat.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.consent.models import Method
from cdlm.core import clock
from cdlm.core.errors import DomainError, InvalidStateTransition, PolicyViolation
from cdlm.core.principal import Principal
from cdlm.customers import rights
from cdlm.customers import service as customers
from cdlm.dsr import access, erasure, outbox
from cdlm.dsr.intake import match_customer
from cdlm.dsr.models import DataSubjectRequest, ExecutionStep, RequestType, TimelineKind
from cdlm.dsr.notifier import Notifier
from cdlm.dsr.service import (
    NewTimelineEntry,
    add_event,
    locked,
    move,
    notify_requester,
    set_reason,
)
from cdlm.dsr.workflow import Status
from cdlm.erasures import register
from cdlm.identity import service as identity
from cdlm.vault.service import Vault

logger = logging.getLogger("cdlm.dsr")


@dataclass(frozen=True)
class Run:
    """What every step of one execution can reach."""

    actor: Principal
    vault: Vault
    auth: AuthSettings
    settings: Settings
    request_id: uuid.UUID


class OnHold(Exception):
    """A legal hold stops the request; it waits until the hold ends."""

    def __init__(self, hold_id: str) -> None:
        super().__init__(hold_id)
        self.hold_id = hold_id
        self.note = f"legal hold {hold_id}"


class Stopped(Exception):
    """The request left IN_PROGRESS (put on hold, cancelled) while it ran: stop here."""


Work = Callable[[DataSubjectRequest], Awaitable[dict[str, Any]]]


async def step(run: Run, name: ExecutionStep, work: Work) -> dict[str, Any]:
    """Do ``work`` once: its result is stored with the request in the same transaction, and a
    later run returns the stored result instead of doing it again."""
    async with in_transaction():
        request = await locked(run.request_id)
        if request.status is not Status.IN_PROGRESS:
            raise Stopped
        done: dict[str, Any] = request.progress.get("steps", {})
        if name.value in done:
            return dict(done[name.value])
        result = await work(request)
        request.progress = {**request.progress, "steps": {**done, name.value: result}}
        request.updated_at = clock.now()
        await request.save(update_fields=["progress", "updated_at"])
        await add_event(run.actor, request, NewTimelineEntry(TimelineKind.STEP_DONE, name.value))
        return result


#: The result of a step when no data is held about the requester.
NOTHING_HELD: dict[str, Any] = {"data_found": False}


async def _details(run: Run, request: DataSubjectRequest) -> dict[str, Any]:
    key = await run.vault.customer_key(request.id)
    details: dict[str, Any] = run.vault.open(
        key, request.id, "details", bytes(request.details_sealed or b"")
    )
    return details


# ------------------------------------------------------------------------ per request type


async def _access(run: Run, portable: bool) -> None:
    async def collect(request: DataSubjectRequest) -> dict[str, Any]:
        return await access.collect(run.actor, run.vault, run.settings, request, portable=portable)

    async def send(request: DataSubjectRequest) -> dict[str, Any]:
        return await access.send_link(run.vault, run.auth, run.settings, request)

    await step(run, ExecutionStep.COLLECT, collect)
    await step(run, ExecutionStep.SEND_LINK, send)


async def _rectification(run: Run) -> None:
    async def rectify(request: DataSubjectRequest) -> dict[str, Any]:
        if request.customer_id is None:
            return NOTHING_HELD
        changes = (await _details(run, request))["corrections"]
        await customers.update_customer(run.actor, run.vault, request.customer_id, changes)
        return {"fields": sorted(changes)}

    await step(run, ExecutionStep.RECTIFY, rectify)


async def _restriction(run: Run) -> None:
    async def restrict(request: DataSubjectRequest) -> dict[str, Any]:
        if request.customer_id is None or not await customers.exists(request.customer_id):
            return NOTHING_HELD
        return {"newly_restricted": await rights.restrict(request.customer_id)}

    await step(run, ExecutionStep.RESTRICT, restrict)


async def _consent(run: Run, request_type: RequestType) -> None:
    async def record(request: DataSubjectRequest) -> dict[str, Any]:
        customer_id = request.customer_id
        if customer_id is None or not await customers.exists(customer_id):
            return NOTHING_HELD
        purposes = (await _details(run, request))["purposes"]
        opt_out: consent.SaleOptOut | consent.Objection | None = None
        if request_type is RequestType.OPT_OUT_OF_SALE:
            opt_out = consent.SaleOptOut()
        elif request_type is RequestType.OBJECTION:
            opt_out = consent.Objection(purposes)
        recording = consent.ConsentRecording(
            customer_id,
            [],
            consent.Capture(Method.REQUEST, channel="request"),
            operation=f"dsr.{request_type.value}",
            opt_out=opt_out,
        )
        ids, _ = await consent.record(
            run.actor, run.vault, recording, idempotency_key=f"dsr:{request.id}"
        )
        return {"consent_entries": [str(i) for i in ids]}

    await step(run, ExecutionStep.RECORD_CONSENT, record)


async def _erasure(run: Run) -> None:
    async def plan(request: DataSubjectRequest) -> dict[str, Any]:
        found = await erasure.plan(request)
        if found.get("held_by") is not None:
            raise OnHold(found["held_by"])
        return found

    planned = await step(run, ExecutionStep.PLAN, plan)
    keep = erasure.keep_of(planned)

    async def retain(request: DataSubjectRequest) -> dict[str, Any]:
        return {"resealed": await erasure.retain(run.vault, request, keep)}

    async def suppress(request: DataSubjectRequest) -> dict[str, Any]:
        return {"suppressed": await erasure.suppress(request, planned)}

    async def shred(request: DataSubjectRequest) -> dict[str, Any]:
        held_by = await erasure.customer_hold(request.customer_id)
        if held_by is not None:  # placed since the plan: nothing is destroyed yet
            raise OnHold(held_by)
        return await erasure.shred(run.vault, request, planned)

    async def delete(request: DataSubjectRequest) -> dict[str, Any]:
        return await erasure.delete(request, keep)

    await step(run, ExecutionStep.RETAIN, retain)
    await step(run, ExecutionStep.SUPPRESS, suppress)
    await step(run, ExecutionStep.SHRED, shred)
    await step(run, ExecutionStep.DELETE, delete)


async def _run(run: Run, request_type: RequestType) -> None:
    if request_type in (RequestType.ACCESS, RequestType.PORTABILITY):
        await _access(run, portable=request_type is RequestType.PORTABILITY)
    elif request_type is RequestType.RECTIFICATION:
        await _rectification(run)
    elif request_type is RequestType.RESTRICTION:
        await _restriction(run)
    elif request_type is RequestType.ERASURE:
        await _erasure(run)
    else:
        await _consent(run, request_type)


# ------------------------------------------------------------------------------ running


async def execute(
    actor: Principal,
    vault: Vault,
    auth: AuthSettings,
    settings: Settings,
    notifier: Notifier,
    request_id: uuid.UUID,
) -> DataSubjectRequest:
    """Carry out an approved request (or resume a failed or interrupted one).

    A step that fails marks the request failed with the reason on its timeline; running it
    again resumes. A legal hold puts the request on hold instead.
    """
    await vault.ready()
    async with in_transaction():
        request = await locked(request_id)
        if request.status in (Status.APPROVED, Status.FAILED):
            await move(request, Status.IN_PROGRESS, actor)
        elif request.status is not Status.IN_PROGRESS:
            raise InvalidStateTransition(
                "Only an approved, failed or interrupted request can be carried out.",
                field="input.id",
            )
        if request.customer_id is None and not request.progress.get("steps"):
            # The person may have been ingested since verification.
            request.customer_id = await match_customer(vault, request)
            await request.save(update_fields=["customer_id"])
        if request.customer_id is not None and not request.progress.get("steps"):
            # Matched to a profile merged into another since: the request is the survivor's.
            survivor = (await customers.survivors([request.customer_id])).get(request.customer_id)
            if survivor is not None:
                request.customer_id = survivor
                await request.save(update_fields=["customer_id"])
        if request.customer_id is None and await identity.shared(request.subject_index):
            # Answering would hand one person's data to another (nothing changes).
            raise PolicyViolation(
                "The requester's email or phone is shared by customers kept apart as different "
                "people; cancel this request and file it again naming the customer.",
                field="input.id",
            )
    run = Run(actor, vault, auth, settings, request_id)
    try:
        await _run(run, request.type)
    except Stopped:
        return await DataSubjectRequest.get(id=request_id)
    except OnHold as hold:
        return await _stop(run, Status.ON_HOLD, hold.note, held_by=hold.hold_id)
    except DomainError as error:
        return await _stop(run, Status.FAILED, error.message)
    except Exception as error:
        logger.exception("data subject request step failed", extra={"request": str(request_id)})
        await _stop(run, Status.FAILED, f"unexpected {type(error).__name__}; run it again")
        raise
    return await _complete(run, notifier)


async def _stop(
    run: Run, status: Status, note: str, held_by: str | None = None
) -> DataSubjectRequest:
    async with in_transaction():
        request = await locked(run.request_id)
        if request.status is Status.IN_PROGRESS:
            await move(request, status, run.actor, note=note[:500])
            set_reason(request, own=note)
            if held_by is not None:
                request.progress = {**request.progress, "held_by": held_by}
            await request.save(update_fields=["reason", "staff_reason_sealed", "progress"])
    return request


async def _complete(run: Run, notifier: Notifier) -> DataSubjectRequest:
    async with in_transaction():
        request = await locked(run.request_id)
        if request.status is not Status.IN_PROGRESS:
            return request  # another run completed it
        if request.type is RequestType.ERASURE:
            request.certificate = erasure.certificate(request, run.settings)
        set_reason(request)
        await move(request, Status.COMPLETED, run.actor)
        if request.type is not RequestType.ACCESS and request.type is not RequestType.PORTABILITY:
            await notify_requester(run.vault, request, "request_completed")
    await outbox.deliver_pending(run.vault, notifier, [request.id])
    if request.type is RequestType.ERASURE:
        await register.flush(register.register_from(run.settings))
        await erasure.forget_requester(run.vault, request)
    return request
