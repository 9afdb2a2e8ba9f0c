"""The ``cdlm`` command, run as a real process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from cdlm.config import DatabaseTarget, Settings
from cdlm.customers.models import CustomerAttributes
from cdlm.db.lifecycle import drop_database, ensure_database
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, make_customer
from tests.support.lambda_invoke import ROOT, cdlm_env, database_url, installation_env


def run_cdlm(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdlm", *args],
        cwd=ROOT,
        env=cdlm_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_malformed_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cdlm("serve", CDLM_PORT="eighty", CDLM_DATA_DIR=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == (
        "cdlm: configuration error: CDLM_PORT: must be a whole number (got 'eighty')\n"
    )


def test_unreachable_database_is_one_line_without_password() -> None:
    result = run_cdlm(
        "migrate",
        DATABASE_URL="postgresql://app:s3cret@127.0.0.1:1/cdlm",
        CDLM_DB_CONNECT_TIMEOUT="2",
    )
    assert result.returncode == 1
    assert result.stderr == (
        "cdlm: cannot reach the database app@127.0.0.1:1/cdlm: connection refused\n"
    )


def test_migrate_reports_up_to_date(
    database: DatabaseTarget, owner_database: DatabaseTarget
) -> None:
    result = run_cdlm(
        "migrate",
        DATABASE_URL=database_url(database),
        CDLM_DATABASE_OWNER_URL=database_url(owner_database),
    )
    assert result.returncode == 0, result.stderr
    assert f"database {owner_database.safe_description} is up to date (0 applied now)" in (
        result.stdout
    )


def test_migrate_as_the_app_role_is_one_line(database: DatabaseTarget) -> None:
    result = run_cdlm("migrate", DATABASE_URL=database_url(database))
    assert result.returncode == 1
    assert (
        result.stdout == "migrate: no CDLM_DATABASE_OWNER_URL; migrating as DATABASE_URL's role\n"
    )
    assert result.stderr == (
        f"cdlm: {database.user} may not change the schema of {database.safe_description}: "
        "migrate as the tables' owner (CDLM_DATABASE_OWNER_URL)\n"
    )


async def test_serve_refuses_an_unmigrated_external_database(
    database_server: DatabaseTarget,
) -> None:
    target = database_server.with_database(f"cdlm_cli_{uuid.uuid4().hex[:10]}")
    await ensure_database(target)
    try:
        result = run_cdlm("serve", DATABASE_URL=database_url(target))
    finally:
        await drop_database(target)
    assert result.returncode == 1
    assert "not applied" in result.stderr
    assert "run `cdlm migrate` first" in result.stderr
    assert result.stderr.count("\n") == 1


def test_export_schema_prints_the_checked_in_schema() -> None:
    result = run_cdlm("export-schema")
    assert result.returncode == 0
    assert result.stdout == (ROOT / "schema.graphql").read_text(encoding="utf-8")


class Server:
    """``cdlm serve`` in the background, on the embedded database in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cdlm", "serve"],
            cwd=ROOT,
            env=cdlm_env(CDLM_DATA_DIR=str(data_dir), CDLM_PORT=str(self.port)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner: list[str] = []
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"cdlm serve exited: {self.process.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            self.banner.append(line)
            if line.startswith("Stop with Ctrl+C."):
                break
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


def test_serve_starts_embedded_database_and_keeps_data_across_restarts(short_tmp: Path) -> None:
    query = {"query": "{ health { ok installedAt } viewer { role name } }"}
    first = Server(short_tmp)
    try:
        assert any(line.startswith("GraphiQL: http://127.0.0.1:") for line in first.banner)
        (key_line,) = [line for line in first.banner if line.startswith("API key:")]
        api_key = key_line.split()[-1]
        assert any('"Authorization": "Bearer cdlm_' in line for line in first.banner)
        headers = {"Authorization": f"Bearer {api_key}"}
        assert httpx.get(f"{first.url}/healthz").json()["status"] == "ok"
        page = httpx.get(f"{first.url}/graphql", headers={"Accept": "text/html"})
        assert "graphiql" in page.text.lower()
        data = httpx.post(f"{first.url}/graphql", json=query, headers=headers).json()["data"]
    finally:
        assert first.stop() == 0
    assert data["viewer"] == {"role": "ADMIN", "name": "bootstrap admin key"}
    assert data["health"]["installedAt"] is not None

    second = Server(short_tmp)
    try:
        again = httpx.post(f"{second.url}/graphql", json=query, headers=headers).json()["data"]
    finally:
        assert second.stop() == 0
    assert again["health"]["installedAt"] == data["health"]["installedAt"]
    assert not any("applied migration" in line for line in second.banner)
    assert not any(line.startswith("API key:") for line in second.banner)


async def test_bootstrap_prints_an_admin_key_once_then_refuses(
    database: DatabaseTarget, gql: GraphQLClient
) -> None:
    url = database_url(database)
    bad = run_cdlm("bootstrap", "--email", "not an email", DATABASE_URL=url)
    assert (bad.returncode, bad.stderr) == (1, "cdlm: Enter a valid email address.\n")
    first = run_cdlm("bootstrap", "--email", "Boss@Example.com", "--name", "Boss", DATABASE_URL=url)
    assert first.returncode == 0, first.stderr
    lines = dict(line.split(":", 1) for line in first.stdout.splitlines() if ":" in line)
    assert lines["Admin user"].strip() == "boss@example.com"
    key = lines["API key"].strip()
    viewer = await gql("{ viewer { role } }", headers=bearer(key))
    assert viewer["data"]["viewer"]["role"] == "ADMIN"
    password = lines["Password"].strip()
    login = await gql(
        'mutation($p: String!) { login(input: {email: "boss@example.com", password: $p}) '
        "{ __typename } }",
        {"p": password},
    )
    assert login["data"]["login"]["__typename"] == "LoginSucceeded"
    again = run_cdlm("bootstrap", "--email", "other@example.com", DATABASE_URL=url)
    assert again.returncode == 1
    assert again.stderr == "cdlm: cdlm is already bootstrapped: an admin exists.\n"


def test_an_unknown_enricher_stops_the_command(tmp_path: Path) -> None:
    result = run_cdlm("enrich", "--all", CDLM_ENRICHERS="phone,emial", CDLM_DATA_DIR=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith(
        "cdlm: configuration error: CDLM_ENRICHERS: unknown enricher 'emial'"
    )


async def test_enrich_all_derives_every_customer_again(
    database: DatabaseTarget, settings: Settings, vault: Vault
) -> None:
    made = await make_customer(vault, email="again@gmail.com", phone="+31612345678", country="NL")
    await CustomerAttributes.filter(customer_id=made.customer_id).delete()
    env = installation_env(database, settings.master_key_file, CDLM_ENRICHERS="email_domain")
    result = run_cdlm("enrich", "--all", **env)
    assert result.returncode == 0, result.stderr
    assert "derived the attributes of 1 customers (enrichers: email_domain)" in result.stdout
    row = await CustomerAttributes.get(customer_id=made.customer_id)
    assert (row.email_domain_kind, row.country, row.phone_country) == ("free_mail", "NL", None)


def test_backup_and_restore_round_trip_the_embedded_database(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert run_cdlm("migrate", CDLM_DATA_DIR=data).returncode == 0
    seeded = run_cdlm("seed-demo", CDLM_DATA_DIR=data)
    assert seeded.returncode == 0, seeded.stderr
    backup = tmp_path / "cdlm.dump"
    written = run_cdlm("backup", "-o", str(backup), CDLM_DATA_DIR=data)
    assert written.returncode == 0, written.stderr
    assert written.stdout == f"wrote {backup}\n"
    assert backup.stat().st_size > 0
    restored = run_cdlm("restore", str(backup), CDLM_DATA_DIR=data)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.splitlines() == [
        "erasure records read: 0; customers erased again: 0; already erased: 0; "
        "identifiers suppressed again: 0",
        f"restored {backup}",
    ]
    # The data came back: the demo refuses an installation that has customers.
    again = run_cdlm("seed-demo", CDLM_DATA_DIR=data)
    assert again.returncode != 0
    assert "already has customers" in again.stderr


def test_backup_and_restore_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    missing = run_cdlm("restore", str(tmp_path / "none.dump"), CDLM_DATA_DIR=str(tmp_path))
    assert missing.returncode == 2
    assert missing.stderr == f"cdlm: {tmp_path / 'none.dump'}: no such file\n"
    external = run_cdlm(
        "backup", "-o", str(tmp_path / "x.dump"), DATABASE_URL="postgresql://u:p@127.0.0.1/db"
    )
    assert external.returncode == 2
    assert "embedded database" in external.stderr
