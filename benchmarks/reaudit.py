"""Warm re-audit vs cold audit of the same real registry, in the same run: requests and time.

A real ``docker-registry`` (distribution 2.8) on 127.0.0.1 holds the sample images (three
tags: a multi-platform index, a nested index, a single manifest; every node signed). The cold
audit starts from an empty state database; the warm ones re-audit the unchanged registry with
the state the cold one left: after a restart (a new App on the same state file, as a CI job
with ``audit now --state`` does) and in a running daemon (the same App). Requests are counted
from the shared httpx client's responses, by kind.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from auditor.app import App
from auditor.config import AuditorConfig, parse_config
from auditor.registry.client import RegistryClient
from auditor.registry.push import push_layout
from auditor.state.store import Store
from devkit.devregistry import local_registry
from devkit.samples import write_sample_layout
from devkit.signing import sign_in_layout
from devkit.testpki import make_pki

REPOSITORY = "bench/reaudit"


def request_kind(method: str, path: str) -> str | None:
    """What a registry request was for, by its path (None: none of the kinds the benchmarks
    count apart); how both benchmarks label the requests they count."""
    if path.endswith("/tags/list"):
        return "tags list"
    if "/referrers/" in path:
        return "referrers API"
    if "/blobs/" in path:
        return "blob"
    if "/manifests/" in path:
        ref = path.rsplit("/", 1)[1]
        if ref.startswith("sha256:"):
            return f"{method} manifest by digest"
        if ref.startswith("sha256-"):
            return f"{method} fallback tag"
        return f"{method} manifest by tag"
    return None


def kind_of(request: httpx.Request) -> str:
    path = request.url.path
    return request_kind(request.method, path) or f"{request.method} {path}"


@dataclass
class Measured:
    seconds: float
    requests: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def bench_reaudit(tmp: Path, repeat: int) -> None:
    sample = write_sample_layout(tmp / "layout", name="reaudit")
    pki = make_pki(name="bench-reaudit", validity=timedelta(days=30))
    now = datetime.now(UTC).replace(microsecond=0)
    for desc in (sample.index, sample.nested_index, sample.single, *sample.platforms.values(),
                 sample.attestation):
        sign_in_layout(sample.path, desc, pki.leaf.key, pki.chain, signing_time=now)
    store_dir = tmp / "truststore"
    pki.write_trust_store(store_dir, "bench")
    policy = tmp / "trustpolicy.json"
    policy.write_text(
        '{"version": "1.0", "trustPolicies": [{"name": "all", "registryScopes": ["*"], '
        '"signatureVerification": {"level": "strict", "override": {"revocation": "skip"}}, '
        '"trustStores": ["ca:bench"], "trustedIdentities": ["*"]}]}'
    )
    with local_registry(tmp / "registry") as registry:
        asyncio.run(_push(registry.host, sample.path))
        config = parse_config(
            {
                "registries": [{"url": f"http://{registry.host}", "repositories": [REPOSITORY]}],
                "trust": {"policy": str(policy), "store": str(store_dir)},
            },
            "bench",
        )
        colds, restarts, steadies = [], [], []
        for i in range(repeat):
            state = tmp / f"state-{i}.db"
            colds.append(asyncio.run(_audit(config, state)))
            restarts.append(asyncio.run(_audit(config, state)))
            steadies.append(asyncio.run(_audit(config, state, twice=True)))
    cold, restart, steady = (_median(m) for m in (colds, restarts, steadies))
    tags = 3
    print(f"reaudit  {tags} tags of a real registry, every node signed; median of {repeat}")
    for name, measured in (("cold", cold), ("restart", restart), ("steady", steady)):
        detail = ", ".join(f"{k} {v}" for k, v in sorted(measured.requests.items()))
        print(f"  {name:8} {measured.seconds * 1000:8.1f}ms  {measured.total:3d} requests "
              f"({measured.total / tags:.1f}/tag): {detail}")
    print(f"  ratio    restart/cold time {restart.seconds / cold.seconds:5.2f}x  requests "
          f"{restart.total / cold.total:5.2f}x; steady/cold time "
          f"{steady.seconds / cold.seconds:5.2f}x  requests {steady.total / cold.total:5.2f}x")


def _median(runs: list[Measured]) -> Measured:
    middle = sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]
    return Measured(statistics.median(m.seconds for m in runs), middle.requests)


async def _push(host: str, layout: Path) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        await push_layout(RegistryClient(host, http), layout, REPOSITORY,
                          update_fallback_tags=True)


async def _audit(config: AuditorConfig, state: Path, *, twice: bool = False) -> Measured:
    """One audit of the config with the state at ``state``; with ``twice``, the measured audit
    is the second one of the same App (a running daemon's steady state)."""
    counted: Counter[str] = Counter()
    store = Store.open(state)
    try:
        async with App(config, store=store,
                       on_response=lambda r: counted.update([kind_of(r.request)])) as app:
            if twice:
                await app.audit()
                counted.clear()
            began = time.perf_counter()
            report = await app.audit()
            seconds = time.perf_counter() - began
    finally:
        store.close()
    statuses = {t.status.value for t in report.targets}
    if statuses != {"compliant"}:
        raise SystemExit(f"benchmark setup broken: targets are {statuses}")
    return Measured(seconds, counted)
