"""A real headless Chromium (Debian's ``chromium``), driven over the DevTools protocol.

The page tests look at what a person's browser shows, not at our HTML text: Chromium parses the
page, runs (or is forbidden to run) its script, applies its Content-Security-Policy, and the
tests read the resulting DOM, drive the filter form, record every request the page makes, and
take screenshots.

Chromium runs with a fresh profile, no background networking and a host resolver that resolves
nothing but loopback, so a page under test cannot reach past 127.0.0.1 even if it tried. The
protocol is spoken over the browser's own WebSocket (``--remote-debugging-port=0``: Chromium
picks a free port and writes it to ``DevToolsActivePort`` in the profile), one connection for
every page, one flat session per page.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
)
START_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0
MISSING = "chromium is not on PATH (install Debian's chromium package; ./dev test does)"


class BrowserError(RuntimeError):
    """Chromium did not start, or a DevTools call failed."""


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return "file://"
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class _Connection:
    socket: ClientConnection
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    events: list[dict[str, Any]] = field(default_factory=list)

    def _receive(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError("timed out waiting for Chromium")
        try:
            message = json.loads(self.socket.recv(timeout=remaining))
        except TimeoutError:
            raise BrowserError("timed out waiting for Chromium") from None
        assert isinstance(message, dict)
        return message

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        request: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        self.socket.send(json.dumps(request))
        deadline = time.monotonic() + CALL_TIMEOUT
        while True:
            message = self._receive(deadline)
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result = message.get("result", {})
                assert isinstance(result, dict)
                return result
            if "method" in message:
                self.events.append(message)

    def wait_for(self, session: str, method: str, since: int, timeout: float) -> dict[str, Any]:
        """The first ``method`` event of ``session`` at or after event number ``since``."""
        deadline = time.monotonic() + timeout
        position = since
        while True:
            while position < len(self.events):
                event = self.events[position]
                position += 1
                if event.get("sessionId") == session and event.get("method") == method:
                    return event
            self.events.append(self._receive(deadline))


class Page:
    """One tab. ``requests`` lists every URL the page asked for since it was opened."""

    def __init__(self, connection: _Connection, session: str) -> None:
        self._connection = connection
        self.session = session

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self._connection.call(method, self.session, **params)

    def goto(self, url: str, timeout: float = 30.0) -> None:
        mark = len(self._connection.events)
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url}: {result['errorText']}")
        self._connection.wait_for(self.session, "Page.loadEventFired", mark, timeout)

    @property
    def requests(self) -> list[str]:
        return [
            event["params"]["request"]["url"]
            for event in self._connection.events
            if event.get("sessionId") == self.session
            and event.get("method") == "Network.requestWillBeSent"
        ]

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (DevTools may run it with JS disabled)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def dom(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML"))

    def set_viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )

    def set_color_scheme(self, scheme: str) -> None:
        self.call(
            "Emulation.setEmulatedMedia",
            features=[{"name": "prefers-color-scheme", "value": scheme}],
        )

    def screenshot_element(self, selector: str, path: Path, margin: int = 8) -> tuple[int, int]:
        """A PNG of one element (plus ``margin`` px around it); returns its size."""
        box = self.evaluate(
            f"(function () {{ var r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect();"
            " return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; })()"
        )
        left, top, width, height = (round(v) for v in box)
        clip = {
            "x": max(left - margin, 0),
            "y": max(top - margin, 0),
            "width": width + 2 * margin,
            "height": height + 2 * margin,
        }
        return self._capture(path, clip)

    def _capture(self, path: Path, clip: dict[str, int]) -> tuple[int, int]:
        data = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={**clip, "scale": 1},
        )["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return clip["width"], clip["height"]

    def screenshot(self, path: Path, *, max_height: int = 4000) -> tuple[int, int]:
        """A PNG of the page from the top, as tall as its content (capped); returns its size."""
        width = int(self.evaluate("document.documentElement.clientWidth"))
        height = min(int(self.evaluate("document.documentElement.scrollHeight")), max_height)
        return self._capture(path, {"x": 0, "y": 0, "width": width, "height": height})


class Browser:
    """A running headless Chromium; ``page()`` opens a fresh tab."""

    def __init__(self, process: subprocess.Popen[bytes], connection: _Connection) -> None:
        self.process = process
        self._connection = connection

    def page(
        self,
        *,
        width: int = 1280,
        height: int = 900,
        mobile: bool = False,
        javascript: bool = True,
        color_scheme: str = "light",
    ) -> Page:
        target = self._connection.call("Target.createTarget", url="about:blank")["targetId"]
        session = self._connection.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        page = Page(self._connection, session)
        page.call("Page.enable")
        page.call("Network.enable")
        page.call("Runtime.enable")
        # Record Content-Security-Policy violations: an attempt the policy blocked never
        # becomes a request, so it would not show in ``requests``.
        page.call(
            "Page.addScriptToEvaluateOnNewDocument",
            source=(
                "window.__violations = [];"
                "document.addEventListener('securitypolicyviolation', function (e) {"
                " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI); });"
            ),
        )
        page.set_viewport(width, height, mobile=mobile)
        page.set_color_scheme(color_scheme)
        if not javascript:
            page.call("Emulation.setScriptExecutionDisabled", value=True)
        return page


@contextlib.contextmanager
def chromium(workdir: Path) -> Iterator[Browser]:
    """Start Chromium with a fresh profile under ``workdir``; stop it on exit."""
    binary = chromium_binary()
    if binary is None:
        raise BrowserError(MISSING)
    profile = workdir / "chromium-profile"
    profile.mkdir(parents=True)
    log = (workdir / "chromium.log").open("wb")
    process = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise BrowserError(
                    f"chromium did not start (see {workdir / 'chromium.log'}); "
                    f"exit code {process.poll()}"
                )
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=10) as socket:
            yield Browser(process, _Connection(socket))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
