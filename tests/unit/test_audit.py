"""The orchestrator on a real layout: signature bound, verdict cache, fail-closed paths."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditor.audit import Auditor, AuditSettings, AuditTarget
from auditor.layout.reader import open_layout
from auditor.model import (
    Descriptor,
    NodeStatus,
    SignatureResult,
    SignatureStatus,
    TargetStatus,
)
from auditor.notary.format import NotationFormat
from auditor.notary.revocation import RevocationChecker
from auditor.notary.trustpolicy import parse_trust_policy
from auditor.notary.verifier import Verifier
from auditor.oci.manifest import ImageManifest
from auditor.oci.reference import LayoutReference
from auditor.state.caches import StoreVerdictCache
from auditor.state.store import Store
from devkit.samples import SampleLayout, write_sample_layout
from devkit.signing import sign_in_layout
from devkit.testpki import TestPKI, make_pki

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class CountingVerifier:
    """A real Verifier that counts calls, to observe the cache (not a stand-in for it)."""

    inner: Verifier
    calls: list[str] = field(default_factory=list)

    def verify(
        self,
        scope: str,
        subject: Descriptor,
        signature_manifest: ImageManifest,
        envelope_bytes: bytes,
        signature_digest: str,
    ) -> SignatureResult:
        self.calls.append(signature_digest)
        return self.inner.verify(
            scope, subject, signature_manifest, envelope_bytes, signature_digest
        )

    def skips(self, scope: str) -> bool:
        return self.inner.skips(scope)


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return make_pki(name="audit-test", validity=timedelta(days=30))


def _verifier(tmp: Path, pki: TestPKI) -> Verifier:
    pki.write_trust_store(tmp / "store", "t")
    policy = parse_trust_policy(
        json.dumps(
            {
                "version": "1.0",
                "trustPolicies": [
                    {
                        "name": "all",
                        "registryScopes": ["*"],
                        "signatureVerification": {"level": "strict"},
                        "trustStores": ["ca:t"],
                        "trustedIdentities": ["*"],
                    }
                ],
            }
        )
    )
    return Verifier(policy, tmp / "store", revocation=RevocationChecker())


def _target(sample: SampleLayout, tag: str = "v1") -> AuditTarget:
    return AuditTarget(LayoutReference(str(sample.path), tag), open_layout(sample.path), "")


def _sign_all(sample: SampleLayout, pki: TestPKI) -> None:
    for desc in (sample.index, *sample.platforms.values()):
        sign_in_layout(sample.path, desc, pki.leaf.key, pki.chain, signing_time=NOW)


async def test_signed_everywhere_is_compliant_and_cached(tmp_path: Path, pki: TestPKI) -> None:
    sample = write_sample_layout(tmp_path / "img")
    _sign_all(sample, pki)
    verifier = CountingVerifier(_verifier(tmp_path, pki))
    auditor = Auditor(rules=(), formats=[NotationFormat(verifier)])
    first = await auditor.run([_target(sample)])
    assert first.targets[0].status is TargetStatus.COMPLIANT
    assert len(verifier.calls) == 4  # index + three platforms
    second = await auditor.run([_target(sample)])
    assert second.targets[0] == first.targets[0]
    assert len(verifier.calls) == 4  # every verdict came from the cache


async def test_signatures_beyond_the_bound_are_not_tried(tmp_path: Path, pki: TestPKI) -> None:
    sample = write_sample_layout(tmp_path / "img")
    stranger = make_pki(name="stranger", validity=timedelta(days=30), slot=1)
    amd64 = sample.platforms["linux/amd64"]
    for i in range(3):
        sign_in_layout(
            sample.path, amd64, stranger.leaf.key, stranger.chain,
            signing_time=NOW - timedelta(seconds=i),
        )
    verifier = CountingVerifier(_verifier(tmp_path, pki))
    auditor = Auditor(
        rules=(),
        formats=[NotationFormat(verifier)],
        settings=AuditSettings(max_signatures_per_node=2),
    )
    report = await auditor.run([_target(sample)])
    node = next(n for n in report.targets[0].nodes if n.node.digest == amd64.digest)
    assert len(verifier.calls) == 2
    assert node.status is not NodeStatus.SIGNED
    statuses = [s.status for s in node.signatures]
    assert statuses.count(SignatureStatus.INVALID) == 2
    assert statuses[-1] is SignatureStatus.ERROR
    assert "limit of 2 per node" in node.signatures[-1].reason


async def test_without_trust_policy_signatures_are_unverified(tmp_path: Path, pki: TestPKI) -> None:
    sample = write_sample_layout(tmp_path / "img")
    _sign_all(sample, pki)
    report = await Auditor(rules=(), formats=[NotationFormat(None)]).run([_target(sample)])
    target = report.targets[0]
    signed_nodes = [n for n in target.nodes if n.node.signatures]
    assert signed_nodes
    assert all(n.status is NodeStatus.UNVERIFIED for n in signed_nodes)
    assert not any(n.status is NodeStatus.SIGNED for n in target.nodes)
    assert target.status is not TargetStatus.COMPLIANT


async def test_a_missing_tag_is_an_error_target_not_an_abort(tmp_path: Path) -> None:
    sample = write_sample_layout(tmp_path / "img")
    report = await Auditor(rules=(), formats=[NotationFormat(None)]).run(
        [_target(sample, "no-such-tag"), _target(sample, "v1")]
    )
    missing, present = report.targets
    assert missing.status is TargetStatus.ERROR
    assert missing.error is not None
    assert "no-such-tag" in missing.error
    assert present.nodes  # the run went on


@pytest.mark.parametrize("kept_in", ["memory", "state store"])
async def test_the_verdict_cache_is_keyed_by_the_subjects_whole_descriptor(
    tmp_path: Path, pki: TestPKI, kept_in: str
) -> None:
    """A signature over (media type, digest, size) must not be reused for the same digest
    announced with another media type or size: notation would refuse that descriptor."""
    sample = write_sample_layout(tmp_path / "img")
    amd64 = sample.platforms["linux/amd64"]
    sign_in_layout(sample.path, amd64, pki.leaf.key, pki.chain, signing_time=NOW)
    verifier = CountingVerifier(_verifier(tmp_path, pki))
    auditor = Auditor(rules=(), formats=[NotationFormat(verifier)])
    if kept_in == "state store":
        auditor.cache = StoreVerdictCache(Store.open(tmp_path / "state.db"), "trust-hash")
    target = _target(sample)
    (signature,) = await target.source.get_referrers("", amd64.digest)
    subject = Descriptor(amd64.media_type, amd64.digest, amd64.size)
    first = await auditor._verify_one(target, subject, signature)
    assert first.status is SignatureStatus.VALID
    assert (await auditor._verify_one(target, subject, signature)) == first
    assert len(verifier.calls) == 1
    for other in (
        Descriptor(
            "application/vnd.docker.distribution.manifest.v2+json", amd64.digest, amd64.size
        ),
        Descriptor(amd64.media_type, amd64.digest, amd64.size + 1),
    ):
        result = await auditor._verify_one(target, other, signature)
        assert result.status is SignatureStatus.INVALID
        assert "content descriptor mismatch" in result.reason
    assert len(verifier.calls) == 3
