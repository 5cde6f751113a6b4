"""Bounded retries for registry requests, and the per-run record of registries that are down.

Retried: connection errors and timeouts, 5xx, and 429 (honouring ``Retry-After`` up to a cap).
Anything else, including every non-httpx exception, propagates untouched. Three bounds keep a
failing registry cheap: ``max_attempts`` per request, ``max_retry_after`` per wait (a server
cannot park us for an hour), and ``budget`` on the total time one request may spend retrying.
:class:`RegistryHealth` then marks a registry that keeps failing as down for the rest of the
run, so its remaining requests fail at once instead of each paying the full retry cost.
The sleep, clock and random functions are injectable so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx

from auditor.config import DEFAULT_LIMITS
from auditor.errors import ErrorCategory, RegistryError

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_DELTA_SECONDS = re.compile(r"[0-9]{1,12}", re.ASCII)
_MAX_HEADER = 200


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None.

    Only ASCII digits count as delta-seconds (``"²".isdigit()`` is true in Python, and
    ``float("²")`` raises); anything unparseable means "no advice", never an exception.
    """
    if value is None or len(value) > _MAX_HEADER:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    if not value.isascii():
        return None
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; ``max_attempts`` counts the first try.

    ``max_retry_after`` caps a server's ``Retry-After``; ``budget`` bounds the whole time a
    request may spend from its first attempt until a retry would start (a retry whose wait
    would pass it is not made).
    """

    max_attempts: int = DEFAULT_LIMITS.retry_attempts
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = DEFAULT_LIMITS.retry_after_max_seconds
    budget: float = DEFAULT_LIMITS.retry_budget_seconds
    jitter: bool = True
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after, self.max_delay)
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
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await attempt_fn()
            except httpx.TransportError as exc:
                wait = self.delay(attempt)
                if attempt >= self.max_attempts or not self._within_budget(started, wait):
                    kind = type(exc).__name__
                    raise RegistryError(
                        f"{what}: {kind} after {attempt} attempt(s): {_one_line(exc)}",
                        category=transport_category(exc),
                    ) from None
                await self.sleep(wait)
                continue
            status, retry_after = status_of(result)
            if status not in RETRY_STATUSES or attempt >= self.max_attempts:
                return result
            wait = self.delay(attempt, parse_retry_after(retry_after))
            if not self._within_budget(started, wait):
                return result
            await self.sleep(wait)

    def _within_budget(self, started: float, wait: float) -> bool:
        return self.clock() - started + wait <= self.budget


def transport_category(exc: httpx.TransportError) -> ErrorCategory:
    """``timeout`` for httpx's timeouts, ``tls`` when an ``ssl`` error is in the cause chain
    (a handshake with a plain-http port, an untrusted certificate), ``connect`` otherwise."""
    if isinstance(exc, httpx.TimeoutException):
        return ErrorCategory.TIMEOUT
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLError):
            return ErrorCategory.TLS
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return ErrorCategory.CONNECT


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "connection failed"
    return text[:200]


@dataclass
class RegistryHealth:
    """Consecutive failed requests to one registry within a run; past ``down_after``, down.

    A failed request is one that ended in a transport error, a 5xx or 429 after its retries,
    or a passed deadline. Any answered request (even a 404) proves the registry is up and
    resets the count. Once down, it stays down for the run: every later request fails fast.
    """

    host: str
    down_after: int = DEFAULT_LIMITS.registry_down_after
    failures: int = 0
    down_reason: str | None = None
    down_category: ErrorCategory = ErrorCategory.OTHER

    def check(self, what: str) -> None:
        if self.down_reason is not None:
            raise RegistryDown(
                f"{what}: not requested: {self.host} is marked down for this run "
                f"({self.down_reason})",
                category=self.down_category,
            )

    def succeeded(self) -> None:
        if self.down_reason is None:
            self.failures = 0

    def new_run(self) -> None:
        """Forget the last run's failures: a daemon reuses its clients across runs, and a
        registry that was down yesterday is asked again today."""
        self.failures = 0
        self.down_reason = None
        self.down_category = ErrorCategory.OTHER

    def failed(self, message: str, category: ErrorCategory = ErrorCategory.OTHER) -> None:
        """``category``: the failure's kind, kept for the requests refused after it."""
        self.failures += 1
        if self.failures >= self.down_after and self.down_reason is None:
            self.down_reason = f"{self.failures} requests in a row failed, last: {message}"
            self.down_category = category


class RegistryDown(RegistryError):
    """The registry failed too often in this run; the request was not sent."""
