"""TLS to a registry: the real registry (Debian's docker-registry, distribution 2.8) serving
https on 127.0.0.1 with a certificate from a throw-away CA (tests/support/tls.py).

- An untrusted certificate is one line naming the fix (``ca_file``, ``--ca-file``,
  ``insecure``) and is not retried (it fails the same way every time).
- A loopback registry that speaks the other scheme than the one configured or defaulted
  (plain http is the default on loopback) is reached on the other scheme, as Docker and
  containerd do for localhost; the real registry's own answers (Go's 400 "Client sent an HTTP
  request to an HTTPS server", a plain answer to a TLS hello) trigger it.
- Beyond loopback the scheme never changes (an injected Go-style answer for a name that is
  not loopback: the real registry can only listen on 127.0.0.1 here).
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from auditor.errors import RegistryError, TlsError
from auditor.registry.auth import AuthProvider
from auditor.registry.client import RegistryClient
from auditor.registry.push import push_layout
from auditor.registry.retry import RetryPolicy
from auditor.registry.transport import RegistryTransport
from tests.support.binary import run_auditor
from tests.support.registry_server import (
    RunningRegistry,
    TokenServer,
    registry_binary,
    registry_server,
)
from tests.support.scenarios import SignedSample, build_signed_sample
from tests.support.tls import ServerPki, make_server_pki

pytestmark = pytest.mark.skipif(registry_binary() is None, reason="docker-registry missing")

REPOSITORY = f"it/tls-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ServerPki:
    return make_server_pki(tmp_path_factory.mktemp("tls-pki"))


@pytest.fixture(scope="module")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory, pki: ServerPki
) -> Iterator[RunningRegistry]:
    with registry_server(
        tmp_path_factory.mktemp("tls-registry"), tls=(pki.certificate, pki.key)
    ) as running:
        assert running.url.startswith("https://")
        yield running


@pytest.fixture(scope="module")
def signed(
    tmp_path_factory: pytest.TempPathFactory, tls_registry: RunningRegistry, pki: ServerPki
) -> SignedSample:
    """The signed sample, pushed over verified TLS."""
    sample = build_signed_sample(tmp_path_factory.mktemp("tls-sample"))

    async def push() -> None:
        context = ssl.create_default_context(cafile=str(pki.ca_file))
        async with httpx.AsyncClient(verify=context, timeout=30.0) as http:
            client = RegistryClient(tls_registry.host, http, scheme="https")
            await push_layout(client, sample.path, REPOSITORY, update_fallback_tags=True)

    asyncio.run(push())
    return sample


def _config(tmp_path: Path, url: str, signed: SignedSample, extra: str = "") -> Path:
    path = tmp_path / "auditor.yaml"
    path.write_text(
        "registries:\n"
        f"  - url: {url}\n"
        f"    repositories: [{REPOSITORY}]\n"
        "    tags: {include: [v1-single]}\n"
        + extra
        + f"trust:\n  policy: {signed.trust_policy}\n  store: {signed.trust_store}\n"
    )
    return path


def test_an_untrusted_certificate_names_the_fix(
    tls_registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    config = _config(tmp_path, tls_registry.url, signed)
    run = run_auditor(["audit", "now", "-c", config, "--format", "json"], cwd=tmp_path)
    assert run.code == 3, run.stderr
    (target,) = run.report["targets"]
    error = target["error"]
    assert "the certificate of 127.0.0.1 is not trusted" in error, error
    for fix in ("ca_file", "--ca-file", "insecure: true"):
        assert fix in error, error
    assert "attempt(s)" not in error  # one attempt, not a retried transport error


def test_ca_file_makes_it_work(
    tls_registry: RunningRegistry, signed: SignedSample, pki: ServerPki, tmp_path: Path
) -> None:
    config = _config(tmp_path, tls_registry.url, signed, f"    ca_file: {pki.ca_file}\n")
    run = run_auditor(["audit", "now", "-c", config, "--format", "json"], cwd=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    (target,) = run.report["targets"]
    assert target["status"] == "compliant"


def test_a_ca_file_that_is_no_certificate_is_a_config_error(
    tls_registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    config = _config(tmp_path, tls_registry.url, signed, f"    ca_file: {bogus}\n")
    check = run_auditor(["config", "check", "-c", config], cwd=tmp_path)
    assert check.code == 2, check.stdout
    assert f"{config}: registries[0].ca_file {bogus}: cannot be read" in check.stdout
    run = run_auditor(["audit", "now", "-c", config], cwd=tmp_path)
    assert run.code == 2, run.stderr
    assert run.stderr.startswith(f"error: ca_file {bogus}: cannot be read"), run.stderr


def test_plain_http_to_a_loopback_tls_registry_moves_to_https(
    tls_registry: RunningRegistry, signed: SignedSample, pki: ServerPki, tmp_path: Path
) -> None:
    """Configured as http (or given as a bare 127.0.0.1:PORT TARGET, http by default), the
    registry answers as a TLS server: https is tried and kept; verified with ca_file."""
    config = _config(
        tmp_path, f"http://{tls_registry.host}", signed, f"    ca_file: {pki.ca_file}\n"
    )
    run = run_auditor(["audit", "now", "-c", config, "--format", "json"], cwd=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    (target,) = run.report["targets"]
    assert target["status"] == "compliant"
    # Without a config the same TARGET reaches https too and then says how to trust it.
    elsewhere = tmp_path / "no-config"
    elsewhere.mkdir()
    bare = run_auditor(
        ["audit", "now", f"{tls_registry.host}/{REPOSITORY}:v1-single", "--format", "json"],
        cwd=elsewhere,
    )
    assert bare.code == 3, bare.stderr
    (target,) = bare.report["targets"]
    assert "is not trusted" in target["error"], target["error"]
    assert "ca_file" in target["error"]


def test_https_to_a_loopback_plain_registry_moves_to_http(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    """The reverse: a loopback registry configured as https that serves plain http."""
    config = tmp_path / "auditor.yaml"
    config.write_text(
        f"registries:\n  - url: https://{registry.host}\n    repositories: [none/such]\n"
    )
    run = run_auditor(["audit", "now", "-c", config, "--format", "json"], cwd=tmp_path)
    (target,) = run.report["targets"]
    # The registry was reached over http: its own 404 for an unknown repository, not TLS.
    assert "TLS" not in (target["error"] or ""), target["error"]
    assert "not found" in target["error"], target["error"]


def _no_sleep_policy(sleeps: list[float]) -> RetryPolicy:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return RetryPolicy(sleep=sleep)


def test_a_tls_failure_is_not_retried(tls_registry: RunningRegistry) -> None:
    """At the transport: one handshake, no retry wait, a TlsError (not a transport error)."""
    sleeps: list[float] = []

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            transport = RegistryTransport(
                tls_registry.host, http, auth=AuthProvider.anonymous(), scheme="https",
                retry=_no_sleep_policy(sleeps), max_concurrency=2,
            )
            with pytest.raises(TlsError, match="is not trusted"):
                await transport.request("GET", "/v2/", scope="", what="ping", limit=1024)

    asyncio.run(run())
    assert sleeps == []


def test_beyond_loopback_the_scheme_never_changes() -> None:
    """A registry name that is not loopback answering like a TLS server to plain http: the
    400 stands (a scheme change there would be the client deciding to trust what a network
    path says). Injected answer: the real registry only listens on 127.0.0.1 here."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(400, content=b"Client sent an HTTP request to an HTTPS server.\n")

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            client = RegistryClient(
                "registry.example:5000", http, auth=AuthProvider.anonymous(), insecure=True
            )
            with pytest.raises(RegistryError, match="HTTP 400"):
                await client.list_tags("team/app")

    asyncio.run(run())
    assert seen
    assert all(url.startswith("http://registry.example:5000/") for url in seen)


