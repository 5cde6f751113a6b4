"""Requests one run makes against the real docker-registry (distribution 2.8, no referrers API).

The signed sample's tags share nodes (``v1-nested`` is an index whose one entry is ``v1``'s
index, so both reach the same index, platforms, attestation and signatures), and its fallback
tags are read twice by nature: once by the target expansion (is ``sha256-<hex>`` really a
referrers index?) and once by the crawl (the node's referrers). Within one run each of those is
fetched once (auditor/registry/runcache.py); requests are counted by the App's own response
hook, every one of them, as the registry answered it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditor.app import App
from auditor.config import parse_config
from auditor.model import AuditReport
from auditor.oci import mediatypes as mt
from auditor.state.caches import CachingSource
from auditor.state.runs import record_cli_run
from auditor.state.store import Store
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import (
    NOTATION_LAYOUTS,
    SignedSample,
    build_signed_sample,
    isolate_environment,
    push,
)

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not NOTATION_LAYOUTS.is_dir(), reason="../shared/fixtures not present"),
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedSample:
    return build_signed_sample(tmp_path_factory.mktemp("run-requests"))


@pytest.fixture(scope="module")
def repository(registry: RunningRegistry, signed: SignedSample) -> str:
    name = f"it/run-requests-{uuid.uuid4().hex[:8]}"
    pushed = push(registry.host, signed.path, name, update_fallback_tags=True)
    assert pushed.fallback_tags  # the expansion will read them, and so will the crawl
    return f"{registry.host}/{name}"


def _config(signed: SignedSample, **settings: Any) -> Any:
    verify = settings.pop("verify_children_exist", False)
    return parse_config(
        {
            "trust": {"policy": str(signed.trust_policy), "store": str(signed.trust_store)},
            "limits": settings,
            "verify_children_exist": verify,
        },
        "test",
    )


def _statuses(report: AuditReport) -> dict[str, list[tuple[str, str]]]:
    return {
        t.reference: sorted((n.node.digest, n.status.value) for n in t.nodes)
        for t in report.targets
    }


async def _runs(
    signed: SignedSample, repository: str, runs: int, **limits: Any
) -> tuple[list[AuditReport], list[Counter[str]]]:
    """``runs`` audits of the whole repository by one App; the requests of each run."""
    seen: list[Counter[str]] = []

    def count(response: httpx.Response) -> None:
        seen[-1][f"{response.request.method} {response.request.url.path}"] += 1

    reports = []
    async with App(_config(signed, **limits), on_response=count) as app:
        for _ in range(runs):
            seen.append(Counter())
            reports.append(await app.audit([repository]))
    return reports, seen


def test_each_manifest_tag_and_blob_is_fetched_once_per_run(
    signed: SignedSample, repository: str
) -> None:
    (report,), (requests,) = asyncio.run(_runs(signed, repository, 1))
    assert len(report.targets) == 3  # v1, v1-nested, v1-single; the fallback tags are not
    repeated = {path: n for path, n in requests.items() if n > 1}
    assert repeated == {}
    fallback = [p for p in requests if "/manifests/sha256-" in p]
    # Every fallback tag the push made is read, once, and only those (an unlisted node's
    # fallback tag is known missing from the tag list: no request at all).
    with_referrers = {d for d, sigs in signed.signatures.items() if sigs}
    with_referrers.add(signed.sample.platforms["linux/ppc64le"].digest)  # its SBOM
    assert len(fallback) == len(with_referrers)

    # Without kept answers (only fetches in flight are shared) the same run repeats requests,
    # and every verdict is the same.
    (plain,), (uncached,) = asyncio.run(_runs(signed, repository, 1, run_cache_bytes=0))
    assert _statuses(plain) == _statuses(report)
    assert sum(uncached.values()) > sum(requests.values())
    assert any(n > 1 for n in uncached.values())


def test_the_cache_lives_for_one_run(signed: SignedSample, repository: str) -> None:
    """A second run of the same App (the daemon's next run) asks the registry again for every
    manifest, tag and referrers list: tags may point elsewhere by then. (Envelopes are not
    fetched again: the App's verdict cache already holds their verdicts; nor is the referrers
    API probed again: the client remembers this registry has none.)"""
    reports, requests = asyncio.run(_runs(signed, repository, 2))
    again = {p for p in requests[0] if "/blobs/" not in p and "/referrers/" not in p}
    assert set(requests[1]) == again
    assert max(requests[1].values()) == 1
    assert _statuses(reports[1]) == _statuses(reports[0])


def test_image_manifests_an_index_lists_are_fetched_only_when_asked(
    signed: SignedSample, repository: str
) -> None:
    """A platform or attestation manifest is judged on its index descriptor (what signatures
    cover): no GET, unless ``verify_children_exist: true``; the verdicts are the same."""
    sample = signed.sample
    leaves = {d.digest for d in sample.platforms.values()} | {sample.attestation.digest}
    name = repository.split("/", 1)[1]

    def leaf_gets(requests: Counter[str]) -> set[str]:
        return {d for d in leaves if f"GET /v2/{name}/manifests/{d}" in requests}

    (lean,), (lean_requests,) = asyncio.run(_runs(signed, repository, 1))
    (full,), (full_requests,) = asyncio.run(
        _runs(signed, repository, 1, verify_children_exist=True)
    )
    assert leaf_gets(lean_requests) == set()
    assert leaf_gets(full_requests) == leaves
    assert _statuses(lean) == _statuses(full)


async def _stored_runs(
    signed: SignedSample, repository: str, store: Store, runs: int
) -> tuple[list[AuditReport], list[Counter[str]], CachingSource]:
    """Like ``_runs``, recorded in the state store as ``audit now --state`` does; counts
    each response as ``METHOD PATH STATUS``."""
    seen: list[Counter[str]] = []

    def count(response: httpx.Response) -> None:
        request = response.request
        seen[-1][f"{request.method} {request.url.path} {response.status_code}"] += 1

    reports = []
    async with App(_config(signed), store=store, on_response=count) as app:
        for _ in range(runs):
            seen.append(Counter())
            reports.append(await record_cli_run(store, app, [repository]))
        source = await app.registry(repository.split("/", 1)[0])
    assert isinstance(source, CachingSource)
    return reports, seen, source


def test_a_re_audit_asks_for_each_tag_unless_it_still_is_what_it_was(
    registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    """With a state store, a tag the last audit saw at a digest whose manifest is cached is
    asked with ``If-None-Match``: distribution answers 304, no body, and the verdicts are the
    same. A tag moved since is answered in full, and audited as what it is now."""
    name = f"it/conditional-{uuid.uuid4().hex[:8]}"
    push(registry.host, signed.path, name, update_fallback_tags=True)
    repository = f"{registry.host}/{name}"
    tags = ("v1", "v1-nested", "v1-single")
    store = Store.open(tmp_path / "state.db")
    try:
        reports, requests, source = asyncio.run(_stored_runs(signed, repository, store, 2))
        cold, warm = requests
        assert {f"GET /v2/{name}/manifests/{t} 200" for t in tags} <= set(cold)
        assert {f"GET /v2/{name}/manifests/{t} 304" for t in tags} <= set(warm)
        assert not any(f"/manifests/{t} 200" in r for t in tags for r in warm)
        assert source.not_modified == len(tags)
        assert _statuses(reports[1]) == _statuses(reports[0])

        # v1-single now names what v1 names: its answer is the new manifest, in full.
        index = httpx.get(
            f"{registry.url}/v2/{name}/manifests/v1", headers={"Accept": mt.OCI_INDEX}
        )
        moved = httpx.put(
            f"{registry.url}/v2/{name}/manifests/v1-single",
            content=index.content,
            headers={"Content-Type": index.headers["content-type"]},
        )
        assert moved.status_code == 201, moved.text
        (after,), (changed,), _ = asyncio.run(_stored_runs(signed, repository, store, 1))
        assert f"GET /v2/{name}/manifests/v1-single 200" in changed
        assert f"GET /v2/{name}/manifests/v1 304" in changed
        single = next(t for t in after.targets if t.reference.endswith(":v1-single"))
        assert single.digest == index.headers["docker-content-digest"]
    finally:
        store.close()


def test_one_run_keeps_a_tag_apart_per_repository_and_per_registry(
    registry: RunningRegistry, signed: SignedSample, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The run cache keys answers by registry and repository: the same tag in another
    repository, or the same repository and tag on another registry, is asked for and answered
    on its own, never served from the first one's answer (cache poisoning across them)."""
    from auditor.registry.client import RegistryClient
    from auditor.registry.push import push_manifest
    from auditor.registry.runcache import RunCache, run_cache
    from tests.support.registry_server import registry_server

    name = f"it/same-tag-{uuid.uuid4().hex[:8]}"
    other = f"{name}-other"
    push(registry.host, signed.path, name)
    push(registry.host, signed.path, other)
    with registry_server(tmp_path_factory.mktemp("second-registry")) as second:
        push(second.host, signed.path, name)

        async def run() -> tuple[list[str], RunCache]:
            cache = RunCache(1 << 20)
            async with httpx.AsyncClient() as http:
                first, elsewhere = RegistryClient(registry.host, http), RegistryClient(
                    second.host, http
                )
                single = await first.get_manifest(name, "v1-single")
                # v1 moves to v1-single's manifest in the other repository and registry only
                for client, repo in ((first, other), (elsewhere, name)):
                    await push_manifest(
                        client, repo, "v1", single.raw, single.descriptor.media_type
                    )
                with run_cache(cache):
                    digests = [
                        (await client.get_manifest(repo, "v1")).descriptor.digest
                        for client, repo in ((first, name), (first, other), (elsewhere, name))
                    ]
            return digests, cache

        digests, cache = asyncio.run(run())
    assert digests == [signed.sample.index.digest, *[signed.sample.single.digest] * 2]
    assert cache.hits == 0
