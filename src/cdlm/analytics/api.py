"""GraphQL of analytics: the evidence of analytics runs (``analyticsRuns``, ``node(id:)``).

The scores themselves are read on ``Customer.analytics``. Runs hold counts and the fitted
parameters of the whole population, never a person's data.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.analytics import loaders, service
from cdlm.analytics.models import AnalyticsRun, AnalyticsRunStatus
from cdlm.core.roles import Role
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.pagination import (
    After,
    Before,
    CountedConnection,
    First,
    Last,
    SortKey,
    paginate,
)
from cdlm.graphql.permissions import allow
from cdlm.graphql.relay import Node, NodeKind, global_id

#: Who reads the evidence of analytics runs (as ``Customer.analytics``).
RUN_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST)
ANALYTICS_RUN = "AnalyticsRun"
NEWEST_FIRST = [SortKey("started_at", descending=True), SortKey("id")]

describe_enum(
    AnalyticsRunStatus,
    "The state of an analytics run.",
    {
        AnalyticsRunStatus.RUNNING: "Under way. A run whose process was killed stays RUNNING "
        "until the next run starts and marks it FAILED.",
        AnalyticsRunStatus.FINISHED: "Every customer was scored (a run with too little "
        "history to fit the models finishes too: its `note` says what was not computed).",
        AnalyticsRunStatus.FAILED: "Ended by an error (or its process died); scores it had "
        "written are kept, the rest are those of the previous run.",
    },
    name="AnalyticsRunStatus",
)


@strawberry.type(
    description="The BG/NBD model fitted by maximum likelihood on every buyer: purchase rates "
    "~ Gamma(r, alpha) while alive, dropout after each repeat purchase with probability "
    "~ Beta(a, b). Time is in days."
)
class BgNbdFit:
    r: float = strawberry.field(description="Shape of the purchase rates' gamma distribution.")
    alpha: float = strawberry.field(
        description="Scale of the purchase rates' gamma distribution, in days."
    )
    a: float = strawberry.field(description="First shape of the dropout probabilities' beta.")
    b: float = strawberry.field(description="Second shape of the dropout probabilities' beta.")
    log_likelihood: float = strawberry.field(
        description="Log-likelihood of the fit over all buyers (higher is better)."
    )
    converged: bool = strawberry.field(
        description="False when the optimizer did not converge or a parameter ended on its "
        "search bound: treat the scores with caution."
    )


@strawberry.type(
    description="The Gamma-Gamma spend model fitted by maximum likelihood on repeat buyers: a "
    "purchase's value ~ Gamma(p, nu) with nu ~ Gamma(q, v) across customers. Values are in "
    "the run's reporting currency."
)
class GammaGammaFit:
    p: float = strawberry.field(description="Shape of a purchase value's gamma distribution.")
    q: float = strawberry.field(
        description="Shape of the customers' spend rates; above 1 for a finite mean spend."
    )
    v: float = strawberry.field(
        description="Scale of the customers' spend rates, in the reporting currency."
    )
    log_likelihood: float = strawberry.field(
        description="Log-likelihood of the fit over the repeat buyers (higher is better)."
    )
    converged: bool = strawberry.field(
        description="False when the optimizer did not converge or a parameter ended on its "
        "search bound."
    )


@strawberry.type(
    description="Purchases in a currency without a configured exchange rate: their amounts "
    "were left out of monetary values (they still count as purchases)."
)
class SkippedAmount:
    currency: str = strawberry.field(description="The currency code as stored on the events.")
    purchases: int = strawberry.field(description="Purchases whose amount was left out.")


@strawberry.type(
    name="AnalyticsRun",
    description="The evidence of one analytics run (`cdlm analytics refresh`, daily): what "
    "was counted, the fitted models, or why they were not fitted. Counts only, no values.",
)
class AnalyticsRunNode(Node):
    status: AnalyticsRunStatus = strawberry.field(description="The state of the run.")
    as_of: datetime = strawberry.field(
        description="End of the observation window: only purchases before it counted; ages "
        "and recency are measured from it. Also the customers' `scoredAt`."
    )
    started_at: datetime = strawberry.field(description="When the run started.")
    finished_at: datetime | None = strawberry.field(
        description="When it ended (finished or failed); null while RUNNING."
    )
    duration_seconds: float = strawberry.field(description="How long it took, in seconds.")
    purchase_types: list[str] = strawberry.field(
        description="The event types counted as purchases."
    )
    currency: str = strawberry.field(
        description="Reporting currency of amounts and expected values (ISO 4217)."
    )
    customers_scored: int = strawberry.field(
        description="Customers whose scores were written (every buyer who may be processed)."
    )
    customers_cleared: int = strawberry.field(
        description="Customers whose earlier scores were removed: restricted, erased or "
        "merged since, or without a purchase before `asOf`."
    )
    purchases: int = strawberry.field(description="Purchase events counted.")
    buyers: int = strawberry.field(description="Customers with at least one purchase.")
    repeat_buyers: int = strawberry.field(
        description="Buyers who purchased on more than one day (what the models learn from)."
    )
    skipped_amounts: list[SkippedAmount] = strawberry.field(
        description="Per currency without a configured rate (CDLM_ANALYTICS_RATES), the "
        "purchases whose amount was left out, by currency code; empty when none."
    )
    bgnbd: BgNbdFit | None = strawberry.field(
        description="The purchase model; null when it was not fitted (see `note`)."
    )
    gamma_gamma: GammaGammaFit | None = strawberry.field(
        description="The spend model; null when it was not fitted (see `note`)."
    )
    note: str | None = strawberry.field(
        description="Why a model was not fitted or not used (e.g. too few repeat buyers); "
        "then only the scores that could be computed were written. Null: nothing to say."
    )
    error: str | None = strawberry.field(
        description="Kind of error that ended a FAILED run (no values); null otherwise."
    )

    @classmethod
    def from_row(cls, row: AnalyticsRun) -> "AnalyticsRunNode":
        bgnbd = None
        if row.bgnbd_r is not None:
            bgnbd = BgNbdFit(
                r=row.bgnbd_r,
                alpha=row.bgnbd_alpha or 0.0,
                a=row.bgnbd_a or 0.0,
                b=row.bgnbd_b or 0.0,
                log_likelihood=row.bgnbd_log_likelihood or 0.0,
                converged=bool(row.bgnbd_converged),
            )
        spend = None
        if row.gamma_gamma_p is not None:
            spend = GammaGammaFit(
                p=row.gamma_gamma_p,
                q=row.gamma_gamma_q or 0.0,
                v=row.gamma_gamma_v or 0.0,
                log_likelihood=row.gamma_gamma_log_likelihood or 0.0,
                converged=bool(row.gamma_gamma_converged),
            )
        return cls(
            id=global_id(ANALYTICS_RUN, row.id),
            status=row.status,
            as_of=row.as_of,
            started_at=row.started_at,
            finished_at=row.finished_at,
            duration_seconds=row.duration_seconds,
            purchase_types=list(row.purchase_types),
            currency=row.currency,
            customers_scored=row.customers_scored,
            customers_cleared=row.customers_cleared,
            purchases=row.purchases,
            buyers=row.buyers,
            repeat_buyers=row.repeat_buyers,
            skipped_amounts=[
                SkippedAmount(currency=c, purchases=n)
                for c, n in sorted(row.skipped_amounts.items())
            ],
            bgnbd=bgnbd,
            gamma_gamma=spend,
            note=row.note,
            error=row.error,
        )


@strawberry.type(description="A page of analytics runs, Relay style, with the total count.")
class AnalyticsRunConnection(CountedConnection[AnalyticsRunNode]):
    pass


@strawberry.input(description="Criteria of the list of analytics runs.")
class AnalyticsRunFilter:
    status: AnalyticsRunStatus | None = strawberry.field(
        default=None, description="Only runs in this state; null: every run."
    )


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        description="Analytics runs with their evidence (counts, model fits), newest first.",
        extensions=allow(*RUN_READERS),
    )
    async def analytics_runs(
        self,
        info: Info[Any, Any],
        filter: Annotated[
            AnalyticsRunFilter | None,
            strawberry.argument(description="Which runs; every run when not given."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> AnalyticsRunConnection:
        given = filter or AnalyticsRunFilter()
        page = await paginate(
            service.runs(service.RunFilter(given.status)),
            order=NEWEST_FIRST,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        connection = page.to_connection(AnalyticsRunNode.from_row, AnalyticsRunConnection)
        assert isinstance(connection, AnalyticsRunConnection)
        return connection


async def _runs(info: Info[Any, Any], ids: list[uuid.UUID]) -> Sequence[object | None]:
    rows = await info.context.loaders.get(loaders.runs_by_id).load_many(ids)
    return [AnalyticsRunNode.from_row(r) if r is not None else None for r in rows]


#: How node(id:) fetches this domain's objects (with the roles of ``analyticsRuns``).
NODE_KINDS: tuple[NodeKind, ...] = (NodeKind.of(ANALYTICS_RUN, RUN_READERS, _runs),)
