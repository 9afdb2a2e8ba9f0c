"""GraphQL over HTTP: the ``graphql-http`` server audit against the app on a loopback port.

No warning and no error, with GraphiQL on (locally) or off with CORS on (as deployed). The
notices are the optional (MAY) items cdlm declines on purpose: operations over GET are refused.
Two of the audits send a query on ``__type``, which is introspection: with it off (production's
default) those two fail and nothing else does. ``tests/test_http_protocol.py`` tests the
behaviours the audit checks one by one.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace

import pytest
from starlette.applications import Starlette

from cdlm.app import create_app
from cdlm.config import Settings
from cdlm.vault.service import Vault
from tests.support.http_audit import NODE, NPM, run_audit
from tests.support.serving import serving

# CI installs node and npm (.ci/run) and sets CDLM_REQUIRE_NODE: there the audit must run.
pytestmark = pytest.mark.skipif(
    (NODE is None or NPM is None) and not os.environ.get("CDLM_REQUIRE_NODE"),
    reason="node and npm are not installed",
)

#: The optional items cdlm declines: queries over GET.
DECLINED = {"5A70", "D6D5", "6A70"}
#: The audits whose query reads ``__type`` (map variables, with either media type).
INTROSPECTING = {"2EA1", "28B9"}


async def audited(app: Starlette) -> tuple[dict[str, int], list[str], int]:
    async with serving(app) as origin:
        counts, results, status = await asyncio.to_thread(run_audit, f"{origin}/graphql")
    print("\n".join(results))
    print(counts)
    return counts, results, status


def ids(results: list[str], status: str) -> set[str]:
    return {line.split()[1] for line in results if line.startswith(f"{status} ")}


@pytest.mark.parametrize(
    "configuration",
    [{}, {"graphiql": False, "cors_origins": ("https://privacy.example.com",)}],
    ids=["graphiql", "no-graphiql-cors"],
)
async def test_the_graphql_over_http_audit_finds_nothing_to_fix(
    settings: Settings, vault: Vault, configuration: dict[str, object]
) -> None:
    app = create_app(replace(settings, **configuration), vault=vault)
    counts, results, status = await audited(app)
    assert (counts["warn"], counts["error"]) == (0, 0), "\n".join(results)
    assert status == 0
    assert counts["ok"] >= 50
    assert ids(results, "notice") <= DECLINED, "\n".join(results)


async def test_without_introspection_only_the_audits_that_introspect_fail(
    settings: Settings, vault: Vault
) -> None:
    app = create_app(replace(settings, graphiql=False, introspection=False), vault=vault)
    _, results, status = await audited(app)
    assert status == 1
    assert ids(results, "warn") | ids(results, "error") == INTROSPECTING, "\n".join(results)
    assert ids(results, "notice") <= DECLINED
