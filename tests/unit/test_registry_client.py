"""Client behaviour a real distribution 2.8 cannot produce, through httpx.MockTransport.

Each test says why its responses are injected. Everything a real registry can show (fallback
referrers, 404 codes, size limits, tampered storage, auth) is tested in tests/integration.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from auditor.errors import (
    AuthError,
    DigestMismatch,
    GraphLimitExceeded,
    NotFound,
    RateLimited,
    RegistryError,
    TooLarge,
)
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest
from auditor.registry.auth import AuthProvider
from auditor.registry.client import RegistryClient
from auditor.registry.retry import RetryPolicy
from auditor.registry.secret import Secret
from auditor.registry.transport import scheme_for
from auditor.source import ManifestSource

HOST = "registry.test"
SUBJECT = "sha256:" + "a" * 64
Handler = Callable[[httpx.Request], httpx.Response]


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_client(
    handler: Handler,
    *,
    sleeps: Sleeps | None = None,
    follow_redirects: bool = False,
    **kwargs: object,
) -> RegistryClient:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(handler), follow_redirects=follow_redirects
    )
    retry = RetryPolicy(max_attempts=3, jitter=False, sleep=sleeps or Sleeps())
    return RegistryClient(HOST, http, retry=retry, **kwargs)  # type: ignore[arg-type]


def referrer(digest_char: str, artifact_type: str) -> dict[str, object]:
    return {
        "mediaType": mt.OCI_MANIFEST,
        "digest": "sha256:" + digest_char * 64,
        "size": 700,
        "artifactType": artifact_type,
    }


def index_body(entries: list[dict[str, object]]) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    ).encode()


def test_scheme_choice() -> None:
    assert scheme_for("127.0.0.1:5000", insecure=False) == "http"
    assert scheme_for("localhost:5000", insecure=False) == "http"
    assert scheme_for("[::1]:5000", insecure=False) == "http"
    assert scheme_for("registry.example", insecure=False) == "https"
    assert scheme_for("registry.example:5000", insecure=True) == "http"


def test_secret_never_shows() -> None:
    secret = Secret("hunter2")
    assert repr(secret) == str(secret) == "***"
    assert "hunter2" not in repr(AuthProvider.basic("bot", "hunter2"))
    assert secret.reveal() == "hunter2"


async def test_referrers_api_with_link_pagination_and_client_side_filter() -> None:
    """Injected: distribution 2.8 has no referrers API. This registry ignores the filter."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.url.path == f"/v2/app/referrers/{SUBJECT}"
        if request.url.params.get("last") is None:
            return httpx.Response(
                200,
                content=index_body([referrer("1", mt.NOTARY_SIGNATURE), referrer("2", "x/sbom")]),
                headers={"Link": f'</v2/app/referrers/{SUBJECT}?last=2&n=2>; rel="next"'},
            )
        return httpx.Response(200, content=index_body([referrer("3", mt.NOTARY_SIGNATURE)]))

    client = make_client(handler)
    everything = await client.get_referrers("app", SUBJECT)
    assert [d.digest[-1] for d in everything] == ["1", "2", "3"]
    assert client.referrers_api is True
    signatures = await client.get_referrers("app", SUBJECT, mt.NOTARY_SIGNATURE)
    assert [d.digest[-1] for d in signatures] == ["1", "3"]
    assert all(d.artifact_type == mt.NOTARY_SIGNATURE for d in signatures)
    assert f"artifactType={mt.NOTARY_SIGNATURE.replace('/', '%2F')}" in seen[2]
    assert not any("/manifests/" in url for url in seen)  # never fell back to the tag


async def test_referrers_fallback_is_remembered_per_registry() -> None:
    """Injected: counts requests to show the missing API is asked about only once."""
    paths: list[str] = []
    fallback = index_body([referrer("1", mt.NOTARY_SIGNATURE), referrer("2", "x/sbom")])

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if "/referrers/" in request.url.path:
            return httpx.Response(404, text="404 page not found\n")
        if request.url.path == "/v2/app/manifests/sha256-" + "a" * 64:
            return httpx.Response(200, content=fallback, headers={"Content-Type": mt.OCI_INDEX})
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})

    client = make_client(handler)
    assert [d.digest[-1] for d in await client.get_referrers("app", SUBJECT, "x/sbom")] == ["2"]
    assert client.referrers_api is False
    assert await client.get_referrers("app", "sha256:" + "b" * 64) == []
    assert sum("/referrers/" in p for p in paths) == 1


