"""The sweep as operators run it: ``cdlm retention sweep`` and the Lambda ``retention_sweep``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from cdlm import clock
from cdlm.auth.principal import SYSTEM
from cdlm.config import DatabaseTarget, Settings
from cdlm.customers.models import Event
from cdlm.retention import policies
from cdlm.retention.models import Action, Trigger
from cdlm.vault.service import Vault
from tests.retention.support import customer_with_events
from tests.support.lambda_invoke import ROOT, database_url
from tests.test_cli import cdlm_env, run_cdlm

INVOKE = (
    "import json; from cdlm.lambda_handler import retention_sweep; "
    "print(json.dumps(retention_sweep({'source': 'aws.events'}, None)))"
)


def _env(database: DatabaseTarget, settings: Settings, archive: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url(database),
        "CDLM_ENV": "test",
        "CDLM_TOKEN_SECRET": "sweep-token-secret-" + "s" * 32,
        "CDLM_MASTER_KEY_FILE": str(settings.master_key_file),
        "CDLM_ARCHIVE_DIR": str(archive),
        "CDLM_LOG_LEVEL": "WARNING",
    }


def _invoke(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", INVOKE],
        cwd=ROOT,
        env=cdlm_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
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
    env = _env(database, settings, short_tmp / "archive")
    dry = run_cdlm("retention", "sweep", "--dry-run", **env)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "events: would dispose of 1 (archive" in dry.stdout
    assert await Event.all().count() == 1
    result = _invoke(env)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["finished"] is True
    assert report["outcomes"][0]["disposed"] == 1
    assert await Event.all().count() == 0
    assert len(list((short_tmp / "archive").rglob("*.jsonl.gz"))) == 1
    again = run_cdlm("retention", "sweep", **env)
    assert "events: disposed of 0" in again.stdout
    assert "finished" in again.stdout
