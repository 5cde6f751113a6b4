"""A real HTTP peer on 127.0.0.1 that cuts connections mid-body."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from auditor.errors import RegistryError
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest
from auditor.registry.client import RegistryClient
from auditor.registry.retry import RetryPolicy

BODY = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}).encode()


class CuttingServer:
    """Answers ``cuts`` requests with half a body and a closed socket, then answers properly."""

    def __init__(self, cuts: int) -> None:
        self.cuts = cuts
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.connections += 1
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {mt.OCI_INDEX}\r\n"
            f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
        ).encode()
        cut = self.connections <= self.cuts
        writer.write(head + (BODY[:10] if cut else BODY))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def _serve(cuts: int) -> CuttingServer:
    peer = CuttingServer(cuts)
    peer.server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
    return peer


class NoSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def test_cut_connection_is_retried(http: httpx.AsyncClient) -> None:
    peer = await _serve(cuts=2)
    sleeps = NoSleep()
    retry = RetryPolicy(max_attempts=4, jitter=False, sleep=sleeps)
    try:
        fetched = await RegistryClient(peer.host, http, retry=retry).get_manifest("app", "v1")
    finally:
        assert peer.server is not None
        peer.server.close()
    assert fetched.descriptor.digest == compute_digest(BODY)
    assert peer.connections == 3
    assert sleeps.calls == [0.5, 1.0]


async def test_connection_cut_every_time_is_a_registry_error(http: httpx.AsyncClient) -> None:
    peer = await _serve(cuts=100)
    retry = RetryPolicy(max_attempts=3, jitter=False, sleep=NoSleep())
    try:
        with pytest.raises(
            RegistryError, match=rf"^{peer.host}/app:v1: RemoteProtocolError after 3 attempt"
        ):
            await RegistryClient(peer.host, http, retry=retry).get_manifest("app", "v1")
    finally:
        assert peer.server is not None
        peer.server.close()
    assert peer.connections == 3