async def test_tags_follow_link_pages() -> None:
    """Injected: distribution 2.8 ignores ``n`` on tags/list and never paginates tags."""
    tags = ["a", "b", "c", "d", "e"]

    def handler(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params["n"])
        last = request.url.params.get("last")
        start = tags.index(last) + 1 if last else 0
        page = tags[start : start + n]
        headers = {}
        if start + n < len(tags):
            headers["Link"] = f'</v2/app/tags/list?n={n}&last={page[-1]}>; rel="next"'
        return httpx.Response(200, json={"name": "app", "tags": page}, headers=headers)

    assert await make_client(handler, page_size=2).list_tags("app") == tags
    with pytest.raises(GraphLimitExceeded, match=r"registry.test/app tags: more than 3 tags"):
        await make_client(handler, page_size=2, max_tags=3).list_tags("app")


async def test_pagination_loop_and_foreign_links_are_refused() -> None:
    """Injected: a misbehaving registry whose Link points back at itself / elsewhere."""

    def looping(request: httpx.Request) -> httpx.Response:
        link = '</v2/app/tags/list?last=z>; rel="next"'
        return httpx.Response(200, json={"tags": ["z"]}, headers={"Link": link})

    with pytest.raises(RegistryError, match="pagination loops"):
        await make_client(looping).list_tags("app")

    def foreign(request: httpx.Request) -> httpx.Response:
        link = '<https://evil.test/v2/app/tags/list?last=z>; rel="next"'
        return httpx.Response(200, json={"tags": ["z"]}, headers={"Link": link})

    with pytest.raises(RegistryError, match="another origin"):
        await make_client(foreign).list_tags("app")


async def test_429_with_retry_after_then_success() -> None:
    """Injected: a real test registry never rate-limits."""
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(503),
            httpx.Response(200, json={"tags": ["v1"]}),
        ]
    )
    sleeps = Sleeps()
    client = make_client(lambda request: next(answers), sleeps=sleeps)
    assert await client.list_tags("app") == ["v1"]
    assert sleeps.calls == [3.0, 1.0]


async def test_429_forever_is_rate_limited() -> None:
    """Injected: a real test registry never rate-limits."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(
            429,
            headers={"Retry-After": "1"},
            json={"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]},
        )

    with pytest.raises(RateLimited, match=r"^registry.test/app:v1: rate limited .*TOOMANYREQUESTS"):
        await make_client(handler).get_manifest("app", "v1")
    assert calls == 3


async def test_5xx_forever_is_a_registry_error() -> None:
    """Injected: a real registry does not fail on demand."""
    with pytest.raises(RegistryError, match=r"^registry.test/app:v1: HTTP 502 after 3 attempt"):
        await make_client(lambda request: httpx.Response(502)).get_manifest("app", "v1")


async def test_connection_errors_retried_then_named() -> None:
    """Injected: a refused connection on every attempt."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(RegistryError, match=r"registry.test catalog: ConnectError after 3"):
        await make_client(handler).list_repositories()


class Chunks(httpx.AsyncByteStream):
    def __init__(self, size: int) -> None:
        self.size = size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.size // 1024):
            yield b"x" * 1024


async def test_oversized_body_without_content_length_is_cut_off() -> None:
    """Injected: a chunked body with no Content-Length (distribution always sends one)."""
    client = make_client(
        lambda request: httpx.Response(200, stream=Chunks(64 * 1024)), max_manifest_bytes=4096
    )
    with pytest.raises(TooLarge, match=r"^registry.test/app:v1: body exceeds the 4096-byte"):
        await client.get_manifest("app", "v1")


async def test_wrong_docker_content_digest() -> None:
    """Injected: the registry announces a digest its body does not have."""
    body = index_body([])
    wrong = "sha256:" + "f" * 64

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Docker-Content-Digest": wrong, "Content-Type": mt.OCI_INDEX}
        return httpx.Response(200, content=body, headers=headers)

    with pytest.raises(DigestMismatch, match=rf"app:v1 \(Docker-Content-Digest\): .*{wrong}"):
        await make_client(handler).get_manifest("app", "v1")


