"""Lambda cold start (import + first invocation) and warm invocation latency.

Each container is a fresh Python process that imports ``cdlm.lambda_handler`` and calls the
handler with API Gateway HTTP API events, as the Lambda runtime does. Containers run with
every module's bytecode at hand, as the package ships it (``infra/build_lambda.py``), whatever
this machine's ``PYTHONDONTWRITEBYTECODE``; a second set runs without any bytecode, as a
package without it would on Lambda's read-only code directory. A third set reads the database
login and the token secret from Secrets Manager (a moto server on the loopback, so the figure
is the libraries' and the reads' cost without the network's: in a region add one round trip
to the Secrets Manager endpoint, ~10-30 ms, as the secrets are read at once).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdlm.config import DatabaseTarget

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS = 5
WARM_INVOCATIONS = 300

_PROBE = r"""
import json, sys, time
started = time.perf_counter()
from cdlm.lambda_handler import handler
imported = time.perf_counter()
event = {
    "version": "2.0", "routeKey": "POST /graphql", "rawPath": "/graphql", "rawQueryString": "",
    "headers": {"content-type": "application/json", "host": "bench.example"},
    "requestContext": {"http": {"method": "POST", "path": "/graphql", "protocol": "HTTP/1.1",
                                "sourceIp": "203.0.113.7", "userAgent": "bench"},
                       "requestId": "benchmark-request", "routeKey": "POST /graphql",
                       "stage": "$default", "accountId": "1", "apiId": "a"},
    "body": json.dumps({"query": "{ health { ok } }"}), "isBase64Encoded": False,
}
samples = []
for _ in range(int(sys.argv[1]) + 1):
    t = time.perf_counter()
    response = handler(event, None)
    samples.append((time.perf_counter() - t) * 1000)
    assert response["statusCode"] == 200, response
print(json.dumps({"import_ms": (imported - started) * 1000, "first_ms": samples[0],
                  "warm_ms": samples[1:]}))
"""


def _url(target: DatabaseTarget) -> str:
    if target.host.startswith("/"):
        user = f"{target.user}@" if target.user else ""
        return f"postgresql://{user}/{target.database}?host={target.host}"
    auth = f"{target.user}:{target.password}" if target.password else target.user
    return f"postgresql://{auth}@{target.host}:{target.port}/{target.database}"


def containers(
    env: dict[str, str], count: int, warm_each: int, prelude: str = ""
) -> tuple[list[float], list[float], list[float]]:
    """``count`` fresh interpreters importing the handler and invoking it ``1 + warm_each``
    times: (import ms, first invocation ms, warm invocation ms). ``prelude`` is Python code run
    first (it may choose where cdlm is imported from); ``env`` holds the settings."""
    imports: list[float] = []
    firsts: list[float] = []
    warm: list[float] = []
    for _ in range(count):
        result = subprocess.run(
            [sys.executable, "-c", prelude + _PROBE, str(warm_each)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"lambda probe failed:\n{result.stderr[-3000:]}")
        numbers = json.loads(result.stdout)
        imports.append(numbers["import_ms"])
        firsts.append(numbers["first_ms"])
        warm.extend(numbers["warm_ms"])
    return imports, firsts, warm


async def run() -> None:
    from bench.support import benchmark_database, percentiles, report

    async with benchmark_database() as target:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CDLM_")
            and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
        }
        env.update(
            {
                "DATABASE_URL": _url(target),
                "CDLM_ENV": "production",
                "CDLM_TOKEN_SECRET": "b" * 40,
                "CDLM_LEDGER_KEY": "l" * 40,
                "CDLM_NOTIFY_FROM": "privacy@example.com",
                "CDLM_LOG_LEVEL": "WARNING",
            }
        )
        with tempfile.TemporaryDirectory(prefix="cdlm-bench-pyc-") as bytecode:
            with_bytecode = {**env, "PYTHONPYCACHEPREFIX": bytecode}
            containers(with_bytecode, 1, 0)  # not counted: compiles every module once
            imports, firsts, warm = containers(
                with_bytecode, CONTAINERS, WARM_INVOCATIONS // CONTAINERS
            )
        report("lambda cold: import handler", percentiles(imports))
        report("lambda cold: first invocation", percentiles(firsts))
        report("lambda warm invocation", percentiles(warm))
        with tempfile.TemporaryDirectory(prefix="cdlm-bench-no-pyc-") as empty:
            no_bytecode = {**env, "PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
            imports, firsts, _ = containers(no_bytecode, CONTAINERS, 0)
        report("lambda cold, no bytecode: import handler", percentiles(imports))
        report("lambda cold, no bytecode: first invocation", percentiles(firsts))
        with (
            tempfile.TemporaryDirectory(prefix="cdlm-bench-pyc-") as bytecode,
            _secrets(target) as names,
        ):
            with_secrets = {**env, **names, "PYTHONPYCACHEPREFIX": bytecode}
            del with_secrets["CDLM_TOKEN_SECRET"]
            with_secrets["DATABASE_URL"] = _url(replace(target, user="", password=""))
            containers(with_secrets, 1, 0)
            imports, firsts, warm = containers(
                with_secrets, CONTAINERS, WARM_INVOCATIONS // CONTAINERS
            )
        report("lambda cold, secrets: import handler", percentiles(imports))
        report("lambda cold, secrets: first invocation", percentiles(firsts))
        report("lambda warm, secrets: invocation", percentiles(warm))


@contextmanager
def _secrets(target: DatabaseTarget) -> Iterator[dict[str, str]]:
    """A Secrets Manager (moto server) holding the app role's login and the token secret;
    yields the environment that names them."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    aws = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    try:
        client = boto3.client(
            "secretsmanager",
            endpoint_url=aws["AWS_ENDPOINT_URL"],
            region_name="eu-west-1",
            aws_access_key_id="bench",
            aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        )
        login = json.dumps({"username": "cdlm_app", "password": "bench-" + "p" * 30})
        database = client.create_secret(Name="/cdlm/bench/database-app", SecretString=login)
        token = client.create_secret(Name="/cdlm/bench/token-secret", SecretString="b" * 40)
        yield {
            **aws,
            "CDLM_DATABASE_SECRET_ARN": database["ARN"],
            "CDLM_TOKEN_SECRET_ARN": token["ARN"],
        }
    finally:
        server.stop()
