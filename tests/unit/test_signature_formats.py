"""The signature-format extension point: claims decide the graph, tags are probed, results routed.

Notation is the only format shipped; ``TagFormat`` is a minimal second format written here
against the interface (a cosign-like one: signatures under a ``sha256-<hex>.sig`` tag, not
referrers), so the extension point is exercised on real layouts before cosign arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from auditor.audit import Auditor, AuditTarget
from auditor.config import DEFAULT_LIMITS
from auditor.crawl import crawl
from auditor.layout.reader import OciLayoutSource, open_layout
from auditor.layout.writer import tag_manifest, write_manifest
from auditor.model import Descriptor, NodeStatus, SignatureResult, SignatureStatus
from auditor.notary.format import NotationFormat
from auditor.oci import mediatypes as mt
from auditor.oci.digest import fallback_tag
from auditor.oci.graph import build_graph
from auditor.oci.reference import LayoutReference
from auditor.signatures.interface import SignatureFormat, claiming_format
from auditor.source import ManifestSource
from devkit.samples import TAG, SampleLayout, attach_referrer, write_sample_layout

SIMPLE_SIGNING = "application/vnd.example.simplesigning+json"


def _sig_tag(digest: str) -> str:
    return fallback_tag(digest) + ".sig"


@dataclass
class TagFormat:
    """Claims manifests found under ``sha256-<hex>.sig``; judges each one valid, and counts."""

    name: str = "tagged"
    verifies: bool = True
    seen: list[tuple[str, str]] = field(default_factory=list)

    def claims(self, referrer: Descriptor) -> bool:
        return referrer.annotations.get(mt.ANNOTATION_REF_NAME, "").endswith(".sig")

    def signature_tags(self, subject_digest: str) -> Sequence[str]:
        return (_sig_tag(subject_digest),)

    def skips(self, scope: str) -> bool:
        return False

    async def fetch_and_verify(
        self,
        source: ManifestSource,
        repository: str,
        scope: str,
        subject: Descriptor,
        signature: Descriptor,
    ) -> SignatureResult:
        fetched = await source.get_manifest(repository, signature.digest)
        self.seen.append((subject.digest, fetched.descriptor.digest))
        return SignatureResult(signature.digest, self.name, SignatureStatus.VALID, "ok")


def _tag_signature(sample: SampleLayout, subject: Descriptor) -> Descriptor:
    """A manifest kept under the subject's ``.sig`` tag (no ``subject`` field: not a referrer)."""
    config = {"mediaType": mt.OCI_EMPTY, "digest": "sha256:" + "4" * 64, "size": 2}
    desc = write_manifest(
        sample.path,
        {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config, "layers": []},
    )
    tag_manifest(sample.path, desc, _sig_tag(subject.digest))
    return desc


def test_a_format_plugs_in_through_the_protocol() -> None:
    formats: list[SignatureFormat] = [NotationFormat(None), TagFormat()]
    notation_sig = Descriptor(
        mt.OCI_MANIFEST, "sha256:" + "1" * 64, 1, artifact_type=mt.NOTARY_SIGNATURE
    )
    tagged = Descriptor(
        mt.OCI_MANIFEST, "sha256:" + "2" * 64, 1, {mt.ANNOTATION_REF_NAME: "sha256-ab.sig"}
    )
    sbom = Descriptor(mt.OCI_MANIFEST, "sha256:" + "3" * 64, 1, artifact_type="x/sbom")
    assert claiming_format(formats, notation_sig) is formats[0]
    assert claiming_format(formats, tagged) is formats[1]
    assert claiming_format(formats, sbom) is None


async def test_crawl_probes_a_formats_tags_and_the_graph_classifies_by_claim(
    tmp_path: Path,
) -> None:
    sample = write_sample_layout(tmp_path / "img")
    amd64 = sample.platforms["linux/amd64"]
    signature = _tag_signature(sample, amd64)
    attach_referrer(
        sample.path, amd64, artifact_type="x/sbom", layer_media_type="x/sbom", layer=b"{}"
    )
    fmt = TagFormat()
    snapshot = await crawl(
        OciLayoutSource(sample.path), "", TAG, display=TAG, signature_tags=fmt.signature_tags
    )
    graph = build_graph(snapshot, TAG, DEFAULT_LIMITS.graph_limits(), is_signature=fmt.claims)
    # Absent tags (every other node) are not errors; the tagged manifest is amd64's signature.
    assert all(n.error is None for n in graph.nodes)
    by_digest = {n.digest: n for n in graph.nodes}
    assert [s.digest for s in by_digest[amd64.digest].signatures] == [signature.digest]
    assert [o.artifact_type for o in by_digest[amd64.digest].other_referrers] == ["x/sbom"]
    assert all(n.signatures == () for d, n in by_digest.items() if d != amd64.digest)


async def test_the_auditor_routes_each_signature_to_the_format_that_claims_it(
    tmp_path: Path,
) -> None:
    sample = write_sample_layout(tmp_path / "img")
    amd64 = sample.platforms["linux/amd64"]
    signature = _tag_signature(sample, amd64)
    fmt = TagFormat()
    auditor = Auditor(rules=(), formats=[NotationFormat(None), fmt])
    target = AuditTarget(LayoutReference(str(sample.path), TAG), open_layout(sample.path), "")
    report = await auditor.run([target])
    node = next(n for n in report.targets[0].nodes if n.node.digest == amd64.digest)
    assert fmt.seen == [(amd64.digest, signature.digest)]
    assert [(s.format, s.status) for s in node.signatures] == [("tagged", SignatureStatus.VALID)]
    assert node.status is NodeStatus.SIGNED
