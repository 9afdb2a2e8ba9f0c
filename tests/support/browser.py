"""Headless Chromium driven through the DevTools protocol, for tests of what a browser does.

Debian's Chromium is started with ``--remote-debugging-pipe``: commands go to its file
descriptor 3, answers and events come from its descriptor 4, each a JSON message ended by a NUL
byte. No driver and no browser download; only the few commands the tests use. Every page records
the requests it made, what it logged and the Content-Security-Policy violations it reported.

CI installs Chromium and sets ``CDLM_REQUIRE_BROWSER`` (``.ci/run``): there these tests fail
rather than skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Skips a test where Chromium is missing, unless browser tests are required (CI).
requires_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CDLM_REQUIRE_BROWSER"),
    reason="Chromium is not installed",
)
#: Headless, and kept off the network it has no business with (as in the other browser tests).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
)
#: Runs in every document before its own scripts (the DevTools protocol is not bound by CSP).
_WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


class BrowserError(RuntimeError):
    """The browser answered a command with an error, or a script in the page threw."""


class Page:
    """One tab, attached to its own DevTools session."""

    def __init__(self, browser: Browser, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.send(method, params, session_id=self.session_id)

    @property
    def requests(self) -> list[str]:
        """URLs of every request the page made (documents, scripts, fetches...)."""
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event["method"] == "Network.requestWillBeSent"
        ]

    @property
    def log(self) -> list[str]:
        """What the browser and the page logged: console calls, errors, security messages."""
        lines = []
        for event in self.events:
            params = event["params"]
            if event["method"] == "Log.entryAdded":
                entry = params["entry"]
                lines.append(f"{entry['level']} {entry['source']}: {entry['text']}")
            elif event["method"] == "Runtime.consoleAPICalled":
                text = " ".join(
                    str(arg.get("value", arg.get("description"))) for arg in params["args"]
                )
                lines.append(f"console.{params['type']}: {text}")
            elif event["method"] == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                lines.append(f"exception: {details.get('exception', {}).get('description')}")
        return lines

    async def violations(self) -> list[str]:
        """The Content-Security-Policy violations the current document reported."""
        found: list[str] = await self.evaluate("window.__violations || []")
        return found

    async def goto(self, url: str, timeout: float = 30) -> None:
        """Open ``url`` and wait until the document and its files have loaded."""
        seen = len(self.events)
        answer = await self.send("Page.navigate", url=url)
        if answer.get("errorText"):
            raise BrowserError(f"{url}: {answer['errorText']}")
        await self.wait_for_event(lambda e: e["method"] == "Page.loadEventFired", seen, timeout)

    async def wait_for_event(
        self, matches: Callable[[dict[str, Any]], bool], since: int = 0, timeout: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[since:]:
                if matches(event):
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError("the browser did not send the awaited event")
            await asyncio.sleep(0.05)

    async def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page (promises are awaited)."""
        answer = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details["text"])
        return answer["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """The value of ``expression`` once it is truthy (checked every 50 ms)."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"never true in the page: {expression}\n" + "\n".join(self.log))
            await asyncio.sleep(0.05)


class Browser:
    """A headless Chromium process and its DevTools connection (see the module)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.WriteTransport | None = None
        self._reading: asyncio.Task[None] | None = None
        self._profile = tempfile.mkdtemp(prefix="cdlm-chromium-")

    async def start(self) -> None:
        assert CHROMIUM is not None, "Chromium is not installed"
        commands_in, commands_out = os.pipe()  # we write, Chromium reads on 3
        answers_in, answers_out = os.pipe()  # Chromium writes on 4, we read

        def onto_3_and_4() -> None:  # in the child, before exec
            high_in = fcntl.fcntl(commands_in, fcntl.F_DUPFD, 10)
            high_out = fcntl.fcntl(answers_out, fcntl.F_DUPFD, 10)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self._process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            *FLAGS,
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            close_fds=False,  # every other descriptor of ours is close-on-exec
            preexec_fn=onto_3_and_4,  # dup2 only
        )
        os.close(commands_in)
        os.close(answers_out)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 26)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(answers_in, "rb", buffering=0)
        )
        self._writer, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(commands_out, "wb", buffering=0)
        )
        self._reading = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await reader.readuntil(b"\0")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            message = json.loads(raw[:-1])
            if "id" in message:
                waiting = self._waiting.pop(message["id"], None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(message)
            elif (page := self._pages.get(message.get("sessionId", ""))) is not None:
                page.events.append(message)
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(BrowserError("the browser went away"))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session_id: str | None = None
    ) -> dict[str, Any]:
        assert self._writer is not None
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[number] = answer
        self._writer.write(json.dumps(message).encode() + b"\0")
        reply = await asyncio.wait_for(answer, timeout=60)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def new_page(self) -> Page:
        """A new tab, recording its requests, log and policy violations."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        self._pages[page.session_id] = page
        for domain in ("Page", "Runtime", "Log", "Network"):
            await page.send(f"{domain}.enable")
        await page.send("Page.addScriptToEvaluateOnNewDocument", source=_WATCH_VIOLATIONS)
        return page

    async def close(self) -> None:
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(BrowserError, TimeoutError):
                await asyncio.wait_for(self.send("Browser.close"), timeout=10)
            try:
                await asyncio.wait_for(self._process.wait(), timeout=10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._writer is not None:
            self._writer.close()
        if self._reading is not None:
            await self._reading
        shutil.rmtree(self._profile, ignore_errors=True)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium for the block."""
    browser = Browser()
    try:
        await browser.start()
        yield browser
    finally:
        await browser.close()
