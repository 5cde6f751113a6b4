"""A forwarding proxy on 127.0.0.1 in front of the real registry, that misbehaves on request.

Reads go through untouched, so the crawl sees the real registry; requests matching ``rule``
(method, path substring) get the chosen fault instead: ``stall`` never answers (until the
proxy stops), ``http500`` answers 500. ``Location`` headers are rewritten to the proxy's own
origin, as a real reverse proxy does, so uploads keep going through it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import httpx

_HOP = frozenset({"connection", "transfer-encoding", "keep-alive", "content-length", "host"})


@dataclass
class Fault:
    method: str
    path_contains: str
    kind: Literal["stall", "http500"]
    hits: int = 0


@dataclass
class Proxy:
    upstream: str  # http://127.0.0.1:PORT
    fault: Fault
    host: str = ""
    released: threading.Event = field(default_factory=threading.Event)


@contextlib.contextmanager
def forwarding_proxy(upstream: str, fault: Fault) -> Iterator[Proxy]:
    proxy = Proxy(upstream, fault)
    client = httpx.Client(timeout=30, follow_redirects=False, trust_env=False)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length", "0") or "0")
            body = self.rfile.read(length) if length else b""
            if self.command == fault.method and fault.path_contains in self.path:
                fault.hits += 1
                if fault.kind == "stall":
                    proxy.released.wait(60)
                    return
                self._reply(500, {"Content-Type": "text/plain"}, b"injected failure")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            answer = client.request(
                self.command, upstream + self.path, headers=headers, content=body
            )
            out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            if "location" in {k.lower() for k in out}:
                out = {
                    k: (v.replace(upstream, f"http://{proxy.host}") if k.lower() == "location"
                        else v)
                    for k, v in out.items()
                }
            self._reply(answer.status_code, out, answer.content)

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_HEAD = do_PATCH = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        client.close()
