"""A TCP proxy on 127.0.0.1 that can hold new connections: a registry that stops answering.

Daemon tests point the auditor at the proxy instead of the registry, then ``hold()`` to make
the next audit hang (the real registry behind it is untouched) and ``release()`` to let it go
on. What a real registry cannot be made to do on demand: that is why this exists.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class HoldingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def hold(self) -> None:
        """New connections wait (established ones go on: httpx may keep one alive, so the
        daemon is restarted after holding, to start from fresh connections)."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self._open.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._open.wait()
        if self._closed:
            client.close()
            return
        try:
            upstream = socket.create_connection(self._target, timeout=10)
        except OSError:
            client.close()
            return
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def holding_proxy(target_host: str, target_port: int) -> Iterator[HoldingProxy]:
    proxy = HoldingProxy(target_host, target_port)
    try:
        yield proxy
    finally:
        proxy.close()
