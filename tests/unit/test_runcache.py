"""The run cache: one fetch per key per run, shared while in flight, bounded, one run long."""

from __future__ import annotations

import asyncio

import pytest

from auditor.errors import NotFound, RegistryError
from auditor.registry.runcache import ENTRY_OVERHEAD, RunCache, cached, current, run_cache


class Fetcher:
    """Counts calls; answers after ``gate`` opens (so asks can overlap), or fails."""

    def __init__(self, answer: bytes = b"x", error: Exception | None = None) -> None:
        self.calls = 0
        self.answer = answer
        self.error = error
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> bytes:
        self.calls += 1
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.answer


def test_concurrent_asks_share_one_fetch_and_later_asks_reuse_it() -> None:
    async def main() -> None:
        cache = RunCache(1 << 20)
        fetch = Fetcher(b"manifest")
        fetch.gate.clear()
        asks = [asyncio.ensure_future(cache.once(("k",), fetch, len)) for _ in range(5)]
        await asyncio.sleep(0)
        fetch.gate.set()
        assert await asyncio.gather(*asks) == [b"manifest"] * 5
        assert await cache.once(("k",), fetch, len) == b"manifest"
        assert fetch.calls == 1
        assert cache.hits == 5
        assert cache.bytes == ENTRY_OVERHEAD + len(b"manifest")

    asyncio.run(main())


def test_not_found_is_kept_other_failures_are_not() -> None:
    async def main() -> None:
        cache = RunCache(1 << 20)
        missing = Fetcher(error=NotFound("tag sha256-ab: not found"))
        for _ in range(3):
            with pytest.raises(NotFound, match="sha256-ab"):
                await cache.once(("missing",), missing, len)
        assert missing.calls == 1

        flaky = Fetcher(error=RegistryError("503 from the registry"))
        flaky.gate.clear()
        asks = [asyncio.ensure_future(cache.once(("flaky",), flaky, len)) for _ in range(2)]
        await asyncio.sleep(0)
        flaky.gate.set()
        results = await asyncio.gather(*asks, return_exceptions=True)
        assert all(isinstance(r, RegistryError) for r in results)
        assert flaky.calls == 1  # the two asking at the same moment shared the failure
        flaky.error = None
        assert await cache.once(("flaky",), flaky, len) == b"x"  # a later ask tries again
        assert flaky.calls == 2

    asyncio.run(main())


def test_an_asker_cut_off_does_not_cancel_the_fetch_for_the_others() -> None:
    async def main() -> None:
        cache = RunCache(1 << 20)
        fetch = Fetcher(b"shared")
        fetch.gate.clear()
        impatient = asyncio.ensure_future(cache.once(("k",), fetch, len))
        patient = asyncio.ensure_future(cache.once(("k",), fetch, len))
        await asyncio.sleep(0)
        impatient.cancel()
        await asyncio.sleep(0)
        fetch.gate.set()
        assert await patient == b"shared"
        assert impatient.cancelled()
        assert fetch.calls == 1

    asyncio.run(main())


def test_past_the_cap_the_least_recently_used_answers_are_dropped() -> None:
    async def main() -> None:
        entry = ENTRY_OVERHEAD + 100
        cache = RunCache(3 * entry)
        fetches = {k: Fetcher(bytes(100)) for k in "abcd"}
        for k in "abc":
            await cache.once((k,), fetches[k], len)
        await cache.once(("a",), fetches["a"], len)  # "a" used again: "b" is now the oldest
        await cache.once(("d",), fetches["d"], len)
        assert cache.bytes == 3 * entry
        assert cache.evicted == 1
        await cache.once(("b",), fetches["b"], len)  # dropped: fetched again
        await cache.once(("a",), fetches["a"], len)
        assert fetches["b"].calls == 2
        assert fetches["a"].calls == 1

        huge = Fetcher(bytes(4 * entry))
        await cache.once(("huge",), huge, len)
        await cache.once(("huge",), huge, len)
        assert huge.calls == 2  # larger than the whole cap: never kept
        assert cache.bytes <= cache.max_bytes

    asyncio.run(main())


