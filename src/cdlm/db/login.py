"""Connecting with a login that rotates (a secret read at run time, :mod:`cdlm.aws_secrets`).

Each new connection takes the login's current user name and password; when the server refuses
them, the login is read again (the secret was rotated since it was cached) and the connection
tried once more with what it holds now.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

Login = Callable[[bool], tuple[str, str]]


def login_connect(login: Login) -> Callable[..., Awaitable[asyncpg.Connection]]:
    """An ``asyncpg.connect`` that logs in with ``login`` (the pool's ``connect`` hook)."""

    async def connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        kwargs["user"], kwargs["password"] = login(False)
        try:
            return await asyncpg.connect(*args, **kwargs)
        except asyncpg.InvalidPasswordError:
            log.warning("database login refused; reading its secret again (rotated?)")
        kwargs["user"], kwargs["password"] = login(True)
        return await asyncpg.connect(*args, **kwargs)

    return connect
