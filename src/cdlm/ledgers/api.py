"""The verification report as the GraphQL API gives it (``verifyAuditChain``,
``verifyConsentLedger``)."""

from cdlm.config import Settings
from cdlm.core import chain
from cdlm.graphql.hash_chain import HashChainReport
from cdlm.graphql.relay import global_id
from cdlm.ledgers import verify as ledgers
from cdlm.ledgers.checkpoints import store_from


async def verification_report(
    settings: Settings, ledger: ledgers.Ledger, node_type: str
) -> HashChainReport:
    """Verify ``ledger`` from its newest checkpoint (nothing is written) and report it."""
    report = await ledgers.verify(ledger, store_from(settings, chain.keyring()))
    broken = report.first_broken_id
    return HashChainReport.of(
        ok=report.ok,
        entries_checked=report.entries_checked,
        head_hash=report.head_hash,
        first_broken_sequence=report.first_broken_sequence,
        first_broken_id=global_id(node_type, broken) if broken is not None else None,
        problem=report.problem,
        pending_entries=report.pending,
        oldest_pending=report.oldest_pending_age,
        checkpoint_sequence=report.checkpoint.sequence if report.checkpoint else None,
        checkpointed_at=report.checkpoint.checkpointed_at if report.checkpoint else None,
    )
