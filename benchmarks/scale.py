"""Issue 12's benchmark: a cold, a warm and a 1%-changed audit of a filled real registry,
against the two baselines, in one run (``./dev bench scale``).

The generator fills Debian's docker-registry (distribution 2.8, no referrers API) on 127.0.0.1
with R repositories x T tags of multi-platform images: an index of P platform manifests plus a
buildx-style attestation manifest, a chosen share of the nodes signed by the project's signer
(devkit/signing.py into an OCI layout, auditor/registry/push.py into the registry, fallback
tags as notation writes them). Every byte follows from the seed.

Every measured thing runs as its own process, so wall time, CPU time (user + system, from
``wait4``) and peak RSS are the process's own; requests are counted from the registry's access
log, so the auditor and the baselines are counted the same way:

- ours: ``auditor audit now --config ... --state ...`` (cold: empty state; warm: the same
  state again, unchanged registry; changed: after 1% of the tags were re-pushed).
- bare: benchmarks/bare.py, a concurrent httpx client making only the obvious requests.
- per-digest: a fresh ``auditor audit now REPO@DIGEST`` process per platform digest, one after
  the other, as a ``notation verify`` loop would be; timed on a sample of the digests and
  scaled to all of them (each process costs the same: start, one manifest, its referrers).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from auditor.layout.writer import init_layout, tag_manifest, write_blob, write_index, write_manifest
from auditor.model import Descriptor, Platform
from auditor.oci import mediatypes as mt
from auditor.registry.client import RegistryClient
from auditor.registry.push import push_layout
from benchmarks.reaudit import request_kind
from devkit.devregistry import local_registry
from devkit.samples import OCI_CONFIG, OCI_LAYER_GZIP
from devkit.signing import sign_in_layout
from devkit.testpki import TestPKI, make_pki

ARCHES = ("amd64", "arm64", "arm", "ppc64le", "s390x", "386", "riscv64", "mips64le")


@dataclass(frozen=True)
class Shape:
    repositories: int = 4
    tags: int = 5
    platforms: int = 3
    signed_share: float = 0.5
    seed: int = 12

    @property
    def nodes(self) -> int:
        return self.repositories * self.tags * (self.platforms + 2)


@dataclass
class Run:
    """One measured process."""

    wall: float
    cpu: float
    rss_mib: float
    requests: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def _image(root: Path, rng: random.Random, label: str, platform: Platform) -> Descriptor:
    config = json.dumps({"architecture": platform.architecture, "os": platform.os}).encode()
    layer = rng.randbytes(64)
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": write_blob(root, config),
                   "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": write_blob(root, layer),
                    "size": len(layer)}],
        "annotations": {"bench": label},
    }
    d = write_manifest(root, doc)
    return Descriptor(d.media_type, d.digest, d.size, platform=platform)


def _attestation(root: Path, label: str, subject: Descriptor) -> Descriptor:
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "bench": label}).encode()
    config = b'{"architecture":"unknown","os":"unknown"}'
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": write_blob(root, config),
                   "size": len(config)},
        "layers": [{"mediaType": mt.IN_TOTO,
                    "digest": write_blob(root, statement), "size": len(statement)}],
    }
    d = write_manifest(root, doc)
    return Descriptor(
        d.media_type, d.digest, d.size, platform=Platform("unknown", "unknown"),
        annotations={"vnd.docker.reference.type": "attestation-manifest",
                     "vnd.docker.reference.digest": subject.digest},
    )


def write_tag(root: Path, shape: Shape, pki: TestPKI, rng: random.Random, tag: str,
              generation: int, now: datetime) -> list[str]:
    """One multi-platform tag in the layout at ``root``; returns its platform digests."""
    label = f"{tag}/{generation}"
    platforms = [_image(root, rng, f"{label}/{arch}", Platform("linux", arch))
                 for arch in ARCHES[: shape.platforms]]
    attestation = _attestation(root, label, platforms[0])
    index = write_index(root, [*platforms, attestation])
    tag_manifest(root, index, tag)
    for node in (index, *platforms, attestation):
        if rng.random() < shape.signed_share:
            sign_in_layout(root, node, pki.leaf.key, pki.chain, signing_time=now)
    return [p.digest for p in platforms]


def _tagged(root: Path, tag: str) -> Descriptor:
    entry = next(m for m in json.loads((root / "index.json").read_text())["manifests"]
                 if m.get("annotations", {}).get(mt.ANNOTATION_REF_NAME) == tag)
    return Descriptor(entry["mediaType"], entry["digest"], entry["size"])


async def fill(url: str, tmp: Path, shape: Shape, pki: TestPKI) -> dict[str, list[str]]:
    """The registry filled from the seed; returns each repository's platform digests."""
    rng = random.Random(shape.seed)
    now = datetime.now(UTC).replace(microsecond=0)
    digests: dict[str, list[str]] = {}
    async with httpx.AsyncClient(timeout=60) as http:
        client = RegistryClient(url.removeprefix("http://"), http)
        for r in range(shape.repositories):
            repo = f"bench/app{r:03d}"
            root = tmp / "layouts" / repo
            init_layout(root)
            digests[repo] = []
            for t in range(shape.tags):
                digests[repo] += write_tag(root, shape, pki, rng, f"v{t}", 0, now)
            # ``latest`` names the newest version too, as in most repositories: its nodes are
            # shared with another tag (what per-run de-duplication of fetches is about).
            tag_manifest(root, _tagged(root, f"v{shape.tags - 1}"), "latest")
            await push_layout(client, root, repo, update_fallback_tags=True)
    return digests


