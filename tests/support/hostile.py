"""A hostile registry on 127.0.0.1 for tests: a scriptable HTTP server, and a fault-injecting
proxy in front of the real docker-registry.

Both run an asyncio server on their own thread (so synchronous CLI tests and async tests can
use them alike) and speak raw HTTP/1.1 over sockets, so they can do what a well-behaved server
library will not: drip a body one byte at a time, hang after the headers, lie in
``Content-Length``, send a gzip bomb with ``Content-Encoding``, redirect anywhere. Every
request they receive is recorded (method, path, headers, body), so a test can assert which
secrets reached which origin.

:class:`HostileServer` answers with a script: a handler ``(Request) -> Response``.
:class:`FaultProxy` forwards every request to a real registry and lets a rule rewrite the
real answer (or replace it) before the client sees it: what a real registry cannot be made
to do (429, 5xx, drips, compression, cut connections) injected on top of real content.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Self

import httpx


@dataclass(frozen=True)
class Request:
    """What a client sent; header names lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def carries(self, secret: str) -> bool:
        """Whether ``secret`` appears anywhere in the request, plain or base64 (basic auth)."""
        blob = " ".join(f"{k}: {v}" for k, v in self.headers.items()).encode() + self.body
        if secret.encode() in blob or secret.encode() in self.path.encode():
            return True
        for value in self.headers.values():
            scheme, _, encoded = value.partition(" ")
            if scheme.lower() == "basic":
                with contextlib.suppress(ValueError):
                    if secret in base64.b64decode(encoded).decode("utf-8", "replace"):
                        return True
        return False


@dataclass
class Response:
    """A scripted answer.

    ``drip``: seconds between single body bytes (None: send at once). ``hang``: send the
    headers, then nothing until the client gives up. ``cut``: send this many body bytes, then
    close. ``headers`` may lie about the body (Content-Length is only added when absent).
    """

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    drip: float | None = None
    hang: bool = False
    cut: int | None = None

    @classmethod
    def json(cls, status: int, doc: Any, headers: Sequence[tuple[str, str]] = ()) -> Response:
        import json

        body = json.dumps(doc).encode()
        return cls(status, [("Content-Type", "application/json"), *headers], body)


Handler = Callable[[Request], "Response | Awaitable[Response]"]

_REASONS = {200: "OK", 301: "Moved", 302: "Found", 307: "Temporary Redirect",
            308: "Permanent Redirect", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Unavailable"}


class _LoopThread:
    """An event loop on a daemon thread, for servers the code under test runs against."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Awaitable[Any]) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return future.result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


class HostileServer:
    """A scripted HTTP server on 127.0.0.1; ``requests`` records everything it received."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self._loop = _LoopThread()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> Self:
        async def start() -> asyncio.Server:
            return await asyncio.start_server(self._handle, "127.0.0.1", 0)

        self._server = self._loop.call(start())
        return self

    def __exit__(self, *_: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.close()

        with contextlib.suppress(Exception):
            self._loop.call(stop())
        self._loop.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def received(self, secret: str) -> list[Request]:
        """The recorded requests that carry ``secret``."""
        return [r for r in self.requests if r.carries(secret)]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                answer = self.handler(request)
                response = await answer if inspect.isawaitable(answer) else answer
                await _write_response(writer, request, response)
                if response.hang or response.cut is not None or response.drip is not None:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, headers, body)


async def _write_response(
    writer: asyncio.StreamWriter, request: Request, response: Response
) -> None:
    names = {name.lower() for name, _ in response.headers}
    headers = list(response.headers)
    if "content-length" not in names:
        headers.append(("Content-Length", str(len(response.body))))
    once = response.hang or response.cut is not None or response.drip is not None
    headers.append(("Connection", "close" if once else "keep-alive"))
    reason = _REASONS.get(response.status, "Status")
    head = f"HTTP/1.1 {response.status} {reason}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers
    )
    writer.write(head.encode("latin-1") + b"\r\n")
    await writer.drain()
    body = b"" if request.method == "HEAD" else response.body
    if response.hang:
        await asyncio.sleep(3600)
        return
    if response.cut is not None:
        writer.write(body[: response.cut])
        await writer.drain()
        return
    if response.drip is not None:
        for i in range(len(body)):
            writer.write(body[i : i + 1])
            await writer.drain()
            await asyncio.sleep(response.drip)
        return
    writer.write(body)
    await writer.drain()


