"""The match run as a job (``match_run``; needs the ``matching`` extra): incremental unless the
options say ``full``; ``train`` retrains first. An unfinished run is resumed by the next."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdlm.jobs.registry import JobContext

if TYPE_CHECKING:
    from cdlm.matching.models import MatchRun


async def run(context: JobContext) -> MatchRun:
    """A match run within the budget; returns its evidence. Refused with
    :class:`~cdlm.core.errors.Conflict` while another caller holds the match run lock."""
    from cdlm.core.principal import SYSTEM
    from cdlm.matching import runs
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    settings = context.settings
    options = runs.options_from(
        settings,
        full=bool(context.options.get("full")),
        train=bool(context.options.get("train")),
        budget_seconds=context.budget_seconds,
    )
    vault = Vault(provider_from_settings(settings))
    if context.progress is not None:
        return await runs.run(SYSTEM, vault, options, context.progress)
    return await runs.run(SYSTEM, vault, options)
