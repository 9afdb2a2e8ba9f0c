"""The real Lambda handler reading its secrets from Secrets Manager (a moto server) and logging
in to a PostgreSQL that checks passwords: the owner migrates from its secret, the app role logs
in from its own, a rotated password is picked up (after the TTL, or at once when refused), and a
missing secret stops the container with one line."""

from __future__ import annotations

import ast
import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from moto.server import ThreadedMotoServer

from cdlm.config import DatabaseTarget
from cdlm.db.embedded import EmbeddedPostgres
from cdlm.db.lifecycle import connect, ensure_database, scram_verifier
from tests.support.lambda_invoke import (
    LambdaContainer,
    database_url,
    http_api_v2_event,
    run_python,
)

QUERY = {"query": "{ health { ok databaseReachable } }"}
REFUSED = "database login refused; reading its secret again"
TOKEN = "token-from-secrets-manager-" + "t" * 32


@dataclass
class Stage:
    """A deployment stand-in: PostgreSQL that checks passwords and Secrets Manager."""

    owner: DatabaseTarget
    secrets: Any
    env: dict[str, str]
    app_secret: str
    owner_secret: str


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, str]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def password_server() -> AsyncIterator[DatabaseTarget]:
    """A PostgreSQL of its own whose every role logs in with a password (SCRAM)."""
    workdir = Path(tempfile.mkdtemp(prefix="cdlm-pw-"))
    server = EmbeddedPostgres(workdir / "pg", delete_on_stop=True)
    try:
        trusted = server.start()
        owner = replace(trusted, password="owner-" + "o" * 20, database="cdlm_secrets")
        admin = await connect(trusted.with_database("postgres"))
        try:
            await admin.execute(f"ALTER ROLE {trusted.user} PASSWORD '{owner.password}'")
            hba = await admin.fetchval("SHOW hba_file")
            await asyncio.to_thread(Path(hba).write_text, "local all all scram-sha-256\n")
            await admin.execute("SELECT pg_reload_conf()")
        finally:
            await admin.close()
        await ensure_database(owner)
        yield owner
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def stage(password_server: DatabaseTarget, aws: dict[str, str]) -> Stage:
    secrets = boto3.client(
        "secretsmanager",
        endpoint_url=aws["AWS_ENDPOINT_URL"],
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    owner = password_server
    owner_arn = secrets.create_secret(
        Name="/cdlm/test/database-owner",
        SecretString=json.dumps({"username": owner.user, "password": owner.password}),
    )["ARN"]
    app_arn = secrets.create_secret(
        Name="/cdlm/test/database-app",
        SecretString=json.dumps({"username": "cdlm_app", "password": "app-" + "a" * 30}),
    )["ARN"]
    token_arn = secrets.create_secret(Name="/cdlm/test/token-secret", SecretString=TOKEN)["ARN"]
    host_only = replace(owner, user="", password="")
    env = {
        **aws,
        "DATABASE_URL": database_url(host_only).replace("://@", "://"),
        "CDLM_DATABASE_SECRET_ARN": app_arn,
        "CDLM_TOKEN_SECRET_ARN": token_arn,
        "CDLM_TOKEN_SECRET": "",
        "CDLM_ENV": "test",
        "CDLM_LOG_LEVEL": "WARNING",
    }
    return Stage(owner, secrets, env, app_arn, owner_arn)


@pytest.fixture(scope="module")
def migrated(stage: Stage) -> list[dict[str, Any]]:
    """What the migrate function answered, twice (the second finds nothing to do)."""
    env = {**stage.env, "CDLM_DATABASE_OWNER_SECRET_ARN": stage.owner_secret}
    answers = []
    for _ in range(2):
        result = run_python(
            "from cdlm.lambda_handler import migrate; print(migrate({}, None))", env
        )
        assert result.returncode == 0, result.stderr[-2000:]
        answers.append(ast.literal_eval(result.stdout.strip()))
    return answers


def _password(stage: Stage) -> str:
    value = stage.secrets.get_secret_value(SecretId=stage.app_secret)["SecretString"]
    password: str = json.loads(value)["password"]
    return password


async def _rotate(stage: Stage, password: str, *, in_database: bool = True) -> None:
    """Rotate the app role's password as Secrets Manager's rotation does, then end its
    sessions so the next request needs a new connection."""
    stage.secrets.put_secret_value(
        SecretId=stage.app_secret,
        SecretString=json.dumps({"username": "cdlm_app", "password": password}),
    )
    owner = await connect(stage.owner)
    try:
        if in_database:
            await owner.execute(f"ALTER ROLE cdlm_app PASSWORD '{scram_verifier(password)}'")
        await owner.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'cdlm_app'"
        )
    finally:
        await owner.close()


def _reachable(container: LambdaContainer) -> bool:
    response, _ = container.invoke(http_api_v2_event(QUERY))
    assert response["statusCode"] == 200
    reachable: bool = json.loads(response["body"])["data"]["health"]["databaseReachable"]
    return reachable