async def change(url: str, tmp: Path, shape: Shape, pki: TestPKI, share: float) -> int:
    """Re-push ``share`` of the tags with new content (rounded up to one); returns how many."""
    rng = random.Random(shape.seed + 1)
    now = datetime.now(UTC).replace(microsecond=0)
    total = shape.repositories * shape.tags
    count = max(1, round(total * share))
    chosen = sorted(rng.sample(range(total), count))
    async with httpx.AsyncClient(timeout=60) as http:
        client = RegistryClient(url.removeprefix("http://"), http)
        for n in chosen:
            repo, tag = f"bench/app{n // shape.tags:03d}", f"v{n % shape.tags}"
            root = tmp / "changed" / f"{n}"
            init_layout(root)
            write_tag(root, shape, pki, rng, tag, 1, now)
            await push_layout(client, root, repo, update_fallback_tags=True)
    return count


def measure(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` as a process; its wall, CPU, peak RSS and the registry requests it made."""
    offset = log.stat().st_size
    began = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode not in (0, 1):  # 1: a noncompliant audit, expected here
        raise SystemExit(f"benchmark step failed ({process.returncode}): {argv}\n{stderr}")
    time.sleep(0.2)  # the registry writes its access log line after the response
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
               Counter(_kind(line) for line in lines if '"' in line and " /v2/" in line))


def _fastest(argv: list[str], log: Path, times: int = 3) -> Run:
    """The quickest of a few runs: a start-up cost, least disturbed by the neighbours."""
    return min((measure(argv, log) for _ in range(times)), key=lambda r: r.wall)


def _kind(line: str) -> str:
    request = line.split('"')[1]
    method, path = [*request.split(" "), "", ""][:2]
    kind = request_kind(method, path.split("?")[0]) or f"{method} other"
    if kind.endswith("manifest by tag") and line.split('"')[2].split()[:1] == ["304"]:
        # A 304 (If-None-Match: the tag still is what the last audit saw) carries no body.
        return f"{kind} (304)"
    return kind


def _verdicts(report: Path) -> dict[str, str]:
    data = json.loads(report.read_text())
    return {t["reference"] + " " + n["digest"]: n["status"]
            for t in data["targets"] for n in t.get("nodes", [])}


def _line(name: str, run: Run, nodes: int) -> str:
    detail = ", ".join(f"{k} {v}" for k, v in sorted(run.requests.items()))
    return (f"  {name:11} {run.wall:7.2f}s wall {run.cpu:6.2f}s cpu {run.rss_mib:6.1f}MiB "
            f"{run.total:5d} req ({run.total / nodes:.2f}/node)  {detail}")


def _goal(text: str, value: float, ok: bool) -> str:
    return f"  {'met    ' if ok else 'NOT met'}  {text:58} measured {value:7.2f}"


def bench_scale(tmp: Path, shape: Shape, sample: int = 8) -> None:
    import asyncio

    pki = make_pki(name="bench-scale", validity=timedelta(days=30))
    store = tmp / "scale-truststore"
    pki.write_trust_store(store, "bench")
    policy = tmp / "scale-trustpolicy.json"
    policy.write_text(
        '{"version": "1.0", "trustPolicies": [{"name": "all", "registryScopes": ["*"], '
        '"signatureVerification": {"level": "strict", "override": {"revocation": "skip"}}, '
        '"trustStores": ["ca:bench"], "trustedIdentities": ["*"]}]}'
    )
    python = sys.executable
    print(f"scale    {shape.repositories} repositories x {shape.tags} tags (+ latest, an alias) x "
          f"({shape.platforms} platforms + attestation + index) = {shape.nodes} nodes, "
          f"{shape.signed_share:.0%} signed, seed {shape.seed}")
    with local_registry(tmp / "scale-registry", access_log=True) as registry:
        log = registry.workdir / "registry.log"
        began = time.perf_counter()
        digests = asyncio.run(fill(registry.url, tmp, shape, pki))
        print(f"  filled in {time.perf_counter() - began:.1f}s")
        repos = sorted(digests)
        config = tmp / "scale-config.json"
        config.write_text(json.dumps({
            "registries": [{"url": registry.url, "repositories": repos}],
            "trust": {"policy": str(policy), "store": str(store)},
        }))
        state = tmp / "scale-state.db"

        def ours(name: str) -> Run:
            out = tmp / f"scale-{name}.json"
            run = measure([python, "-m", "auditor", "audit", "now", "--config", str(config),
                           "--state", str(state), "--format", "json", "-o", str(out),
                           "--no-progress"], log)
            verdicts[name] = _verdicts(out)
            return run

        verdicts: dict[str, dict[str, str]] = {}
        # What starting each process costs before its first request (imports): on a loaded
        # 2-core machine it is seconds and would hide the audit itself.
        start_ours = _fastest([python, "-c", "import auditor.cli, auditor.app"], log)
        start_bare = _fastest([python, "-c", "import httpx, asyncio"], log)
        bare = measure([python, "-m", "benchmarks.bare", registry.url, *repos], log)
        cold = ours("cold")
        warm = ours("warm")
        if verdicts["warm"] != verdicts["cold"]:
            raise SystemExit("benchmark broken: the warm audit's verdicts differ from the cold")
        changed_tags = asyncio.run(change(registry.url, tmp, shape, pki, 0.01))
        changed = ours("changed")
        all_digests = [(r, d) for r in repos for d in digests[r]]
        picked = random.Random(shape.seed).sample(all_digests, min(sample, len(all_digests)))
        loop_runs = [
            measure([python, "-m", "auditor", "audit", "now", f"{registry.host}/{r}@{d}",
                     "--trust-policy", str(policy), "--trust-store", str(store),
                     "--format", "json", "--no-progress"], log)
            for r, d in picked
        ]
    per_digest = sum(r.wall for r in loop_runs) / len(loop_runs)
    loop_wall = per_digest * len(all_digests)
    nodes = shape.nodes
    print(_line("bare", bare, nodes))
    print(_line("cold", cold, nodes))
    print(_line("warm", warm, nodes))
    print(_line("changed", changed, nodes) + f"  ({changed_tags} tag(s) re-pushed)")
    print(f"  per-digest  {per_digest:7.2f}s wall per process, x {len(all_digests)} platform "
          f"digests = {loop_wall:.1f}s (sampled {len(loop_runs)}; "
          f"{sum(r.total for r in loop_runs) / len(loop_runs):.1f} req each)")
    print(f"  startup     {start_ours.wall:7.2f}s ours (imports), {start_bare.wall:.2f}s bare "
          f"(httpx): subtracted below where marked 'net'")
    extra = changed.total - warm.total

    def net(run: Run, start: Run) -> float:
        return max(0.01, run.wall - start.wall)
    print("goals (ratios measured above, same run, same registry)")
    print(_goal("cold time / bare client time <= 1.0", cold.wall / bare.wall,
                cold.wall <= bare.wall))
    cold_net, bare_net = net(cold, start_ours), net(bare, start_bare)
    print(_goal("net cold time / net bare client time <= 1.0", cold_net / bare_net,
                cold_net <= bare_net))
    print(_goal("cold requests / bare client requests (< 1.0: fewer)", cold.total / bare.total,
                cold.total < bare.total))
    print(_goal("warm requests per node <= 0.6", warm.total / nodes, warm.total / nodes <= 0.6))
    print(_goal("warm time / cold time <= 0.15", warm.wall / cold.wall,
                warm.wall <= 0.15 * cold.wall))
    print(_goal("net warm time / net cold time <= 0.15", net(warm, start_ours) / cold_net,
                net(warm, start_ours) <= 0.15 * cold_net))
    print(_goal(f"1% changed: extra requests per changed tag vs warm (<= {shape.platforms + 2}x4)",
                extra / changed_tags, extra / changed_tags <= (shape.platforms + 2) * 4))
    print(_goal("per-digest loop time / cold time >= 20", loop_wall / cold.wall,
                loop_wall >= 20 * cold.wall))
    print("  see      10^5 nodes within 300 MB peak RSS: ./dev bench memory (RESULTS.md)")
