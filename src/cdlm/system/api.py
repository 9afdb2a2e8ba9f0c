"""GraphQL types and queries of the installation."""

from datetime import datetime

import strawberry

from cdlm.graphql.permissions import authenticated, public
from cdlm.system import service


def _version() -> str:
    # Looked up only when asked for (the lookup loads importlib.metadata: ~10 ms once).
    return service.cdlm_version()


@strawberry.type(description="Whether the service can do its work right now.")
class Health:
    ok: bool = strawberry.field(
        description="True when every dependency answers: the service can do its work."
    )
    checked_at: datetime = strawberry.field(description="When this check ran.")
    database_reachable: bool = strawberry.field(
        description="True when the database answered a trivial query."
    )
    version: str = strawberry.field(
        resolver=_version, description="Version of the running cdlm.", extensions=authenticated()
    )
    database_latency_ms: float | None = strawberry.field(
        description="Round trip of a trivial query, in milliseconds; null when the database "
        "did not answer.",
        extensions=authenticated(),
    )
    installed_at: datetime | None = strawberry.field(
        description="When this installation's database was first prepared; null when the "
        "database did not answer or was never prepared.",
        extensions=authenticated(),
    )

    @classmethod
    def from_report(cls, report: service.HealthReport) -> "Health":
        return cls(
            ok=report.ok,
            checked_at=report.checked_at,
            database_reachable=report.database_reachable,
            database_latency_ms=report.database_latency_ms,
            installed_at=report.installed_at,
        )


@strawberry.type
class SystemQuery:
    @strawberry.field(
        description="Service health, for load balancers and status pages. Details (version, "
        "latency, installation date) need authentication.",
        extensions=public(),
    )
    async def health(self) -> Health:
        return Health.from_report(await service.check_health())
