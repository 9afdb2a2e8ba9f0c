"""Running the audit sequencer (:mod:`cdlm.audit.sequencer`) wherever cdlm runs.

- ``cdlm serve``: :func:`run_every` about every second, in the background of its lifespan
  (:func:`in_background`).
- Lambda HTTP function: :class:`ChainAfterReads`, after a request that recorded reads, at most
  about once a second per container and only if no other sequencer runs (never waiting).
- Lambda schedule and ``cdlm worker`` (the ``audit_sequencer`` job of :mod:`cdlm.jobs.registry`):
  :func:`run`, waiting for the lock, chains whatever is left (up to ``MAX_BATCHES`` batches).

Several runners at once are safe: one at a time holds the inbox lock (:mod:`cdlm.audit.sequencer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from cdlm.audit import sequencer
from cdlm.audit import service as audit

log = logging.getLogger(__name__)

#: Seconds between runs (the pending window is about this long).
INTERVAL = 1.0
#: Batches one scheduled run chains at most (50,000 records); the rest is left for the next.
MAX_BATCHES = 100


async def run_once(*, wait: bool = True, max_batches: int | None = None) -> int:
    """Chain what is pending now; returns how many records were chained."""
    return await sequencer.chain_all(wait=wait, max_batches=max_batches)


async def run() -> dict[str, int]:
    """The scheduled job: chain what is pending (up to :data:`MAX_BATCHES` batches); returns
    how many were chained and how many are still pending."""
    chained = await run_once(max_batches=MAX_BATCHES)
    left, _ = await audit.pending_reads()
    return {"chained": chained, "pending": left}


async def run_every(interval: float = INTERVAL, stop: asyncio.Event | None = None) -> None:
    """Chain pending records every ``interval`` seconds until ``stop`` is set (or the task is
    cancelled). It never queues for a lock: when another sequencer holds the inbox, it has the
    records in hand. A failure is logged and the next round tries again."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await sequencer.chain_all(wait=False)
        except Exception:
            log.exception("audit sequencer: chaining pending read records failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


@contextlib.asynccontextmanager
async def in_background(interval: float = INTERVAL) -> AsyncIterator[None]:
    """Run :func:`run_every` while the block runs (a server's lifespan); on the way out, let
    the current round finish (a few seconds at most) before the database is closed."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_every(interval, stop), name="cdlm-audit-sequencer")
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 5)
        except TimeoutError:
            log.warning("audit sequencer: stopped in the middle of a round")


class ChainAfterReads:
    """ASGI middleware for Lambda, where nothing runs between invocations: after a request,
    if this container recorded reads since it last chained, chain pending records, at most
    once per ``min_interval`` seconds and only if no other sequencer runs (never waiting).

    The response waits for it (a few milliseconds; Lambda freezes the container once the
    handler returns). What is left is chained by the next request or the scheduled function.
    """

    def __init__(
        self,
        app: ASGIApp,
        min_interval: float = INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.min_interval = min_interval
        self._monotonic = monotonic
        self._chained_through = 0
        self._last_attempt = -math.inf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                await self.after_request()

    async def after_request(self) -> int | None:
        """Chain if due; returns how many were chained (None when nothing was attempted or
        a lock was busy)."""
        recorded = audit.reads_recorded()
        now = self._monotonic()
        if recorded == self._chained_through or now - self._last_attempt < self.min_interval:
            return None
        self._last_attempt = now
        try:
            chained = await sequencer.try_chain_pending()
        except Exception:
            log.exception("audit sequencer: chaining after the request failed")
            return None
        if chained is not None and chained < sequencer.BATCH:
            self._chained_through = recorded  # else: busy, or more left for the next request
        return chained
