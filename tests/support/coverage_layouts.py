"""Sample layouts signed in the patterns the coverage policy must tell apart.

One OCI layout per signing pattern (devkit.samples: an index over linux/amd64, linux/arm64/v8,
linux/ppc64le and a buildx-style attestation, a nested index over that index, and a
single-manifest tag), each signed on the nodes its pattern names, with a trusted test PKI and,
for the "one platform signature invalid" pattern, an untrusted one. The same folders are read
as ``oci-layout:`` targets and pushed, one repository each, into the real registry, so both
sources are judged on identical bytes.

Nodes are named by label (``index``, ``nested``, ``single``, ``attestation`` and the platform
strings) so expectations read like the issue's scenarios; ``CoverageLayout.digest`` maps a
label to the digest that was written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from auditor.model import Descriptor
from auditor.registry.client import RegistryClient
from auditor.registry.push import push_layout
from devkit.samples import NESTED_TAG, SINGLE_TAG, TAG, SampleLayout, write_sample_layout
from devkit.signing import sign_in_layout
from devkit.testpki import TestPKI, make_pki

INDEX, NESTED, SINGLE, ATTESTATION = "index", "nested", "single", "attestation"
AMD64, ARM64, PPC64LE = "linux/amd64", "linux/arm64/v8", "linux/ppc64le"
PLATFORMS = (AMD64, ARM64, PPC64LE)
LABELS = (NESTED, INDEX, *PLATFORMS, ATTESTATION, SINGLE)
TAGS = {INDEX: TAG, NESTED: NESTED_TAG, SINGLE: SINGLE_TAG}
NAMESPACE = "coverage"
STORE_NAME = "coverage"


@dataclass(frozen=True)
class Pattern:
    """Which nodes carry a trusted signature and which only an untrusted one."""

    trusted: frozenset[str]
    untrusted: frozenset[str] = frozenset()


PATTERNS: Mapping[str, Pattern] = {
    # The ratify case: only the index is signed.
    "index-only": Pattern(frozenset({INDEX})),
    "platforms-only": Pattern(frozenset(PLATFORMS)),
    "both": Pattern(frozenset({INDEX, *PLATFORMS, SINGLE})),
    # Platforms signed, but linux/arm64/v8 only by a key the trust store does not know.
    "platform-invalid": Pattern(frozenset({AMD64, PPC64LE}), frozenset({ARM64})),
    "attested": Pattern(frozenset({INDEX, *PLATFORMS, ATTESTATION})),
    # The outer (nested) index and the platforms are signed; the inner index is not.
    "nested": Pattern(frozenset({NESTED, *PLATFORMS})),
}


@dataclass(frozen=True)
class CoverageLayout:
    """One pattern's layout on disk and the registry repository it is pushed to."""

    pattern: str
    sample: SampleLayout
    signatures: Mapping[str, str]  # label -> the signature manifest's digest

    @property
    def path(self) -> Path:
        return self.sample.path

    @property
    def repository(self) -> str:
        return f"{NAMESPACE}/{self.pattern}"

    def digest(self, label: str) -> str:
        return descriptor_of(self.sample, label).digest

    def label(self, digest: str) -> str:
        """The label of a digest written in this layout (KeyError for anything else)."""
        return next(label for label in LABELS if self.digest(label) == digest)


@dataclass(frozen=True)
class CoverageLayouts:
    """Every pattern's layout plus the trust policy and trust store that judge them."""

    root: Path
    layouts: Mapping[str, CoverageLayout]
    trust_policy: Path
    trust_store: Path

    def __getitem__(self, pattern: str) -> CoverageLayout:
        return self.layouts[pattern]


def _notation_subject(cert_subject: str) -> str:
    """notation writes ``x509.subject`` as ``C=US, ST=WA, ...`` (reverse RFC 4514 order)."""
    return ", ".join(reversed(cert_subject.split(",")))


def descriptor_of(sample: SampleLayout, label: str) -> Descriptor:
    """The descriptor a label names in a sample layout."""
    named = {INDEX: sample.index, NESTED: sample.nested_index, SINGLE: sample.single,
             ATTESTATION: sample.attestation}
    return named[label] if label in named else sample.platforms[label]


def _sign(sample: SampleLayout, pattern: Pattern, trusted: TestPKI,
          stranger: TestPKI, now: datetime) -> dict[str, str]:
    """Sign the pattern's nodes: platforms as COSE, the rest as JWS (both envelope kinds)."""
    signatures: dict[str, str] = {}
    for label in LABELS:
        if label not in pattern.trusted | pattern.untrusted:
            continue
        pki = trusted if label in pattern.trusted else stranger
        signed = sign_in_layout(
            sample.path, descriptor_of(sample, label), pki.leaf.key, pki.chain,
            signing_time=now, envelope_format="cose" if label in PLATFORMS else "jws",
        )
        signatures[label] = signed.digest
    return signatures


def build_coverage_layouts(root: Path) -> CoverageLayouts:
    """Write every pattern's layout under ``root``, plus trust policy and store."""
    trusted = make_pki(name="coverage-release", validity=timedelta(days=30))
    stranger = make_pki(name="coverage-stranger", validity=timedelta(days=30), slot=1)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    layouts = {}
    for pattern, spec in PATTERNS.items():
        sample = write_sample_layout(root / "layouts" / pattern, name=f"coverage-{pattern}")
        layouts[pattern] = CoverageLayout(
            pattern, sample, _sign(sample, spec, trusted, stranger, now)
        )
    store = root / "truststore"
    trusted.write_trust_store(store, STORE_NAME)
    subject = _notation_subject(trusted.leaf.cert.subject.rfc4514_string())
    policy = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "coverage",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": [f"ca:{STORE_NAME}"],
                "trustedIdentities": [f"x509.subject: {subject}"],
            }
        ],
    }
    policy_path = root / "trustpolicy.json"
    policy_path.write_text(json.dumps(policy, indent=2))
    return CoverageLayouts(root, layouts, policy_path, store)


async def push_coverage_layouts(layouts: CoverageLayouts, host: str) -> None:
    """Push each layout, signatures and fallback tags included, to its own repository."""
    async with httpx.AsyncClient(timeout=30) as http:
        client = RegistryClient(host, http)
        for layout in layouts.layouts.values():
            await push_layout(client, layout.path, layout.repository, update_fallback_tags=True)
