"""The event_partitions job as operators run it: ``cdlm event-partitions`` and the Lambda
``event_partitions``, as the application role."""

from __future__ import annotations

import json

import pytest

from cdlm.config import DatabaseTarget, Settings
from cdlm.core import clock
from cdlm.customers import partitions
from tests.customers.test_event_partitions import months_made  # noqa: F401 - a fixture
from tests.support.lambda_invoke import installation_env, run_python
from tests.test_cli import run_cdlm


def _invoke(event: object) -> str:
    return (
        "import json; from cdlm.lambda_handler import event_partitions; "
        f"print(json.dumps(event_partitions({event!r}, None)))"
    )


@pytest.mark.usefixtures("months_made")
async def test_the_scheduled_function_and_the_command_make_the_months_ahead(
    database: DatabaseTarget, settings: Settings
) -> None:
    env = installation_env(database, settings.master_key_file)
    existing = {m.name for m in await partitions.months()}
    wanted = [partitions.name_of(m) for m in partitions.months_from(clock.now().date(), 7)]
    result = run_python(_invoke({"source": "aws.events", "months_ahead": 6}), env)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["made"] == [n for n in wanted if n not in existing]
    assert answer["made"]  # the migration made three months ahead, not six
    assert answer["existing"] == [n for n in wanted if n in existing]
    assert set(wanted) <= {m.name for m in await partitions.months()}

    again = run_cdlm("event-partitions", "--months-ahead", "6", **env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.strip() == "made none; 7 already there"


def test_the_scheduled_function_refuses_a_bad_horizon(
    database: DatabaseTarget, settings: Settings
) -> None:
    env = installation_env(database, settings.master_key_file)
    bad = ["3", 121, True, -1]
    result = run_python(
        "import json; from cdlm.lambda_handler import event_partitions; "
        f"print(json.dumps([event_partitions({{'months_ahead': b}}, None) for b in {bad!r}]))",
        env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers == [{"status": "refused", "reason": "months_ahead is 0 to 120"}] * len(bad)
    refused = run_cdlm("event-partitions", "--months-ahead", "121", **env)
    assert refused.returncode == 2
