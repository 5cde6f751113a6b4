"""Bounded retries with exponential backoff and jitter for registry requests.

Retried: connection errors and timeouts, 5xx, and 429 (honouring ``Retry-After``). Anything
else, including every non-httpx exception, propagates untouched. The sleep and random
functions are injectable so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx

from auditor.errors import RegistryError

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; ``max_attempts`` counts the first try."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: bool = True
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        backoff = min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)
        if self.jitter:
            # "Equal jitter": keep at least half the backoff so retries stay spread out.
            return backoff / 2 + self.rng.uniform(0, backoff / 2)
        return backoff

    async def run(
        self,
        attempt_fn: Callable[[], Awaitable[T]],
        status_of: Callable[[T], tuple[int, str | None]],
        what: str,
    ) -> T:
        """Call ``attempt_fn`` until it gives a non-retryable result or attempts run out.

        ``status_of`` returns (HTTP status, Retry-After header) for a result. The last
        retryable *response* is returned for the caller to map (429 -> RateLimited); the last
        transport error becomes a RegistryError naming ``what``.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await attempt_fn()
            except httpx.TransportError as exc:
                if attempt >= self.max_attempts:
                    kind = type(exc).__name__
                    raise RegistryError(
                        f"{what}: {kind} after {attempt} attempt(s): {_one_line(exc)}"
                    ) from None
                await self.sleep(self.delay(attempt))
                continue
            status, retry_after = status_of(result)
            if status not in RETRY_STATUSES or attempt >= self.max_attempts:
                return result
            await self.sleep(self.delay(attempt, parse_retry_after(retry_after)))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "connection failed"
    return text[:200]
