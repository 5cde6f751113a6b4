"""Delivery to real HTTP receivers on 127.0.0.1: retries, refusals, down receivers, HMAC."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import httpx

from auditor.daemon.alerts.delivery import Outcome, Sink, SinkKind, deliver
from auditor.daemon.alerts.diff import Alert, Transition
from auditor.model import Finding
from auditor.registry.retry import RetryPolicy
from auditor.registry.secret import Secret
from tests.support.receiver import free_port, receiver


async def _no_sleep(_: float) -> None:
    return None


FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.01, sleep=_no_sleep)
ALERT = Alert(
    "127.0.0.1:5000/team/app:v1",
    Transition.OPENED,
    datetime(2026, 11, 2, tzinfo=UTC),
    opened=(
        Finding(
            "unsigned-platform",
            "no signature",
            "policy both for *",
            "sha256:" + "a" * 64,
            "linux/arm64",
        ),
    ),
)


async def test_webhook_is_signed_and_retried_through_5xx() -> None:
    with receiver([503, 500]) as r:
        sink = Sink("webhook:ops", SinkKind.WEBHOOK, Secret(r.url), Secret("hook-secret"))
        payload = sink.render(ALERT, "d-1", None, None)
        async with httpx.AsyncClient() as client:
            result = await deliver(client, sink, "d-1", payload, policy=FAST)
        assert result.outcome is Outcome.SENT
        assert len(r.received) == 1
        got = r.received[0]
        expected = hmac.new(b"hook-secret", got.body, hashlib.sha256).hexdigest()
        assert got.headers["X-Auditor-Signature"] == "sha256=" + expected
        assert got.headers["X-Auditor-Delivery"] == "d-1"
        assert got.json()["findings"]["opened"][0]["platform"] == "linux/arm64"


async def test_slack_body_is_block_kit() -> None:
    with receiver() as r:
        sink = Sink("slack", SinkKind.SLACK, Secret(r.url))
        payload = sink.render(ALERT, "d-2", None, "https://auditor.example")
        async with httpx.AsyncClient() as client:
            result = await deliver(client, sink, "d-2", payload, policy=FAST)
        assert result.outcome is Outcome.SENT
        body = r.received[0].json()
        assert body["blocks"][0]["type"] == "header"
        assert "X-Auditor-Signature" not in r.received[0].headers


async def test_receiver_that_keeps_failing_is_failed_not_raised() -> None:
    with receiver([500, 500, 500, 500]) as r:
        sink = Sink("webhook:ops", SinkKind.WEBHOOK, Secret(r.url))
        async with httpx.AsyncClient() as client:
            result = await deliver(client, sink, "d-3", {"x": 1}, policy=FAST)
        assert result.outcome is Outcome.FAILED
        assert r.received == []


async def test_refusal_is_rejected_and_not_retried() -> None:
    with receiver([404]) as r:
        sink = Sink("slack", SinkKind.SLACK, Secret(r.url))
        async with httpx.AsyncClient() as client:
            result = await deliver(client, sink, "d-4", {"x": 1}, policy=FAST)
        assert result.outcome is Outcome.REJECTED
        assert r.statuses == []  # exactly one attempt consumed the 404


async def test_down_receiver_fails_without_leaking_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T000/B000/XXXXSECRETXXXX"
    sink = Sink("slack", SinkKind.SLACK, Secret(url))
    async with httpx.AsyncClient() as client:
        result = await deliver(client, sink, "d-5", {"x": 1}, policy=FAST, deadline=2)
    assert result.outcome is Outcome.FAILED
    assert "XXXXSECRETXXXX" not in result.reason
    assert "slack" in result.reason


async def test_hostile_answer_body_is_never_read() -> None:
    """A receiver answering with a gzip bomb (1 GiB of zeros in ~1 MiB) costs nothing."""
    import tracemalloc
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = b"\0" * (1024 * 1024)
    bomb = b"".join(packer.compress(zeros) for _ in range(1024)) + packer.flush()
    with receiver() as r:
        r.answer = bomb
        r.answer_headers = {"Content-Encoding": "gzip"}
        sink = Sink("webhook:ops", SinkKind.WEBHOOK, Secret(r.url))
        tracemalloc.start()
        try:
            async with httpx.AsyncClient() as client:
                result = await deliver(client, sink, "d-6", {"x": 1}, policy=FAST)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.outcome is Outcome.SENT
        assert peak < 16 * 1024 * 1024
