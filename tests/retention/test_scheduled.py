"""The sweep as operators run it: ``cdlm retention sweep`` and the Lambda ``retention_sweep``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from cdlm.config import DatabaseTarget, Settings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.customers.models import Event
from cdlm.retention import policies
from cdlm.retention.models import Action, Trigger
from cdlm.vault.service import Vault
from tests.retention.support import customer_with_events
from tests.support.lambda_invoke import installation_env, run_python
from tests.test_cli import run_cdlm

INVOKE = (
    "import json; from cdlm.lambda_handler import retention_sweep; "
    "print(json.dumps(retention_sweep({'source': 'aws.events'}, None)))"
)


async def test_dry_run_from_the_cli_then_the_scheduled_sweep(
    vault: Vault, database: DatabaseTarget, settings: Settings, short_tmp: Path
) -> None:
    await customer_with_events(vault, "ada@example.com", events={"page_view": [0]})
    old = (await Event.all())[0]
    old.received_at = old.occurred_at = clock.now() - timedelta(days=400)
    await old.save()
    await policies.create_policy(
        SYSTEM,
        category="events",
        period_days=365,
        trigger=Trigger.SINCE_COLLECTION,
        action=Action.ARCHIVE,
    )
    env = installation_env(
        database, settings.master_key_file, CDLM_ARCHIVE_DIR=str(short_tmp / "archive")
    )
    dry = run_cdlm("retention", "sweep", "--dry-run", **env)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "events: would dispose of 1 (archive" in dry.stdout
    assert await Event.all().count() == 1
    result = run_python(INVOKE, env)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["finished"] is True
    assert report["outcomes"][0]["disposed"] == 1
    assert await Event.all().count() == 0
    assert len(list((short_tmp / "archive").rglob("*.jsonl.gz"))) == 1
    again = run_cdlm("retention", "sweep", **env)
    assert "events: disposed of 0" in again.stdout
    assert "finished" in again.stdout
