"""Headless Chromium for the dashboard's tests, driven over the DevTools protocol (a websocket and
JSON; no driver binary, no npm). Debian's ``chromium`` package provides the browser; without it the
browser tests skip, saying how to install it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import websockets

from tests.helpers import eventually, stop_process, temp_dir

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage", "--remote-debugging-port=0",
         "--window-size=1400,1800", "--hide-scrollbars", "--mute-audio")


def chromium_binary() -> str | None:
    explicit = os.environ.get("ADRSTACK_CHROMIUM")
    if explicit:
        return explicit
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> None:
    """Skips the test without a Chromium; in CI (which installs it) fails instead."""
    if chromium_binary() is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("no chromium: .ci/run installs Debian's chromium; install it with apt-get install -y chromium")
    pytest.skip("no chromium on PATH: apt-get install -y chromium (Debian) to run the browser tests")


class BrowserError(AssertionError):
    pass


class Page:
    """One tab: evaluate JavaScript, wait for a condition, take a screenshot, collect console errors."""

    def __init__(self, ws: Any):
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.console_errors: list[str] = []
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if "id" in message and message["id"] in self.pending:
                self.pending.pop(message["id"]).set_result(message)
            elif message.get("method") == "Runtime.exceptionThrown":
                details = message["params"]["exceptionDetails"]
                self.console_errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif message.get("method") == "Runtime.consoleAPICalled" and message["params"]["type"] == "error":
                self.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                    for a in message["params"]["args"]))
            elif message.get("method") == "Log.entryAdded" and message["params"]["entry"]["level"] == "error":
                entry = message["params"]["entry"]
                self.console_errors.append(f"{entry.get('url', '')}: {entry['text']}")

    async def send(self, method: str, **params: Any) -> dict:
        message_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[message_id] = future
        await self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer["result"]

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30.0, what: str | None = None) -> Any:
        """Polls a JavaScript expression until it is truthy; its value."""
        try:
            return await eventually(lambda: self.evaluate(expression), timeout, interval=0.1,
                                    message=f"{what or expression}")
        except AssertionError as e:
            raise BrowserError(f"{e}; console errors: {self.console_errors}") from None

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", what=f"{url} to load")

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@asynccontextmanager
async def chromium() -> AsyncIterator[Page]:
    """A headless Chromium with one open tab, stopped (and its profile removed) afterwards."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install -y chromium)")
    profile = temp_dir("chromium")
    # Its own process group: Chromium's helpers (zygote, renderers, crashpad) go with it.
    # Chromium keeps its singleton socket dir in TMPDIR: inside the profile, removed with it.
    env = {**os.environ, "TMPDIR": str(profile)}
    process = await asyncio.create_subprocess_exec(binary, *FLAGS, f"--user-data-dir={profile}", "about:blank",
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                   start_new_session=True, env=env)
    try:
        port = await _devtools_port(profile, process)
        targets = await asyncio.to_thread(
            lambda: json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read()))
        page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with websockets.connect(page_url, max_size=64 * 1024 * 1024) as ws:
            page = Page(ws)
            for domain in ("Page", "Runtime", "Log"):
                await page.send(f"{domain}.enable")
            try:
                yield page
            finally:
                page.reader.cancel()
    finally:
        try:
            await stop_process(process)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await _remove(profile)


async def _remove(path: Path, timeout: float = 10.0) -> None:
    """Removes the profile, retrying while a helper process that has not yet died still writes to it
    (one left behind is reported by the session's temp-dir check)."""
    def removed() -> bool:
        shutil.rmtree(path, ignore_errors=True)
        return not path.exists()

    with contextlib.suppress(AssertionError):
        await eventually(removed, timeout, interval=0.1, message=f"{path} removed")


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process, timeout: float = 30.0) -> int:
    """Chromium writes the port it took (--remote-debugging-port=0) to DevToolsActivePort."""
    marker = profile / "DevToolsActivePort"

    def port() -> int | None:
        assert process.returncode is None, f"chromium exited with {process.returncode}"
        first = marker.read_text().splitlines()[:1] if marker.exists() else []
        return int(first[0]) if first and first[0].strip().isdigit() else None

    return await eventually(port, timeout, interval=0.05, message="chromium's DevTools port")
