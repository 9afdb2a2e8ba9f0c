"""GraphQL types and queries of the installation."""

from __future__ import annotations

from datetime import datetime

import strawberry

from cdlm.system import service


@strawberry.type(description="Whether the service can do its work right now.")
class Health:
    ok: bool = strawberry.field(description="True when every dependency answers.")
    version: str = strawberry.field(description="Version of the running cdlm.")
    checked_at: datetime
    database_reachable: bool
    database_latency_ms: float | None = strawberry.field(
        description="Round trip of a trivial query, in milliseconds."
    )
    installed_at: datetime | None = strawberry.field(
        description="When this installation's database was first prepared."
    )

    @classmethod
    def from_report(cls, report: service.HealthReport) -> Health:
        return cls(
            ok=report.ok,
            version=report.version,
            checked_at=report.checked_at,
            database_reachable=report.database_reachable,
            database_latency_ms=report.database_latency_ms,
            installed_at=report.installed_at,
        )


@strawberry.type
class SystemQuery:
    @strawberry.field(description="Service health. Public: load balancers and status pages use it.")
    async def health(self) -> Health:
        return Health.from_report(await service.check_health())
