"""Property tests for the transport's parsers: any input gives a value or an error of the
family (auditor.errors), never anything else; plus the bounded decoder, the retry clock,
the down-marking and the target budget, which need no server at all."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.budget import BudgetedSource, TargetBudget, TargetBudgetExceeded
from auditor.decoding import BoundedDecoder
from auditor.errors import AuditorError, AuthError, RegistryError, TooLarge
from auditor.model import Descriptor
from auditor.oci.manifest import FetchedManifest
from auditor.registry.auth import parse_token_response, realm_url
from auditor.registry.challenge import Challenge, parse_all, parse_challenges
from auditor.registry.exchange import join_url
from auditor.registry.pagination import next_link
from auditor.registry.retry import RegistryDown, RegistryHealth, RetryPolicy, parse_retry_after

BASE = httpx.URL("https://registry.example:5000/v2/app/tags/list")
header_text = st.text(max_size=300) | st.sampled_from(
    [
        'Bearer realm="https://auth.example/token",service="r",scope="repository:a:pull"',
        'Bearer realm="a,b", Basic realm="x"',
        'Bearer realm="unterminated',
        "Basic",
        '<https://r.example/v2/x?n=1&last=a>; rel="next"',
        "<>; rel=next",
        "\u00b2",
        "9" * 400,
        "Thu, 01 Jan 2026 12:00:05 GMT",
        "Thu, 99 Foo 9999 99:99:99 GMT",
    ]
)


@settings(max_examples=300, deadline=None)
@given(header_text)
def test_www_authenticate_never_raises(header: str) -> None:
    for challenge in parse_challenges(header):
        assert challenge.scheme == challenge.scheme.lower()
        assert all(isinstance(v, str) for v in challenge.params.values())
    assert isinstance(parse_all([header, header]), list)


@settings(max_examples=300, deadline=None)
@given(header_text)
def test_realm_is_a_url_or_an_auth_error(realm: str) -> None:
    challenge = Challenge("bearer", {"realm": realm})
    for registry in (None, httpx.URL("https://registry.example"), httpx.URL("http://127.0.0.1")):
        try:
            url = realm_url(challenge, registry, "x")
        except AuthError:
            continue
        assert url.scheme in ("http", "https")
        assert url.host
        assert not (registry is not None and registry.scheme == "https" and url.scheme == "http")


def test_https_registry_never_gets_a_plain_http_realm() -> None:
    challenge = Challenge("bearer", {"realm": "http://auth.example/token"})
    with pytest.raises(AuthError, match="plain-http token realm"):
        realm_url(challenge, httpx.URL("https://registry.example"), "x")
    assert realm_url(challenge, httpx.URL("http://127.0.0.1:5000"), "x").host == "auth.example"
    with pytest.raises(AuthError, match="userinfo"):
        realm_url(Challenge("bearer", {"realm": "https://u:p@a.example/t"}), None, "x")


@settings(max_examples=300, deadline=None)
@given(header_text)
def test_link_gives_a_target_or_none_and_join_gives_a_url_or_an_error(header: str) -> None:
    link = next_link(header)
    if link is None:
        return
    try:
        url = join_url(BASE, link, "x")
    except RegistryError:
        return
    assert url.scheme in ("http", "https")
    assert url.host


@settings(max_examples=500, deadline=None)
@given(header_text)
def test_retry_after_is_seconds_or_none(value: str) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    seconds = parse_retry_after(value, now)
    assert seconds is None or seconds >= 0


def test_retry_after_odd_values() -> None:
    assert parse_retry_after("\u00b2") is None  # "²".isdigit() is True; float("²") raises
    assert parse_retry_after("\u0663") is None  # Arabic-Indic three
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("9" * 400) is None


token_body = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=40),
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["token", "access_token", "expires_in", "x"]), inner,
                          max_size=4),
        max_leaves=10,
    ).map(lambda doc: __import__("json").dumps(doc).encode()),
    st.sampled_from([b'{"token": "t\xc3\xb6k"}', b'{"token": "a b"}',
                     b'{"token": "ok", "expires_in": 1e999}', b"[" * 100_000,
                     b'{"token": "ok", "expires_in": ' + b"9" * 5000 + b"}"]),
)


@settings(max_examples=300, deadline=None)
@given(token_body)
def test_token_response_is_a_token_or_an_auth_error(body: bytes) -> None:
    try:
        token, lifetime = parse_token_response(body, "auth.example", "x")
    except AuthError:
        return
    text = token.reveal()
    assert text.isascii()
    assert text.isprintable()
    assert " " not in text
    assert 0 < lifetime <= 24 * 3600


# --- the bounded decoder --------------------------------------------------------------------


def _decode(encoding: str | None, data: bytes, cap: int, step: int = 4096) -> bytes:
    decoder = BoundedDecoder(encoding, cap, "x")
    out = [decoder.feed(data[i : i + step]) for i in range(0, len(data), step)]
    return b"".join(out) + decoder.flush()


def test_decoder_stops_a_bomb_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024))
    with pytest.raises(TooLarge, match="1048576-byte limit"):
        _decode("gzip", bomb, 1024 * 1024)
    with pytest.raises(TooLarge):
        _decode("gzip, gzip", gzip.compress(bomb), 1024 * 1024)
    with pytest.raises(TooLarge):
        _decode("deflate", zlib.compress(b"\0" * (8 * 1024 * 1024)), 1024 * 1024)


def test_decoder_round_trips_and_refuses_unknown_encodings() -> None:
    body = b'{"schemaVersion": 2}' * 100
    assert _decode(None, body, 10_000) == body
    assert _decode("identity", body, 10_000) == body
    assert _decode("gzip", gzip.compress(body), 10_000, step=7) == body
    assert _decode("gzip, gzip", gzip.compress(gzip.compress(body)), 10_000) == body
    assert _decode("deflate", zlib.compress(body), 10_000) == body
    with pytest.raises(RegistryError, match="unsupported Content-Encoding 'br'"):
        BoundedDecoder("br", 10, "x")
    with pytest.raises(RegistryError, match="stacked"):
        BoundedDecoder("gzip," * 5, 10, "x")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([None, "gzip", "deflate", "gzip, deflate"]))
def test_decoder_gives_bytes_within_the_cap_or_an_error(data: bytes, encoding: str | None) -> None:
    try:
        out = _decode(encoding, data, 1000, step=13)
    except AuditorError:
        return
    assert len(out) <= 1000


# --- retry budget and marking a registry down ------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_retry_after_is_capped_and_the_budget_ends_retrying() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=50, max_retry_after=5, budget=12, jitter=False,
                         sleep=clock.sleep, clock=clock)
    calls = 0

    async def attempt() -> tuple[int, str]:
        nonlocal calls
        calls += 1
        return (429, "3600")

    assert await policy.run(attempt, lambda r: r, "x") == (429, "3600")
    assert clock.sleeps == [5, 5]  # a third wait would end past the 12 s budget
    assert calls == 3


def test_health_marks_down_after_consecutive_failures_only() -> None:
    health = RegistryHealth("reg.example", down_after=3)
    health.failed("a")
    health.failed("b")
    health.succeeded()
    health.failed("c")
    health.failed("d")
    health.check("still up")
    health.failed("e")
    with pytest.raises(RegistryDown, match=r"reg.example is marked down .*3 requests in a row"):
        health.check("reg.example/app:v1")
    health.succeeded()  # once down, down for the run
    with pytest.raises(RegistryDown):
        health.check("x")
    health.new_run()  # the next run (the daemon keeps its clients) asks again
    health.check("x")


# --- the target budget ---------------------------------------------------------------------


class CountingSource:
    name = "fake"

    def __init__(self) -> None:
        self.blob_limits: list[int] = []

    async def list_repositories(self) -> list[str]:
        return []

    async def list_tags(self, repository: str) -> list[str]:
        return []

    async def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        raise AssertionError("not used")

    async def get_blob(self, repository: str, digest: str, max_bytes: int) -> bytes:
        self.blob_limits.append(max_bytes)
        if max_bytes < 600:
            raise TooLarge(f"{digest}: over {max_bytes}")
        return b"x" * 600

    async def get_referrers(
        self, repository: str, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor]:
        return [Descriptor("m", "sha256:" + "a" * 64, 1)] * 5


async def test_budget_charges_bytes_and_announced_nodes() -> None:
    inner = CountingSource()
    source = BudgetedSource(inner, TargetBudget(max_nodes=12, max_bytes=1000))
    assert len(await source.get_referrers("r", "d")) == 5
    assert len(await source.get_blob("r", "b1", 2000)) == 600
    with pytest.raises(TargetBudgetExceeded, match="more than 1000 bytes"):
        await source.get_blob("r", "b2", 2000)  # only 400 bytes left: read with that limit
    assert inner.blob_limits == [1000, 400]
    assert source.budget.exceeded is not None
    assert "max_bytes_per_target" in source.budget.exceeded
    with pytest.raises(TargetBudgetExceeded):
        await source.get_referrers("r", "d")  # spent: later requests fail at once
    nodes = BudgetedSource(CountingSource(), TargetBudget(max_nodes=8, max_bytes=10**6))
    await nodes.get_referrers("r", "d")
    with pytest.raises(TargetBudgetExceeded, match="more than 8 nodes"):
        await nodes.get_referrers("r", "d")


def test_error_bodies_lose_the_authorization_values_we_sent() -> None:
    """What a registry quotes back of our Authorization header (as sent, or JSON-escaped) never
    reaches an error message; success bodies are content and stay as they are."""
    from auditor.registry.exchange import Reply
    from auditor.registry.transport import raise_for_status, without_credentials

    token = "eyJhbGciOi.abc/def+ghi"
    body = (
        b'{"errors":[{"code":"DENIED","message":"bad Bearer eyJhbGciOi.abc/def+ghi or '
        b'eyJhbGciOi.abc\\/def+ghi; basic dXNlcjpwdw=="}]}'
    )
    reply = Reply(403, httpx.Headers(), body, BASE)
    scrubbed = without_credentials(reply, "Basic dXNlcjpwdw==", f"Bearer {token}", None)
    with pytest.raises(AuthError) as caught:
        raise_for_status(scrubbed, "app")
    message = str(caught.value)
    assert message == "app: access denied, HTTP 403 (DENIED: bad Bearer *** or ***; basic ***)"
    ok = Reply(200, httpx.Headers(), body, BASE)
    assert without_credentials(ok, f"Bearer {token}") is ok


def test_a_listing_in_pages_is_bounded_in_bytes_not_only_in_items_and_pages() -> None:
    """1,000 pages of one 1 MiB tag each pass the item bound (10,000) and the page bound
    (1,000) and held a gigabyte; the pages together may hold no more than one page may.
    Injected pages: a real registry refuses tags that long."""
    import asyncio

    from auditor.errors import GraphLimitExceeded
    from auditor.registry.auth import AuthProvider
    from auditor.registry.client import RegistryClient

    served = {"pages": 0}
    huge = "t" * (1 << 20)

    def answer(request: httpx.Request) -> httpx.Response:
        served["pages"] += 1
        link = f'</v2/app/tags/list?last=p{served["pages"]}>; rel="next"'
        return httpx.Response(200, json={"name": "app", "tags": [huge]}, headers={"Link": link})

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            client = RegistryClient("registry.example", http, auth=AuthProvider.anonymous())
            with pytest.raises(GraphLimitExceeded, match=r"registry.example/app tags: more than"
                                                         r" \d+ bytes over all pages"):
                await client.list_tags("app")

    asyncio.run(run())
    assert served["pages"] <= 5


def test_next_link_is_linear_on_a_header_of_unclosed_brackets() -> None:
    """Every ``<`` without a ``>`` made the Link pattern scan to the end of the header again:
    quadratic (0.85 s of CPU for 16 KiB, 14 s for 64 KiB). A time bound, not a benchmark."""
    import time

    started = time.monotonic()
    assert next_link("<" * 65536) is None
    assert next_link("<" * 65536 + '</v2/next>; rel="next"') == "/v2/next"
    assert time.monotonic() - started < 1.0
