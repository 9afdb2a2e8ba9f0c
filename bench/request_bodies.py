"""Server memory under large request bodies: RSS of ``cdlm serve`` before and after each wave.

The API runs in a subprocess on loopback (a throw-away database). Each wave sends 5 concurrent
anonymous POSTs to ``/graphql``: bodies exactly at ``CDLM_MAX_BODY_BYTES`` (valid requests,
served), then 50 MB bodies with a ``Content-Length`` (refused before they are read), then
50 MB bodies without one (chunked: refused as soon as they pass the limit). Bodies are
generated while they are sent; the client stops sending once the server has answered.
Prints the answers' statuses, the server's resident memory after each wave and its peak.
A ``reset`` is a refusal the client did not get to read: the server answered and closed the
connection while body bytes it never read were still arriving, so the kernel reset it.

Run alone with ``python -m bench.request_bodies``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.graphql_http_audit import served
from bench.support import benchmark_database, report

CONCURRENT = 5
MAX_BODY_BYTES = 1_048_576
LARGE = 50 * 1_000_000
CHUNK = 64 * 1024
_HEAD = b'{"query": "{ health { ok } }", "variables": {"pad": "'
_TAIL = b'"}}'


def _body(size: int) -> Iterator[bytes]:
    """A valid GraphQL request of exactly ``size`` bytes, in chunks."""
    yield _HEAD
    padding = size - len(_HEAD) - len(_TAIL)
    block = b"x" * CHUNK
    while padding > 0:
        yield block[: min(padding, CHUNK)]
        padding -= CHUNK
    yield _TAIL


def _memory_mb(pid: int) -> dict[str, float]:
    """Resident and peak resident memory of process ``pid`` (Linux), in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}


async def _post(port: int, size: int, *, declared: bool) -> str:
    """POST a body of ``size`` bytes; the answer's status (or how the connection ended)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = f"Content-Length: {size}" if declared else "Transfer-Encoding: chunked"
    writer.write(
        (
            "POST /graphql HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"{framing}\r\nConnection: close\r\n\r\n"
        ).encode()
    )
    answer = asyncio.create_task(reader.readline())
    try:
        for chunk in _body(size):
            if answer.done():
                break  # answered early: the rest of the body is not wanted
            writer.write(chunk if declared else b"%x\r\n%b\r\n" % (len(chunk), chunk))
            await writer.drain()
        else:
            if not declared:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
    except ConnectionError:
        pass  # the server closed the connection after answering
    try:
        status_line = await asyncio.wait_for(answer, timeout=120)
    except (ConnectionError, TimeoutError):
        return "reset"
    finally:
        writer.close()
    parts = status_line.split()
    return parts[1].decode() if len(parts) > 1 else "closed"


async def _wave(port: int, pid: int, name: str, size: int, *, declared: bool) -> None:
    started = time.perf_counter()
    statuses = await asyncio.gather(
        *(_post(port, size, declared=declared) for _ in range(CONCURRENT))
    )
    seconds = round(time.perf_counter() - started, 2)
    answers = {f"status_{status}": count for status, count in sorted(Counter(statuses).items())}
    report(name, {**answers, "seconds": seconds, **_memory_mb(pid)})


async def run() -> None:
    async with benchmark_database() as target:
        with served(target, CDLM_MAX_BODY_BYTES=str(MAX_BODY_BYTES)) as (base, process):
            port = int(base.rsplit(":", 1)[1])
            async with httpx.AsyncClient(base_url=base) as http:
                for _ in range(20):
                    await http.post("/graphql", json={"query": "{ health { ok } }"})
            report("bodies: server idle", _memory_mb(process.pid))
            await _wave(
                port, process.pid, "bodies: 5 x 1 MiB (the limit)", MAX_BODY_BYTES, declared=True
            )
            await _wave(
                port, process.pid, "bodies: 5 x 50 MB, Content-Length", LARGE, declared=True
            )
            await _wave(port, process.pid, "bodies: 5 x 50 MB, chunked", LARGE, declared=False)


if __name__ == "__main__":
    asyncio.run(run())
