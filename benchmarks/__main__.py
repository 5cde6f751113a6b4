"""Benchmarks: ``./dev bench`` (or ``python -m benchmarks``).

Each case times the auditor's code and a baseline measured in the same run on the same data, and
prints the ratio, so numbers compare across machines: the ratio is what to watch, not seconds.

- graph:   build_graph over a 1,000-platform index snapshot vs json.loads of the same manifests
- verify:  Verifier.verify of one JWS signature vs the bare RSA-PSS check of the same bytes
- audit:   a warm audit (verdict cache) of a signed sample layout vs a cold one
- memory:  peak traced allocation while crawling the 1,000-platform layout vs its manifest bytes
- reaudit: requests and time of a warm re-audit of a real registry (state database) vs a cold one
- scale:   issue 12's case: a seeded registry of R repositories x T tags; cold, warm and
           1%-changed audits vs a bare minimal httpx client and a per-digest process loop
           (``./dev bench scale --repositories 60 --tags 5`` for the issue's size)
- memory:  issue 12's 10^5 nodes: peak RSS of ``audit now`` over a generated OCI layout, per
           report format, vs the same binary auditing one tag (``./dev bench memory``)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from auditor.audit import Auditor, AuditTarget
from auditor.config import DEFAULT_LIMITS
from auditor.crawl import crawl
from auditor.layout.reader import open_layout
from auditor.layout.writer import init_layout, tag_manifest, write_blob, write_index, write_manifest
from auditor.model import Descriptor, Platform
from auditor.notary.envelope import parse_envelope
from auditor.notary.format import NotationFormat, is_notation_signature
from auditor.notary.revocation import RevocationChecker
from auditor.notary.sign import sign_jws, signature_manifest
from auditor.notary.trustpolicy import TrustPolicy, parse_trust_policy
from auditor.notary.verifier import Verifier
from auditor.oci import mediatypes as mt
from auditor.oci.graph import build_graph
from auditor.oci.manifest import ImageManifest, parse_manifest
from auditor.oci.reference import LayoutReference
from benchmarks.memory import MemoryShape, bench_memory
from benchmarks.reaudit import bench_reaudit
from benchmarks.scale import Shape, bench_scale
from devkit.samples import write_sample_layout
from devkit.signing import sign_in_layout
from devkit.testpki import make_pki


def _best(fn: Callable[[], object], repeat: int) -> float:
    """Median of ``repeat`` timings: robust to a noisy neighbour on a 2-core machine."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _report(name: str, ours: float, base: float, unit: str = "s") -> None:
    print(
        f"{name:8} ours {ours:10.6f}{unit}  baseline {base:10.6f}{unit}  "
        f"ratio {ours / base:8.2f}x"
    )


def _wide_layout(root: Path, children: int) -> Path:
    """An index with ``children`` tiny platform manifests, tagged ``wide``."""
    init_layout(root)
    config = Descriptor(mt.OCI_EMPTY, write_blob(root, b"{}"), 2)
    manifests = []
    for i in range(children):
        doc = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": config.media_type, "digest": config.digest, "size": 2},
            "layers": [],
            "annotations": {"n": str(i)},
        }
        d = write_manifest(root, doc)
        platform = Platform("linux", f"arch{i}")
        manifests.append(Descriptor(d.media_type, d.digest, d.size, platform=platform))
    index = write_index(root, manifests)
    tag_manifest(root, index, "wide")
    return root


def bench_graph_and_memory(tmp: Path, repeat: int) -> None:
    layout = _wide_layout(tmp / "wide", 1000)
    source = open_layout(layout)
    limits = DEFAULT_LIMITS.graph_limits()  # max_children 1000: the 1,000-wide index fits

    async def do_crawl() -> object:
        return await crawl(source, "", "wide", display="wide", limits=limits)

    tracemalloc.start()
    snapshot = asyncio.run(do_crawl())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    raws = [m.raw for m in snapshot.manifests.values()]  # type: ignore[attr-defined]
    claims = is_notation_signature
    ours = _best(lambda: build_graph(snapshot, "wide", limits, is_signature=claims), repeat)  # type: ignore[arg-type]
    base = _best(lambda: [json.loads(r) for r in raws], repeat)
    _report("graph", ours, base)
    total = sum(len(r) for r in raws)
    print(f"memory   peak {peak / 1024:10.1f}KiB  manifests {total / 1024:8.1f}KiB  "
          f"ratio {peak / total:8.2f}x")


def _strict_policy() -> TrustPolicy:
    """strict for every scope, trusting the ``ca:bench`` store and any identity."""
    statement = {
        "name": "all",
        "registryScopes": ["*"],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:bench"],
        "trustedIdentities": ["*"],
    }
    return parse_trust_policy(json.dumps({"version": "1.0", "trustPolicies": [statement]}))


