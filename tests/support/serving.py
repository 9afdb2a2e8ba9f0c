"""An ASGI app served over real HTTP on loopback, for clients outside the process (a browser,
node)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """``app`` on a free loopback port, served by uvicorn in this event loop; yields its origin."""
    config = uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="off")
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    while not served.started:  # uvicorn tells only by this flag
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    port = served.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        served.should_exit = True
        await task
