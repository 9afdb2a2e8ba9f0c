"""The readable copy of a person's data, opened in a real headless Chromium from a real server:
it renders, its inline style is allowed by its own Content-Security-Policy, and nothing hostile
in the data runs. CI installs Chromium (``.ci/run``) and sets ``CDLM_REQUIRE_BROWSER``, so there
they fail rather than skip; elsewhere they are skipped when Chromium is not installed."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette

from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.test_export_html import HOSTILE_REASON, HOSTILE_VALUE, _exported

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CDLM_REQUIRE_BROWSER"),
    reason="Chromium is not installed",
)
#: How the browser is started: headless, and kept off the network it has no business with.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


@pytest.fixture
async def server(app: Starlette) -> AsyncIterator[str]:
    """The app on a loopback port, served by uvicorn in this event loop."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    while not served.started:  # noqa: ASYNC110 - uvicorn tells only by this flag
        await asyncio.sleep(0.02)
    port = served.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        await task


async def _chromium(*arguments: str) -> tuple[str, str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="cdlm-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            *arguments,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _pixels(png: bytes) -> bytes:
    """The decompressed image data of a PNG (enough to tell a drawn page from a blank one)."""
    position, data = 8, b""
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        if kind == b"IDAT":
            data += png[position + 8 : position + 8 + length]
        position += 12 + length
    return zlib.decompress(data)


async def test_the_copy_renders_in_a_browser_and_nothing_in_it_runs(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
    server: str,
) -> None:
    link, _ = await _exported(gql, admin_headers, vault, caplog)
    dom, log = await _chromium("--dump-dom", f"{server}{link}")
    assert "<h1" in dom
    assert "juniper.vale@example.com" in dom
    # Hostile values are there as text; no element of theirs was made, no script ran.
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in dom
    assert "<script" not in dom.lower()
    assert "<img" not in dom.lower()
    assert HOSTILE_VALUE not in dom
    assert HOSTILE_REASON not in dom
    # The page's own inline style is allowed by its policy; nothing else was tried.
    assert "Refused to" not in log
    assert "Content Security Policy" not in log


async def test_the_copy_draws_a_page(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
    server: str,
    short_tmp: Path,
) -> None:
    link, _ = await _exported(gql, admin_headers, vault, caplog)
    shot = short_tmp / "copy.png"
    await _chromium(f"--screenshot={shot}", "--window-size=1000,800", f"{server}{link}")
    pixels = _pixels(shot.read_bytes())
    assert len(set(pixels)) > 8  # text and table rules drawn, not one flat colour