async def test_manifest_without_digest_header_is_hashed() -> None:
    """Injected: some registries omit Docker-Content-Digest; the body's own hash is used."""
    body = index_body([referrer("1", "x/y")])

    def handler(request: httpx.Request) -> httpx.Response:
        assert mt.OCI_MANIFEST in request.headers["accept"]
        return httpx.Response(200, content=body, headers={"Content-Type": mt.OCI_INDEX})

    fetched = await make_client(handler).get_manifest("app", "v1")
    assert fetched.descriptor.digest == compute_digest(body)
    assert fetched.descriptor.media_type == mt.OCI_INDEX


async def test_auth_failures_are_auth_errors_without_secrets() -> None:
    """Injected: a registry that refuses without a challenge, and one that forbids."""
    client = make_client(lambda request: httpx.Response(401), auth=AuthProvider.basic("u", "pw1"))
    with pytest.raises(AuthError, match="no usable challenge") as caught:
        await client.get_manifest("app", "v1")
    assert "pw1" not in str(caught.value)
    forbidden = make_client(
        lambda request: httpx.Response(403, json={"errors": [{"code": "DENIED"}]})
    )
    with pytest.raises(AuthError, match=r"^registry.test/app:v1: access denied, HTTP 403 \(DENIED"):
        await forbidden.get_manifest("app", "v1")


@pytest.mark.parametrize("follow_redirects", [False, True])
async def test_blob_redirect_drops_authorization(follow_redirects: bool) -> None:
    """Injected: distribution's filesystem storage never redirects; cloud registries do."""
    data = b"layer bytes"
    digest = compute_digest(data)
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.url.host == "cdn.test":
            return httpx.Response(200, content=data)
        if "authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return httpx.Response(307, headers={"Location": "https://cdn.test/blob?sig=1"})

    # The caller's AsyncClient may follow redirects itself; the transport still does it by hand.
    client = make_client(
        handler, auth=AuthProvider.basic("u", "pw"), follow_redirects=follow_redirects
    )
    assert await client.get_blob("app", digest, 100) == data
    assert seen[0] == (HOST, None)
    assert seen[1][0] == HOST
    assert seen[1][1] is not None
    assert seen[1][1].startswith("Basic ")
    assert seen[2] == ("cdn.test", None)


async def test_plain_404_is_not_found() -> None:
    """Injected: a proxy's plain-text 404 for a manifest."""
    with pytest.raises(NotFound, match=r"^registry.test/app:v1: not found \(HTTP 404\)$"):
        await make_client(lambda request: httpx.Response(404, text="nope")).get_manifest(
            "app", "v1"
        )


def test_client_is_a_manifest_source() -> None:
    """Static check (mypy) that the client satisfies the shared protocol, plus its name."""
    source: ManifestSource = make_client(lambda request: httpx.Response(500))
    assert source.name == HOST


async def test_https_is_never_followed_to_plain_http() -> None:
    """Injected: a redirect from the https registry to a plain-http URL (a real registry on
    127.0.0.1 speaks plain http, so it cannot show a downgrade)."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.scheme == "https":
            return httpx.Response(307, headers={"Location": "http://cdn.example/blob"})
        return httpx.Response(200, content=b"{}")

    client = make_client(handler)
    with pytest.raises(RegistryError, match="refusing a redirect from https to plain http"):
        await client.get_manifest("app", "v1")
    assert seen == ["https://registry.test/v2/app/manifests/v1"]


async def test_https_registry_naming_a_plain_http_realm_is_an_auth_error() -> None:
    """Injected: the https registry's challenge names an http realm; nothing is sent to it."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        challenge = 'Bearer realm="http://auth.example/token",service="r"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    client = make_client(handler, auth=AuthProvider.basic("bot", Secret("pw")))
    with pytest.raises(AuthError, match="plain-http token realm"):
        await client.get_manifest("app", "v1")
    assert all(url.startswith("https://registry.test/") for url in seen)
