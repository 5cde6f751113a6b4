"""Shared fixtures: real registries on 127.0.0.1 (see tests/support/registry_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.registry_server import (
    RunningRegistry,
    TokenServer,
    registry_binary,
    registry_server,
)

_MISSING = "docker-registry is not on PATH (install Debian's docker-registry package)"


def _require_binary() -> None:
    if registry_binary() is None:
        pytest.skip(_MISSING)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """An anonymous registry shared by the whole session (use unique repository names)."""
    _require_binary()
    with registry_server(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="session")
def basic_auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A registry behind htpasswd basic auth; credentials in ``.username``/``.password``."""
    _require_binary()
    with registry_server(
        tmp_path_factory.mktemp("registry-basic"), basic_auth=("auditor", "s3cret-basic")
    ) as running:
        yield running


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A registry with ``auth: token`` backed by a real token server on 127.0.0.1.

    Anonymous clients get pull; ``.username``/``.password`` (or the identity token
    ``token_server.refresh_token``) get push too.
    """
    _require_binary()
    workdir = tmp_path_factory.mktemp("registry-token")
    server = TokenServer(
        workdir, username="pusher", password="s3cret-token", refresh_token="s3cret-refresh"
    )
    with registry_server(workdir, token_server=server) as running:
        yield running
