"""Months of events made ahead (:mod:`cdlm.customers.partitions`) wherever cdlm runs.

- ``cdlm event-partitions [--months-ahead N]``, ``cdlm worker`` (at start, then daily) and the
  Lambda schedule (``eventPartitions``, daily, ``cdlm.lambda_handler.event_partitions``):
  :func:`scheduled`, through the job registry (:mod:`cdlm.jobs.registry`), under the job's
  lock.

It makes this month and the next ``months_ahead`` (UTC), and a month for each month of events
waiting in the default partition (a back-filled history older than every month), so that those
can later be dropped whole by retention. Idempotent, and safe to run twice at once: months are
made by the owner's ``cdlm_event_partition``, one at a time under its own lock, each in a short
transaction of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from cdlm.core import clock
from cdlm.core.errors import ValidationFailed
from cdlm.customers import partitions

#: Months made after the current one.
MONTHS_AHEAD = 3
MAX_MONTHS_AHEAD = 120
log = logging.getLogger(__name__)


@dataclass
class Result:
    """What a run made (partition names) and what it found made already."""

    made: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, list[str]]:
        return {"made": self.made, "existing": self.existing}


async def run(*, months_ahead: int = MONTHS_AHEAD, now: datetime | None = None) -> Result:
    """Make the months of events due now (see the module); returns what it made."""
    if not 0 <= months_ahead <= MAX_MONTHS_AHEAD:
        raise ValueError(f"months_ahead is 0 to {MAX_MONTHS_AHEAD}")
    moment = now or clock.now()
    wanted = set(partitions.months_from(moment.date(), months_ahead + 1))
    wanted.update(await partitions.months_waiting())
    result = Result()
    for month in sorted(wanted):
        async with in_transaction():
            made = await partitions.make_month(month)
        (result.made if made else result.existing).append(partitions.name_of(month))
    if result.made:
        log.info("event partitions made", extra={"made": result.made})
    return result


async def scheduled(options: Mapping[str, Any]) -> Result:
    """The scheduled run (``cdlm worker``, the Lambda schedule): ``{"months_ahead": N}`` in the
    options, 0 to 120 (3 by default); anything else is refused."""
    ahead = options.get("months_ahead", MONTHS_AHEAD)
    if not isinstance(ahead, int) or isinstance(ahead, bool) or not 0 <= ahead <= MAX_MONTHS_AHEAD:
        raise ValidationFailed(f"months_ahead is 0 to {MAX_MONTHS_AHEAD}", field="months_ahead")
    return await run(months_ahead=ahead)


def summary(result: Result) -> dict[str, list[str]]:
    """The run's result as JSON."""
    return result.to_json()