Rule = Callable[[Request, Response], Response | None]
"""A proxy rule: given the request and the real registry's answer, a replacement or None."""


class FaultProxy(HostileServer):
    """Forwards to a real registry (``upstream``, e.g. ``http://127.0.0.1:5000``) and lets
    ``rules`` replace answers. ``rules`` may be changed while the proxy runs."""

    def __init__(self, upstream: str, rules: Sequence[Rule] = ()) -> None:
        super().__init__(self._forward)
        self.upstream = upstream
        self.rules: list[Rule] = list(rules)
        self._client: httpx.AsyncClient | None = None

    async def _forward(self, request: Request) -> Response:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.upstream, timeout=30.0)
        skip = {"host", "content-length", "connection", "accept-encoding"}
        real = await self._client.request(
            request.method,
            request.path,
            headers={k: v for k, v in request.headers.items() if k not in skip},
            content=request.body or None,
        )
        answer = Response(
            real.status_code,
            [
                (k, v)
                for k, v in real.headers.items()
                if k.lower() not in ("content-length", "connection", "transfer-encoding",
                                     "content-encoding")
            ],
            real.content,
        )
        for rule in self.rules:
            replaced = rule(request, answer)
            if replaced is not None:
                return replaced
        return answer


@contextlib.contextmanager
def hostile_server(handler: Handler) -> Iterator[HostileServer]:
    with HostileServer(handler) as server:
        yield server


@contextlib.contextmanager
def fault_proxy(upstream: str, rules: Sequence[Rule] = ()) -> Iterator[FaultProxy]:
    with FaultProxy(upstream, rules) as proxy:
        yield proxy


# --- a scripted registry: enough of the distribution API to audit one repository ---------


def manifest_bytes(name: str) -> bytes:
    """A small, valid OCI image manifest, distinct per ``name``."""
    import json

    from auditor.oci import mediatypes as mt

    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 2,
        },
        "layers": [],
        "annotations": {"name": name},
    }
    return json.dumps(doc).encode()


@dataclass
class ScriptedRegistry:
    """Tags of one repository ``app`` (tag -> manifest bytes); ``override(request)`` may
    answer first (return None to fall through). Unknown paths are distribution's 404s;
    referrers answer as distribution 2.8 does (a plain 404: no referrers API)."""

    tags: dict[str, bytes] = field(default_factory=dict)
    override: Callable[[Request], Response | None] | None = None

    def __call__(self, request: Request) -> Response:
        import hashlib

        from auditor.oci import mediatypes as mt

        if self.override is not None:
            answer = self.override(request)
            if answer is not None:
                return answer
        path = request.path.split("?", 1)[0]
        if path == "/v2/":
            return Response.json(200, {})
        if path == "/v2/app/tags/list":
            return Response.json(200, {"name": "app", "tags": sorted(self.tags)})
        prefix = "/v2/app/manifests/"
        if path.startswith(prefix):
            ref = path[len(prefix):]
            by_digest = {
                "sha256:" + hashlib.sha256(body).hexdigest(): body for body in self.tags.values()
            }
            body = self.tags.get(ref) or by_digest.get(ref)
            if body is not None:
                digest = "sha256:" + hashlib.sha256(body).hexdigest()
                return Response(
                    200,
                    [("Content-Type", mt.OCI_MANIFEST), ("Docker-Content-Digest", digest)],
                    body,
                )
            return Response.json(404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        return Response(404, [("Content-Type", "text/plain")], b"404 page not found\n")
