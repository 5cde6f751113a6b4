"""Authentication against real registries: htpasswd basic auth and a real token service."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from auditor.errors import AuthError
from auditor.registry.auth import AuthProvider, Credentials
from auditor.registry.client import RegistryClient
from auditor.registry.credentials import docker_credentials
from auditor.registry.push import push_layout
from auditor.registry.secret import Secret
from tests.support.paths import FIXTURES
from tests.support.registry_server import RunningRegistry

pytestmark = pytest.mark.registry

LAYOUT = FIXTURES / "notation-e2e/registry/oci_layout/e2e-valid-signature"
IMAGE = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
SIGNATURE = "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f"


def _repo() -> str:
    return f"auth/app-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


def _password_client(registry: RunningRegistry, http: httpx.AsyncClient) -> RegistryClient:
    assert registry.username is not None
    assert registry.password is not None
    return RegistryClient(
        registry.host, http, auth=AuthProvider.basic(registry.username, registry.password)
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_basic_auth(basic_auth_registry: RunningRegistry, http: httpx.AsyncClient) -> None:
    registry = basic_auth_registry
    repo = _repo()
    client = _password_client(registry, http)
    await push_layout(client, LAYOUT, repo)
    assert (await client.get_manifest(repo, "v1")).descriptor.digest == IMAGE
    assert [d.digest for d in await client.get_referrers(repo, IMAGE)] == [SIGNATURE]
    assert repo in await client.list_repositories()

    anonymous = RegistryClient(registry.host, http)
    with pytest.raises(AuthError, match=rf"^{registry.host}/{repo}:v1: registry requires basic"):
        await anonymous.get_manifest(repo, "v1")

    wrong = RegistryClient(registry.host, http, auth=AuthProvider.basic("auditor", "wrong-pw"))
    with pytest.raises(AuthError, match=r"tags: access denied, HTTP 401") as caught:
        await wrong.list_tags(repo)
    assert "wrong-pw" not in str(caught.value)
    assert "s3cret-basic" not in str(caught.value)


async def test_docker_config_credentials(
    basic_auth_registry: RunningRegistry, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    registry = basic_auth_registry
    token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {f"http://{registry.host}": {"auth": token}}}))
    credentials = await docker_credentials(registry.host, config)
    assert credentials is not None
    assert credentials.username == registry.username
    assert "s3cret-basic" not in repr(credentials)
    client = RegistryClient(registry.host, http, auth=AuthProvider(credentials))
    repo = _repo()
    await push_layout(client, LAYOUT, repo)
    assert sorted(await client.list_tags(repo)) == ["sha256-" + IMAGE.split(":")[1], "v1"]


async def test_token_flow_anonymous_pull_and_credentialed_push(
    token_registry: RunningRegistry, http: httpx.AsyncClient
) -> None:
    registry = token_registry
    server = registry.token_server
    assert server is not None
    repo = _repo()
    pusher = _password_client(registry, http)
    await push_layout(pusher, LAYOUT, repo)
    # distribution orders the actions of its challenge scope at random (a Go map).
    pushed = [s for r in server.requests if r["authenticated"] for s in r["scope"]]
    assert any(
        s.rpartition(":")[0] == f"repository:{repo}"
        and set(s.rpartition(":")[2].split(",")) == {"pull", "push"}
        for s in pushed
    )

    server.requests.clear()
    reader = RegistryClient(registry.host, http)
    assert (await reader.get_manifest(repo, "v1")).descriptor.digest == IMAGE
    assert [d.digest for d in await reader.get_referrers(repo, IMAGE)] == [SIGNATURE]
    blob = (await reader.get_manifest(repo, SIGNATURE)).manifest
    assert await reader.get_blob(repo, blob.layers[0].digest, 1 << 20)  # type: ignore[union-attr]
    # One anonymous token for the repository's pull scope serves every read (cached).
    assert [r["scope"] for r in server.requests] == [[f"repository:{repo}:pull"]]
    assert server.requests[0]["authenticated"] is False
    assert server.requests[0]["service"] == server.service

    with pytest.raises(
        AuthError, match=rf"^{registry.host}/{repo}@sha256:[0-9a-f]+: access denied"
    ):
        await push_layout(reader, LAYOUT, repo)
    with pytest.raises(AuthError, match=f"{registry.host} catalog"):
        await reader.list_repositories()
    assert repo in await pusher.list_repositories()


async def test_token_cache_honours_expiry(
    token_registry: RunningRegistry, http: httpx.AsyncClient
) -> None:
    registry = token_registry
    server = registry.token_server
    assert server is not None
    repo = _repo()
    await push_layout(_password_client(registry, http), LAYOUT, repo)
    clock = Clock()
    reader = RegistryClient(registry.host, http, auth=AuthProvider(clock=clock))
    server.requests.clear()
    await reader.list_tags(repo)
    await reader.list_tags(repo)
    assert len(server.requests) == 1
    clock.now += server.expires_in - 5  # inside the safety margin before expiry
    await reader.list_tags(repo)
    assert len(server.requests) == 2
    other = _repo()
    await push_layout(_password_client(registry, http), LAYOUT, other)
    server.requests.clear()
    await reader.list_tags(other)  # a new scope needs its own token
    assert [r["scope"] for r in server.requests] == [[f"repository:{other}:pull"]]


async def test_token_service_variants(
    token_registry: RunningRegistry, http: httpx.AsyncClient
) -> None:
    registry = token_registry
    server = registry.token_server
    assert server is not None
    repo = _repo()
    await push_layout(_password_client(registry, http), LAYOUT, repo)
    server.field_name = "access_token"
    try:
        client = RegistryClient(registry.host, http)
        assert await client.list_tags(repo)
    finally:
        server.field_name = "token"
    bad = RegistryClient(
        registry.host,
        http,
        auth=AuthProvider(Credentials(username="pusher", password=Secret("not-it"))),
    )
    token_host = server.realm.split("/")[2]
    with pytest.raises(AuthError, match=f"token service {token_host} refused the credentials"):
        await bad.list_tags(repo)


async def test_identity_token_refresh_grant(
    token_registry: RunningRegistry, http: httpx.AsyncClient
) -> None:
    """docker's ``identitytoken`` is exchanged through an OAuth2 refresh-token POST."""
    server = token_registry.token_server
    assert server is not None
    assert server.refresh_token is not None
    server.requests.clear()
    client = RegistryClient(
        token_registry.host,
        http,
        auth=AuthProvider(Credentials(identity_token=Secret(server.refresh_token))),
    )
    repo = _repo()
    await push_layout(client, LAYOUT, repo)
    assert (await client.get_manifest(repo, "v1")).descriptor.digest == IMAGE
    assert server.requests
    assert all(r.get("grant_type") == "refresh_token" for r in server.requests)
    revoked = RegistryClient(
        token_registry.host,
        http,
        auth=AuthProvider(Credentials(identity_token=Secret("revoked-refresh"))),
    )
    with pytest.raises(AuthError, match="refused the credentials") as caught:
        await revoked.list_tags(repo)
    assert "revoked-refresh" not in str(caught.value)