def _reachable_again(container: LambdaContainer) -> bool:
    """After the sessions were ended: the first request finds its connection dead (and the
    pool drops it), the next one needs a new connection."""
    _reachable(container)
    return _reachable(container)


async def test_migrate_connects_as_the_owner_and_gives_the_app_role_its_secret(
    stage: Stage, migrated: list[dict[str, Any]]
) -> None:
    first, second = migrated
    assert "0029_database_roles" in first["applied"]
    assert first["app_login_set"] is True
    assert second == {"applied": [], "app_login_set": False}
    app = replace(stage.owner, user="cdlm_app", password=_password(stage))
    connection = await connect(app)
    try:
        assert await connection.fetchval("SELECT current_user") == "cdlm_app"
    finally:
        await connection.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(
            host=app.host, port=app.port, user="cdlm_app", password="wrong", database=app.database
        )


def test_the_app_role_cannot_migrate(stage: Stage, migrated: list[dict[str, Any]]) -> None:
    # Without the owner's secret the migrate function is the app role, which may not.
    result = run_python("from cdlm.lambda_handler import migrate; migrate({}, None)", stage.env)
    assert result.returncode != 0
    assert "may not change the schema" in result.stderr


async def test_a_password_rotated_since_it_was_read_is_read_again_when_refused(
    stage: Stage, migrated: list[dict[str, Any]]
) -> None:
    container = LambdaContainer(stage.owner, extra_env={**stage.env, "CDLM_SECRETS_TTL": "3600"})
    try:
        assert _reachable(container) is True
        await _rotate(stage, "rotated-" + "r" * 30)
        assert _reachable_again(container) is True
    finally:
        log = container.close()
    assert REFUSED in log  # the cached password was refused once, then the new one read
    assert "rotated-" not in log
    assert "app-aaaa" not in log


async def test_a_password_rotated_is_read_again_once_the_ttl_has_passed(
    stage: Stage, migrated: list[dict[str, Any]]
) -> None:
    container = LambdaContainer(stage.owner, extra_env={**stage.env, "CDLM_SECRETS_TTL": "1"})
    try:
        assert _reachable(container) is True
        await _rotate(stage, "ttl-rotated-" + "s" * 30)
        await asyncio.sleep(1.2)
        assert _reachable_again(container) is True
    finally:
        log = container.close()
    assert REFUSED not in log  # the new password was read before any connection needed it


async def test_a_secret_out_of_step_with_the_database_is_refused(
    stage: Stage, migrated: list[dict[str, Any]]
) -> None:
    current = _password(stage)
    container = LambdaContainer(stage.owner, extra_env={**stage.env, "CDLM_SECRETS_TTL": "0"})
    try:
        assert _reachable(container) is True
        await _rotate(stage, "never-set-" + "n" * 30, in_database=False)
        assert _reachable_again(container) is False
    finally:
        container.close()
        await _rotate(stage, current, in_database=False)


def test_the_handler_reads_no_secret_and_loads_no_aws_library_until_the_first_request(
    stage: Stage, migrated: list[dict[str, Any]]
) -> None:
    probe = (
        "import sys\n"
        "from cdlm.lambda_handler import handler\n"
        "from tests.support.lambda_invoke import http_api_v2_event\n"
        "aws = ('boto3', 'botocore', 'aws_lambda_powertools')\n"
        "print([m for m in aws if m in sys.modules])\n"
        f"response = handler(http_api_v2_event({QUERY!r}), None)\n"
        "assert response['statusCode'] == 200, response\n"
        "print(response['body'])\n"
        "print([m for m in aws if m in sys.modules])\n"
    )
    result = run_python(probe, stage.env)
    assert result.returncode == 0, result.stderr[-2000:]
    before, body, after = result.stdout.strip().splitlines()
    assert before == "[]"
    assert json.loads(body)["data"]["health"]["databaseReachable"] is True
    assert after == "['boto3', 'botocore', 'aws_lambda_powertools']"


@pytest.mark.parametrize(
    ("variable", "secret", "problem"),
    [
        ("CDLM_TOKEN_SECRET_ARN", "/cdlm/test/absent", "does not exist"),
        ("CDLM_DATABASE_SECRET_ARN", "/cdlm/test/token-secret", "is not JSON"),
    ],
)
def test_a_missing_or_malformed_secret_stops_the_container_with_one_line(
    stage: Stage, variable: str, secret: str, problem: str
) -> None:
    probe = (
        "from cdlm.lambda_handler import handler\n"
        "from tests.support.lambda_invoke import http_api_v2_event\n"
        f"handler(http_api_v2_event({QUERY!r}), None)\n"
    )
    result = run_python(probe, {**stage.env, variable: secret})
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()  # one line in the function's log, no traceback
    entry = json.loads(line)
    assert entry["level"] == "CRITICAL"
    assert entry["message"] == (
        f"cdlm: configuration error: {variable}: the secret {secret} {problem}"
    )
    assert TOKEN not in result.stderr
