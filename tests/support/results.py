"""Target results shaped like real audits (index + platforms), for store and metrics tests.

Built through the real coverage rule (coverage.evaluate_target) from a graph and signature
results, so the verdicts are the ones an audit would produce.
"""

from __future__ import annotations

from datetime import UTC, datetime

from auditor.coverage import CoverageRule, Require, error_target, evaluate_target
from auditor.model import (
    Descriptor,
    GraphNode,
    ImageGraph,
    NodeKind,
    Platform,
    SignatureResult,
    SignatureStatus,
    TargetResult,
)
from auditor.oci import mediatypes as mt

INDEX = "sha256:" + "1" * 64
AMD64 = "sha256:" + "2" * 64
ARM64 = "sha256:" + "3" * 64
SIG_INDEX = "sha256:" + "a" * 64
SIG_AMD64 = "sha256:" + "b" * 64
SIG_ARM64 = "sha256:" + "c" * 64
EXPIRY = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)


def _valid(digest: str) -> SignatureResult:
    return SignatureResult(
        digest,
        "notation/jws",
        SignatureStatus.VALID,
        "verified under trust policy statement 'test' (strict)",
        signer="CN=test",
        expiry=EXPIRY,
        valid_until=EXPIRY,
        recheck_at=EXPIRY,
    )


def multiplatform(reference: str, *, signed_platforms: bool) -> TargetResult:
    """An index over linux/amd64 and linux/arm64; the index is signed, the platforms as asked."""
    sig = (Descriptor(mt.OCI_MANIFEST, SIG_INDEX, 100),)
    nodes = [GraphNode(INDEX, mt.OCI_INDEX, 500, NodeKind.INDEX, signatures=sig)]
    results: dict[str, tuple[SignatureResult, ...]] = {INDEX: (_valid(SIG_INDEX),)}
    for digest, arch, sig_digest in ((AMD64, "amd64", SIG_AMD64), (ARM64, "arm64", SIG_ARM64)):
        sigs = (Descriptor(mt.OCI_MANIFEST, sig_digest, 100),) if signed_platforms else ()
        nodes.append(
            GraphNode(
                digest,
                mt.OCI_MANIFEST,
                400,
                NodeKind.PLATFORM,
                platform=Platform("linux", arch),
                parent=INDEX,
                depth=1,
                signatures=sigs,
            )
        )
        results[digest] = (_valid(sig_digest),) if signed_platforms else ()
    graph = ImageGraph(reference, INDEX, tuple(nodes))
    rule = CoverageRule("*", Require.BOTH, None)
    return evaluate_target(reference, graph, results, rule, verified=True, trust_skipped=False)


def unreachable(reference: str) -> TargetResult:
    return error_target(reference, "127.0.0.1:1: connection refused")
