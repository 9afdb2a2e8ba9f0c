"""The scheduled pass as operators run it: ``cdlm dsr tick`` and the Lambda ``dsr_tick``."""

from __future__ import annotations

import json
from datetime import timedelta

from cdlm.config import DatabaseTarget, Settings
from cdlm.core import clock
from cdlm.dsr.models import DataSubjectRequest
from tests.conftest import GraphQLClient
from tests.dsr.support import file_request, key
from tests.support.lambda_invoke import installation_env, run_python
from tests.test_cli import run_cdlm

INVOKE_TICK = (
    "import json; from cdlm.lambda_handler import dsr_tick; "
    "print(json.dumps(dsr_tick({'source': 'aws.events', 'detail-type': 'Scheduled Event'}, None)))"
)


async def _overdue_request(gql: GraphQLClient, headers: dict[str, str]) -> str:
    received = (clock.now() - timedelta(days=40)).isoformat()
    filed = await file_request(gql, headers, "ACCESS", receivedAt=received)
    request_id: str = filed["request"]["id"]
    return request_id


async def test_the_lambda_schedule_flags_an_overdue_request(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    database: DatabaseTarget,
    settings: Settings,
) -> None:
    request_id = await _overdue_request(gql, admin_headers)
    result = run_python(INVOKE_TICK, installation_env(database, settings.master_key_file))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["flagged_overdue"] == 1
    assert report["open_overdue"] == 1
    assert (await DataSubjectRequest.get(id=key(request_id))).attention == "overdue"
    # The warning names the request and the days, never the requester.
    assert str(key(request_id)) in result.stderr  # logs name requests by database id
    assert "ada@example.com" not in result.stderr


async def test_the_cli_tick_reports_what_it_did(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    database: DatabaseTarget,
    settings: Settings,
) -> None:
    await _overdue_request(gql, admin_headers)
    first = run_cdlm("dsr", "tick", **installation_env(database, settings.master_key_file))
    assert first.returncode == 0, first.stderr[-2000:]
    assert "flagged 0 due soon and 1 overdue; 1 open requests are overdue" in first.stdout
    again = run_cdlm("dsr", "tick", **installation_env(database, settings.master_key_file))
    assert "flagged 0 due soon and 0 overdue; 1 open requests are overdue" in again.stdout
