"""Drive Debian's headless chromium over the DevTools protocol on a pipe (``--remote-debugging-pipe``: commands on
fd 3, answers on fd 4, each a JSON message ended by a NUL byte). Nothing is downloaded and no extra library is
needed: this is the whole client.

DevTools evaluations (``Runtime.evaluate``) are not subject to the page's Content-Security-Policy, so a test can fill
in and submit forms like a user while the page itself may run no script at all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT = 30.0


class BrowserError(RuntimeError):
    pass


class Page:
    """One tab of a running chromium."""

    def __init__(self, process: asyncio.subprocess.Process, commands: int, answers: asyncio.StreamReader) -> None:
        self._process = process
        self._commands = commands
        self._answers = answers
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())
        self._session: str | None = None

    async def _read(self) -> None:
        while True:
            try:
                raw = await self._answers.readuntil(b"\0")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                for future in self._waiting.values():
                    if not future.done():
                        future.set_exception(BrowserError("chromium closed the pipe"))
                return
            message = json.loads(raw[:-1])
            if "id" in message and message["id"] in self._waiting:
                self._waiting.pop(message["id"]).set_result(message)
            else:
                self._events.put_nowait(message)

    async def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> Any:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session and self._session:
            message["sessionId"] = self._session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        answer = await asyncio.wait_for(future, TIMEOUT)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def attach(self) -> None:
        target = await self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
                                   session=False)
        self._session = attached["sessionId"]
        await self.send("Page.enable")
        await self.send("Emulation.setDeviceMetricsOverride",
                        {"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": False})

    async def _loaded(self) -> None:
        while True:
            event = await asyncio.wait_for(self._events.get(), TIMEOUT)
            if event.get("method") == "Page.loadEventFired" and event.get("sessionId") == self._session:
                return

    def _drain(self) -> None:
        while not self._events.empty():
            self._events.get_nowait()

    async def goto(self, url: str) -> None:
        self._drain()
        await self.send("Page.navigate", {"url": url})
        await self._loaded()

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def submit(self, expression: str) -> None:
        """Run ``expression`` (which submits a form or clicks a button) and wait for the next page."""
        self._drain()
        await self.evaluate(expression)
        await self._loaded()

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})
        await asyncio.to_thread(_write, path, base64.b64decode(shot["data"]))

    async def close(self) -> None:
        with contextlib.suppress(BrowserError, TimeoutError, OSError):
            await asyncio.wait_for(self.send("Browser.close", session=False), 5)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@contextlib.asynccontextmanager
async def chromium_page(profile: Path) -> AsyncIterator[Page]:
    """A headless chromium with one attached tab; killed at the end whatever happens."""
    to_browser_read, to_browser_write = os.pipe()
    from_browser_read, from_browser_write = os.pipe()

    def wire() -> None:  # in the child, before exec: the pipes become fds 3 and 4
        os.dup2(to_browser_read, 3)
        os.dup2(from_browser_write, 4)

    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--no-default-browser-check", "--hide-scrollbars", f"--user-data-dir={profile}", "--remote-debugging-pipe",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=wire, pass_fds=(3, 4),
    )
    os.close(to_browser_read)
    os.close(from_browser_write)
    loop = asyncio.get_running_loop()
    answers = asyncio.StreamReader(limit=64 * 1024 * 1024)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(answers),
                                                os.fdopen(from_browser_read, "rb", buffering=0))
    page = Page(process, to_browser_write, answers)
    try:
        await page.attach()
        yield page
    finally:
        await page.close()
        transport.close()
        os.close(to_browser_write)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()