def bench_verify(tmp: Path, repeat: int) -> None:
    pki = make_pki(name="bench", validity=timedelta(days=30))
    store = tmp / "store"
    pki.write_trust_store(store, "bench")
    policy = _strict_policy()
    subject = Descriptor(mt.OCI_MANIFEST, "sha256:" + "ab" * 32, 1234)
    now = datetime.now(UTC).replace(microsecond=0)
    envelope = sign_jws(subject, pki.leaf.key, pki.chain, signing_time=now)
    raw, _ = signature_manifest(subject, envelope, mt.JWS_ENVELOPE)
    manifest = parse_manifest(raw)
    assert isinstance(manifest, ImageManifest)
    verifier = Verifier(policy, store, revocation=RevocationChecker())
    result = verifier.verify("h/r", subject, manifest, envelope, "sha256:" + "cd" * 32)
    if result.status.value != "valid":
        raise SystemExit(f"benchmark setup broken: signature is {result.status}: {result.reason}")
    parsed = parse_envelope(mt.JWS_ENVELOPE, envelope)
    key = parsed.certificate_chain[0].public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    digest = {"PS256": hashes.SHA256(), "PS384": hashes.SHA384(), "PS512": hashes.SHA512()}[
        parsed.algorithm
    ]
    pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)

    def bare() -> None:
        key.verify(parsed.signature, parsed.signed_bytes, pss, digest)

    ours = _best(lambda: verifier.verify("h/r", subject, manifest, envelope, "sha256:x"), repeat)
    base = _best(bare, repeat)
    _report("verify", ours, base)


def bench_audit(tmp: Path, repeat: int) -> None:
    sample = write_sample_layout(tmp / "sample", name="bench")
    pki = make_pki(name="bench-audit", validity=timedelta(days=30))
    now = datetime.now(UTC).replace(microsecond=0)
    for desc in (sample.index, *sample.platforms.values()):
        sign_in_layout(sample.path, desc, pki.leaf.key, pki.chain, signing_time=now)
    store = tmp / "audit-store"
    pki.write_trust_store(store, "bench")
    policy = _strict_policy()
    source = open_layout(sample.path)
    target = AuditTarget(LayoutReference(str(sample.path), "v1"), source, "")

    def cold() -> None:
        verifier = Verifier(policy, store, revocation=RevocationChecker())
        auditor = Auditor(rules=(), formats=[NotationFormat(verifier)])
        report = asyncio.run(auditor.run([target]))
        assert report.targets[0].status.value == "compliant", report.targets[0]

    warm_verifier = Verifier(policy, store, revocation=RevocationChecker())
    warm_auditor = Auditor(rules=(), formats=[NotationFormat(warm_verifier)])
    asyncio.run(warm_auditor.run([target]))
    ours = _best(lambda: asyncio.run(warm_auditor.run([target])), repeat)
    base = _best(cold, repeat)
    _report("audit", ours, base)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("case", nargs="?", choices=["all", "micro", "scale", "memory"],
                        default="all",
                        help="micro: graph/verify/audit/memory/reaudit; scale: issue 12's case; "
                             "memory: 10^5 nodes, peak RSS per report format")
    parser.add_argument("--repeat", type=int, default=15, help="timings per case (median)")
    defaults = Shape()
    parser.add_argument("--repositories", type=int, default=defaults.repositories)
    parser.add_argument("--tags", type=int, default=defaults.tags, help="tags per repository")
    parser.add_argument("--platforms", type=int, default=defaults.platforms,
                        help="platforms per image (plus an attestation), at most 8")
    parser.add_argument("--signed", type=float, default=defaults.signed_share,
                        help="share of nodes signed (0..1)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--memory-tags", type=int, default=MemoryShape().tags,
                        help="memory: tags of the generated layout (x (8 platforms + 2) nodes)")
    parser.add_argument("--formats", default="json,sarif,table",
                        help="memory: report formats to measure, comma-separated; "
                             "FORMAT+state records the run in a new state database")
    parser.add_argument("--keep", type=Path, default=None,
                        help="memory: directory to keep (and reuse) the generated layout in")
    parser.add_argument("--sample", type=int, default=8,
                        help="per-digest processes actually run (scaled to all digests)")
    args = parser.parse_args(argv)
    if not 1 <= args.platforms <= 8 or not 0 <= args.signed <= 1:
        parser.error("--platforms must be 1..8 and --signed 0..1")
    print(f"registry-auditor benchmarks (median of {args.repeat}; ratio = ours / baseline)")
    with tempfile.TemporaryDirectory(prefix="auditor-bench-") as tmp:
        root = Path(tmp)
        if args.case in ("all", "micro"):
            bench_graph_and_memory(root, args.repeat)
            bench_verify(root, args.repeat)
            bench_audit(root, args.repeat)
            bench_reaudit(root, max(3, args.repeat // 3))
        if args.case == "memory":
            where = args.keep or root
            memory_shape = MemoryShape(tags=args.memory_tags)
            bench_memory(where, memory_shape, [f for f in args.formats.split(",") if f])
        if args.case in ("all", "scale"):
            shape = Shape(args.repositories, args.tags, args.platforms, args.signed, args.seed)
            bench_scale(root, shape, sample=max(1, args.sample))
    return 0


if __name__ == "__main__":
    sys.exit(main())