def test_a_zero_cap_keeps_nothing_but_still_shares_what_is_in_flight() -> None:
    async def main() -> None:
        cache = RunCache(0)
        fetch = Fetcher()
        fetch.gate.clear()
        asks = [asyncio.ensure_future(cache.once(("k",), fetch, len)) for _ in range(3)]
        await asyncio.sleep(0)
        fetch.gate.set()
        await asyncio.gather(*asks)
        assert fetch.calls == 1
        await cache.once(("k",), fetch, len)
        assert fetch.calls == 2
        assert cache.bytes == 0

    asyncio.run(main())


def test_only_code_inside_a_run_and_the_tasks_it_starts_share_the_cache() -> None:
    async def main() -> None:
        fetch = Fetcher()
        assert current() is None
        await cached(("k",), fetch, len)
        await cached(("k",), fetch, len)
        assert fetch.calls == 2  # no run: nothing cached

        cache = RunCache(1 << 20)
        with run_cache(cache):
            assert current() is cache
            await asyncio.gather(*(asyncio.ensure_future(cached(("k",), fetch, len))
                                   for _ in range(3)))
        assert fetch.calls == 3
        assert current() is None

        other = RunCache(1 << 20)

        async def concurrent_run() -> None:
            with run_cache(other):
                await cached(("k",), fetch, len)

        # Another run (another task, as the daemon's runs are) has its own cache.
        with run_cache(cache):
            await asyncio.ensure_future(concurrent_run())
            assert current() is cache
        assert fetch.calls == 4

    asyncio.run(main())


def test_closing_cancels_fetches_nobody_waits_for_and_forgets_everything() -> None:
    async def main() -> None:
        cache = RunCache(1 << 20)
        done = Fetcher()
        await cache.once(("done",), done, len)
        stuck = Fetcher()
        stuck.gate.clear()
        asker = asyncio.ensure_future(cache.once(("stuck",), stuck, len))
        await asyncio.sleep(0)
        asker.cancel()  # its target hit the deadline: the fetch goes on, orphaned
        await asyncio.sleep(0)
        # The orphan waits on a gate that never opens: close returns only because it cancels it.
        await asyncio.wait_for(cache.close(), timeout=5)
        assert stuck.calls == 1
        assert cache.bytes == 0
        await cache.once(("done",), done, len)
        assert done.calls == 2

    asyncio.run(main())


def test_a_referrers_answer_is_charged_what_it_holds() -> None:
    """Referrers descriptors carry annotations a registry chooses (up to max_manifest_bytes per
    page): each answer is charged their bytes, so the cap bounds memory. Charged a flat
    1 KiB per descriptor, 64 such answers of 256 KiB each stayed under a 1 MiB cap (16 MiB
    held). Injected answers: distribution 2.8 has no referrers API."""
    import httpx

    from auditor.oci import mediatypes as mt
    from auditor.registry.auth import AuthProvider
    from auditor.registry.client import RegistryClient

    big = "x" * (256 * 1024)

    def answer(request: httpx.Request) -> httpx.Response:
        digest = request.url.path.rsplit("/", 1)[1]
        doc = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": 10,
                           "annotations": {"note": big}}],
        }
        return httpx.Response(200, json=doc, headers={"Content-Type": mt.OCI_INDEX})

    async def run() -> RunCache:
        cache = RunCache(1 << 20)
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            client = RegistryClient("registry.example", http, auth=AuthProvider.anonymous())
            with run_cache(cache):
                for i in range(64):
                    found = await client.get_referrers("app", "sha256:" + f"{i:064x}")
                    assert found[0].annotations["note"] == big
        return cache

    cache = asyncio.run(run())
    assert cache.bytes <= cache.max_bytes
    assert cache.evicted >= 60  # at most 3 such answers fit under 1 MiB
