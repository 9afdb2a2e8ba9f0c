"""Counting the SQL statements the application sends, at the asyncpg driver level."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cdlm.db.connection import PooledConnection

_active: list[list[str]] = []


class CountingConnection(PooledConnection):
    """The pool's connection, recording every statement (pool resets included) while a
    recorder is active."""

    def _record(self, query: Any) -> None:
        for statements in _active:
            statements.append(str(query))

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self._record(query)
        return await super().execute(query, *args, **kwargs)

    async def executemany(self, command: str, args: Any, **kwargs: Any) -> Any:
        self._record(command)
        return await super().executemany(command, args, **kwargs)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self._record(query)
        return await super().fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self._record(query)
        return await super().fetchrow(query, *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self._record(query)
        return await super().fetchval(query, *args, **kwargs)


class StatementRecorder:
    """The statements sent while :meth:`recording` is active."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    @contextmanager
    def recording(self) -> Iterator[StatementRecorder]:
        self.statements.clear()
        _active.append(self.statements)
        try:
            yield self
        finally:
            _active.remove(self.statements)
