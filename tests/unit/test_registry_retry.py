"""Backoff arithmetic and the retry loop, with an injected sleep (no real waiting)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import httpx
import pytest

from auditor.errors import RegistryError
from auditor.registry.retry import RetryPolicy, parse_retry_after


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:05 GMT", now) == 5.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_grows_caps_and_jitters() -> None:
    plain = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=False)
    assert [plain.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert plain.delay(1, retry_after=120) == 3.0  # Retry-After is capped too
    jittered = RetryPolicy(base_delay=1.0, max_delay=30.0, rng=random.Random(1))
    delays = [jittered.delay(3) for _ in range(50)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 1


async def test_transport_errors_are_retried_then_named() -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=3, jitter=False, sleep=sleeps)
    calls = 0

    async def attempt() -> int:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("connection refused")

    with pytest.raises(RegistryError, match=r"^reg/x: ConnectError after 3 attempt\(s\)"):
        await policy.run(attempt, lambda s: (s, None), "reg/x")
    assert calls == 3
    assert sleeps.calls == [0.5, 1.0]


async def test_other_exceptions_propagate_untouched() -> None:
    policy = RetryPolicy(sleep=Sleeps())

    async def attempt() -> int:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await policy.run(attempt, lambda s: (s, None), "x")


async def test_statuses_retried_until_success() -> None:
    sleeps = Sleeps()
    answers = iter([(503, None), (429, "2"), (200, None)])
    policy = RetryPolicy(jitter=False, sleep=sleeps)

    async def attempt() -> tuple[int, str | None]:
        return next(answers)

    assert await policy.run(attempt, lambda r: r, "x") == (200, None)
    assert sleeps.calls == [0.5, 2.0]


def test_policy_needs_one_attempt() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
