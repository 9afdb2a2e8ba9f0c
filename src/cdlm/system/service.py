"""Installation record and health checks."""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError

from cdlm.core import clock
from cdlm.db.lifecycle import ping
from cdlm.system.models import Installation

log = logging.getLogger(__name__)


@functools.cache
def cdlm_version() -> str:
    """The installed cdlm package version (read once: looking it up scans the installed
    distributions, ~1.5 ms, and health checks ask on every request)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cdlm")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0+unknown"


async def ensure_installation() -> Installation:
    """The installation row, created on first call (safe under concurrent callers)."""
    existing = await Installation.get_or_none(singleton=True)
    if existing is not None:
        return existing
    try:
        created = await Installation.create(
            id=uuid.uuid4(), installed_at=clock.now(), installed_version=cdlm_version()
        )
    except IntegrityError:
        return await Installation.get(singleton=True)
    log.info("installation recorded", extra={"installation_id": str(created.id)})
    return created


@dataclass(frozen=True)
class HealthReport:
    """Whether the service can do its work right now."""

    ok: bool
    checked_at: datetime
    database_reachable: bool
    database_latency_ms: float | None
    installed_at: datetime | None


async def check_health() -> HealthReport:
    """Check the database round trip; never raises."""
    try:
        latency = await ping()
        installation = await Installation.get_or_none(singleton=True)
    except Exception:
        log.warning("health check: database unreachable", exc_info=True)
        return HealthReport(False, clock.now(), False, None, None)
    return HealthReport(
        ok=True,
        checked_at=clock.now(),
        database_reachable=True,
        database_latency_ms=round(latency, 3),
        installed_at=installation.installed_at if installation else None,
    )
