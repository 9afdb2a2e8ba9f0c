"""The request tick as a job (``request_tick``): the scheduled pass over data subject requests
(:func:`cdlm.dsr.tick.tick`, which also writes pending erasures to the erasure register), then
the destruction of segment export files no link can fetch any more."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from cdlm.config import Settings


async def run(settings: Settings) -> dict[str, Any]:
    """One pass; returns the tick's counts and ``segment_exports_destroyed``."""
    from cdlm.analytics.segments.export import destroy_unreachable
    from cdlm.dsr.notifier import notifier_from
    from cdlm.dsr.tick import tick
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    vault = Vault(provider_from_settings(settings))
    report = await tick(vault, notifier_from(settings), settings)
    destroyed = await destroy_unreachable(vault)
    return {**asdict(report), "segment_exports_destroyed": destroyed}
