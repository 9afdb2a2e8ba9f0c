"""GraphQL over HTTP conformance: the ``graphql-http`` server audit against a real server.

The API runs as ``cdlm serve`` in a subprocess on loopback (a throw-away database); the npm
package ``graphql-http`` is installed into a temporary directory (never into the repository) and
its ``auditServer`` is run with node. Prints the counts of ok / notice / warn / error and the
names of every audit that did not pass. Notices are the spec's optional (MAY) items cdlm
declines on purpose: queries over GET are refused.

Run alone with ``python -m bench.graphql_http_audit``; needs ``node`` and ``npm`` on the PATH
and access to the npm registry.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
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

from bench.support import benchmark_database, report
from cdlm.config import DatabaseTarget

ROOT = Path(__file__).resolve().parents[1]
GRAPHQL_HTTP = "graphql-http@1"

_AUDIT_SCRIPT = r"""
const { auditServer } = require('graphql-http');
auditServer({ url: process.argv[2] }).then((results) => {
  const shown = results.map(({ id, name, status, reason }) => ({ id, name, status, reason }));
  process.stdout.write(JSON.stringify(shown));
});
"""


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


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"the GraphQL over HTTP audit needs {name} on the PATH")
    return path


def _install_graphql_http(workdir: Path) -> None:
    (workdir / "package.json").write_text('{"private": true}\n')  # npm stays in this directory
    subprocess.run(
        [
            _tool("npm"),
            "install",
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            GRAPHQL_HTTP,
        ],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )


def audit(url: str) -> list[dict[str, str]]:
    """The ``graphql-http`` server audit of ``url`` (one dict per audit)."""
    with tempfile.TemporaryDirectory(prefix="cdlm-graphql-http-") as workdir:
        _install_graphql_http(Path(workdir))
        script = Path(workdir) / "audit.js"
        script.write_text(_AUDIT_SCRIPT)
        result = subprocess.run(
            [_tool("node"), str(script), url],
            cwd=workdir,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
    results: list[dict[str, str]] = json.loads(result.stdout)
    return results


async def run() -> None:
    async with benchmark_database() as target:
        with served(target) as (base, _):
            results = await asyncio.to_thread(audit, f"{base}/graphql")
    counts = Counter(result["status"] for result in results)
    report(
        "graphql-http server audit",
        {status: counts.get(status, 0) for status in ("ok", "notice", "warn", "error")},
    )
    for status in ("error", "warn", "notice"):
        for result in results:
            if result["status"] == status:
                print(f"  {status:<6} {result['id']} {result['name']}", flush=True)


if __name__ == "__main__":
    asyncio.run(run())
