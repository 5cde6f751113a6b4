"""One fetch per thing per run: registry reads de-duplicated for the length of one audit run.

Within one run the same manifest, referrers list or blob is asked for more than once: the
target expansion reads every ``sha256-<hex>`` fallback tag to check it really is a referrers
index and the crawl then looks the same tag up for the node's referrers; two tags naming the
same image (``latest`` and ``v4``) share every node, and their targets run at the same time.
:class:`RunCache` keeps each answer by (registry, repository, what, digest or tag) and hands a
second asker the first one's answer, or, while it is still on its way, the same in-flight
fetch. So each of them costs one request per run, however many targets reach it and in
whatever order they do.

It lives for one run only (:func:`run_cache`, entered by ``App.run``; the registry client finds
it through a context variable, which every task the run starts inherits, so concurrent runs of
the daemon never share one): a tag may point elsewhere at the next run, and a run sees each tag
once, as the expansion saw it. Outside a run (``auditor sign``'s read-modify-write of a fallback
tag, tests, tools) nothing is cached.

Kept: answers and "not found" (a missing fallback tag is the common answer). Not kept: any
other failure (network, 5xx, a digest that does not match): the askers waiting at that moment
share it, a later one asks again. Bounded: entries are charged their bytes (plus a fixed
overhead each) against ``limits.run_cache_bytes``; past it the least recently used answers are
dropped (a later ask fetches again, so the cap costs requests, never a verdict). Fetches in
flight are not counted: they are bounded by the per-registry request limit.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar, cast

from auditor.errors import NotFound

T = TypeVar("T")
Key = tuple[str, ...]

ENTRY_OVERHEAD = 1024  # bytes charged per entry on top of its own (parsed objects, the key)

_CURRENT: ContextVar[RunCache | None] = ContextVar("auditor_run_cache", default=None)


class RunCache:
    """Answers and in-flight fetches of one run, by key, at most ``max_bytes`` of answers."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.evicted = 0
        self._done: OrderedDict[Key, tuple[object, int]] = OrderedDict()
        self._flying: dict[Key, asyncio.Task[object]] = {}

    async def once(
        self, key: Key, fetch: Callable[[], Awaitable[T]], size: Callable[[T], int]
    ) -> T:
        """``fetch()``'s answer for ``key``: from an earlier ask, a running one, or a new one.

        ``size`` says what an answer costs against the cap (its bytes).
        """
        if key in self._done:
            self._done.move_to_end(key)
            self.hits += 1
            value, _ = self._done[key]
            if isinstance(value, NotFound):
                raise value.with_traceback(None)
            return cast(T, value)
        task = self._flying.get(key)
        if task is None:
            task = asyncio.ensure_future(_run(fetch))
            self._flying[key] = task
            task.add_done_callback(lambda t: self._settle(key, t, size))
        else:
            self.hits += 1
        # Shielded: one asker cut off (its target's deadline) does not cancel the others' fetch.
        return cast(T, await asyncio.shield(task))

    def _settle(self, key: Key, task: asyncio.Task[object], size: Callable[[T], int]) -> None:
        self._flying.pop(key, None)
        if task.cancelled():
            return
        error = task.exception()  # retrieved here, so an unawaited failure is never "lost"
        if error is not None and not isinstance(error, NotFound):
            return
        value: object = error if error is not None else task.result()
        cost = ENTRY_OVERHEAD + (0 if error is not None else size(cast(T, value)))
        if cost > self.max_bytes:
            return
        self._done[key] = (value, cost)
        self.bytes += cost
        while self.bytes > self.max_bytes:
            _, (_, dropped) = self._done.popitem(last=False)
            self.bytes -= dropped
            self.evicted += 1

    async def close(self) -> None:
        """End of the run: cancel fetches nobody waits for any more (their askers were cut
        off), drop every answer."""
        flying = list(self._flying.values())
        for task in flying:
            task.cancel()
        if flying:
            await asyncio.gather(*flying, return_exceptions=True)
        self._flying.clear()
        self._done.clear()
        self.bytes = 0


async def _run(fetch: Callable[[], Awaitable[T]]) -> object:
    return await fetch()


def current() -> RunCache | None:
    """The run cache of the run this code runs in, or None outside a run."""
    return _CURRENT.get()


@contextmanager
def run_cache(cache: RunCache) -> Iterator[RunCache]:
    """Make ``cache`` the current run's for the code (and the tasks it starts) inside."""
    token = _CURRENT.set(cache)
    try:
        yield cache
    finally:
        _CURRENT.reset(token)


async def cached(
    key: Key, fetch: Callable[[], Awaitable[T]], size: Callable[[T], int]
) -> T:
    """``fetch()`` through the current run's cache, or straight when there is no run."""
    cache = current()
    if cache is None:
        return await fetch()
    return await cache.once(key, fetch, size)
