"""The Tortoise ORM configuration: one app, ``cdlm``, holding every domain's models."""

from __future__ import annotations

from typing import Any

from cdlm.config import DatabaseTarget
from cdlm.db.connection import PooledConnection
from cdlm.db.login import login_connect

APP_LABEL = "cdlm"

#: Every module that defines tables. A domain adds its ``models`` module here.
MODEL_MODULES: list[str] = [
    "cdlm.system.models",
    "cdlm.auth.models",
    "cdlm.audit.models",
    "cdlm.ratelimit.models",
    "cdlm.vault.models",
    "cdlm.customers.models",
    "cdlm.identity.models",
    "cdlm.erasures.models",
    "cdlm.ledgers.models",
    "cdlm.quality.models",
    "cdlm.idempotency.models",
    "cdlm.consent.models",
    "cdlm.dsr.models",
    "cdlm.holds.models",
    "cdlm.retention.models",
    "cdlm.matching.models",
    "cdlm.analytics.models",
    "cdlm.analytics.segments.models",
    "cdlm.analytics.recommendations.models",
    "cdlm.governance.models",
    "cdlm.insight.models",
]

MIGRATIONS_MODULE = "cdlm.db.migrations"


def connection_credentials(
    target: DatabaseTarget,
    *,
    pool_max: int = 10,
    connect_timeout: float = 5.0,
    connection_class: type | None = None,
) -> dict[str, Any]:
    """asyncpg pool arguments for ``target``."""
    credentials: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "password": target.password,
        "database": target.database,
        "minsize": 1,
        "maxsize": pool_max,
        "timeout": connect_timeout,
        "application_name": "cdlm",
        "server_settings": {"timezone": "UTC"},
    }
    if target.ssl is not None and target.ssl != "disable":
        credentials["ssl"] = target.ssl
    credentials["connection_class"] = connection_class or PooledConnection
    if target.login is not None:  # a rotating secret: read on each new connection
        credentials["connect"] = login_connect(target.login)
    return credentials


def tortoise_config(
    target: DatabaseTarget,
    *,
    pool_max: int = 10,
    connect_timeout: float = 5.0,
    extra_apps: dict[str, dict[str, Any]] | None = None,
    connection_class: type | None = None,
) -> dict[str, Any]:
    """The Tortoise configuration dictionary for ``target``.

    ``connection_class`` swaps the pool's connection class (tests use a subclass of
    :class:`~cdlm.db.connection.PooledConnection` that counts statements).
    """
    apps: dict[str, dict[str, Any]] = {
        APP_LABEL: {
            "models": list(MODEL_MODULES),
            "default_connection": "default",
            "migrations": MIGRATIONS_MODULE,
        }
    }
    apps.update(extra_apps or {})
    return {
        "connections": {
            "default": {
                "engine": "tortoise.backends.asyncpg",
                "credentials": connection_credentials(
                    target,
                    pool_max=pool_max,
                    connect_timeout=connect_timeout,
                    connection_class=connection_class,
                ),
            }
        },
        "apps": apps,
        "use_tz": True,
        "timezone": "UTC",
    }
