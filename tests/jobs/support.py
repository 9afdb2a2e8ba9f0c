"""Jobs for the tests of the runner and the worker: their bodies count runs and can be held
open, so a test sees exactly how many runs happened and when."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from cdlm.config import Settings
from cdlm.jobs.registry import Every, Job, JobContext


@dataclass
class Probe:
    """What the test jobs saw."""

    entered: int = 0
    finished: int = 0
    cancelled: int = 0
    budgets: list[float | None] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    inside: asyncio.Event = field(default_factory=asyncio.Event)


PROBE = Probe()


def reset() -> Probe:
    """A fresh probe (gate closed)."""
    global PROBE
    PROBE = Probe()
    return PROBE


async def held(settings: Settings, budget_seconds: float | None = None) -> dict[str, Any]:
    """Counts the run, then waits for the gate."""
    probe = PROBE
    probe.entered += 1
    probe.budgets.append(budget_seconds)
    probe.inside.set()
    try:
        await probe.gate.wait()
    except asyncio.CancelledError:
        probe.cancelled += 1
        raise
    probe.finished += 1
    return {"entered": probe.entered}


async def counted(context: JobContext) -> dict[str, Any]:
    """Counts the run and returns at once."""
    PROBE.entered += 1
    PROBE.finished += 1
    return {"runs": PROBE.finished, "options": dict(context.options)}


async def failing() -> None:
    """Always fails."""
    PROBE.entered += 1
    raise RuntimeError("the job body failed")


def job(name: str, run: str, seconds: float = 0.05, **extra: Any) -> Job:
    """A test job of ``run`` (a function of this module) every ``seconds``."""
    return Job(
        name=name,
        title=name.replace("_", " "),
        schedule=Every(seconds),
        run=f"tests.jobs.support:{run}",
        lock=f"cdlm.tests.{name}",
        **extra,
    )
