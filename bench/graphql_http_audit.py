"""GraphQL over HTTP conformance: the ``graphql-http`` server audit against a real server.

The API runs as ``cdlm serve`` in a subprocess on loopback (a throw-away database); the npm
package ``graphql-http``, pinned in ``tests/http_audit/``, is installed with ``npm ci`` into the
user's cache directory (never into the repository) and its ``auditServer`` is run with node, as
``tests/test_http_audit.py`` runs it. Prints the counts of ok / notice / warn / error and the
names of every audit that did not pass. Notices are the spec's optional (MAY) items cdlm
declines on purpose: queries over GET are refused.

Run alone with ``python -m bench.graphql_http_audit``; needs ``node`` and ``npm`` on the PATH
and access to the npm registry the first time.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.support.http_audit import run_audit

from bench.support import benchmark_database, report
from cdlm.config import DatabaseTarget

ROOT = Path(__file__).resolve().parents[1]


def database_url(target: DatabaseTarget) -> str:
    """A ``DATABASE_URL`` for ``target`` (Unix-socket hosts go in the query string)."""
    credentials = target.user + (f":{target.password}" if target.password else "")
    if target.host.startswith("/"):
        return f"postgresql://{credentials}@/{target.database}?host={target.host}"
    return f"postgresql://{credentials}@{target.host}:{target.port}/{target.database}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def served(target: DatabaseTarget, **settings: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``cdlm serve`` on a free loopback port, on ``target``; yields its base URL and process."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="cdlm-bench-serve-") as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDLM_")}
        env.update(
            {
                "DATABASE_URL": database_url(target),
                "CDLM_ENV": "test",
                "CDLM_TOKEN_SECRET": "b" * 40,
                "CDLM_DATA_DIR": data_dir,
                "CDLM_LOG_LEVEL": "WARNING",
                **settings,
            }
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "cdlm", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_healthy(base, process)
            yield base, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_healthy(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            raise RuntimeError(f"cdlm serve stopped: {stderr[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("cdlm serve did not become healthy within 60 s")


def audit(url: str) -> list[tuple[str, str, str]]:
    """The ``graphql-http`` server audit of ``url``: (status, id, name) per audit."""
    _, results, _ = run_audit(url)
    return [_split(line) for line in results]


def _split(line: str) -> tuple[str, str, str]:
    status, identifier, name = line.split(maxsplit=2)
    return status, identifier, name


async def run() -> None:
    async with benchmark_database() as target:
        with served(target) as (base, _):
            results = await asyncio.to_thread(audit, f"{base}/graphql")
    counts = Counter(status for status, _, _ in results)
    report(
        "graphql-http server audit",
        {status: counts.get(status, 0) for status in ("ok", "notice", "warn", "error")},
    )
    for shown in ("error", "warn", "notice"):
        for status, identifier, name in results:
            if status == shown:
                print(f"  {status:<6} {identifier} {name}", flush=True)


if __name__ == "__main__":
    asyncio.run(run())