def test_a_token_service_with_an_untrusted_certificate_names_the_fix(
    tmp_path_factory: pytest.TempPathFactory, pki: ServerPki, tmp_path: Path
) -> None:
    """The registry (plain http, loopback) sends clients to a token realm served over https
    with the throw-away CA's certificate: the token request fails the handshake, and the
    target's error says so and how to fix it; with the CA as ca_file the token is obtained
    (the registry answers 404 for the repository that is not there, not a TLS error)."""
    workdir = tmp_path_factory.mktemp("tls-token")
    server = TokenServer(workdir, tls=(pki.certificate, pki.key))
    with registry_server(workdir, token_server=server) as running:
        assert server.realm.startswith("https://")
        target = f"{running.host}/team/app:v1"
        run = run_auditor(["audit", "now", target, "--format", "json"], cwd=tmp_path)
        assert run.code == 3, run.stderr
        (result,) = run.report["targets"]
        assert "token service 127.0.0.1 is not trusted" in result["error"], result["error"]
        assert "ca_file" in result["error"]
        assert result["error_category"] == "tls"
        assert server.requests == []  # the handshake failed: no request reached it
        config = tmp_path / "auditor.yaml"
        config.write_text(
            f"registries:\n  - url: http://{running.host}\n    repositories: [team/app]\n"
            f"    ca_file: {pki.ca_file}\n"
        )
        trusted = run_auditor(["audit", "now", "-c", config, target, "--format", "json"],
                              cwd=tmp_path)
        (result,) = trusted.report["targets"]
        assert "TLS" not in result["error"], result["error"]
        assert result["error_category"] == "not-found", result["error"]
        assert server.requests  # the token service was reached over verified TLS


def test_concurrent_first_requests_all_follow_the_scheme_change(
    tls_registry: RunningRegistry, pki: ServerPki
) -> None:
    """Several requests meet the TLS server's 400 at once: one probes and switches, the others
    see the switch and resend on https; none reports the 400 or a TLS error."""

    async def run() -> list[int]:
        context = ssl.create_default_context(cafile=str(pki.ca_file))
        async with httpx.AsyncClient(verify=context) as http:
            transport = RegistryTransport(
                tls_registry.host, http, auth=AuthProvider.anonymous(), max_concurrency=8
            )
            assert transport.base_url.scheme == "http"  # loopback default
            replies = await asyncio.gather(*(
                transport.request("GET", "/v2/", scope="", what=f"ping {i}", limit=1024)
                for i in range(6)
            ))
            assert transport.base_url.scheme == "https"
            return [r.status for r in replies]

    assert asyncio.run(run()) == [200] * 6


def test_beyond_loopback_https_is_never_downgraded_to_http() -> None:
    """The dangerous direction: a registry that is not loopback whose TLS handshake meets plain
    text (what a network attacker stripping TLS produces) is a TLS error naming the fix; not one
    request goes out over http. Injected failure: the real registry only listens on 127.0.0.1
    here."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.scheme == "https":
            cause = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
            cause.reason = "WRONG_VERSION_NUMBER"
            raise httpx.ConnectError("handshake failed", request=request) from cause
        return httpx.Response(200, json={"name": "team/app", "tags": ["v1"]})

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            client = RegistryClient(
                "registry.example", http, auth=AuthProvider.anonymous(),
                retry=_no_sleep_policy([]),
            )
            with pytest.raises(TlsError, match="does not speak TLS"):
                await client.list_tags("team/app")

    asyncio.run(run())
    assert seen
    assert all(url.startswith("https://registry.example/") for url in seen), seen
