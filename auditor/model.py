"""Plain, immutable data shared by every layer: descriptors, platforms, graph nodes, verdicts.

Everything here is keyed by digest where it can be: content-addressed results can be cached
and compared across runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from auditor.errors import ErrorCategory


def _frozen_map(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Platform:
    """An OCI platform; ``str()`` gives ``os/architecture[/variant]``."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    def __str__(self) -> str:
        parts = [self.os, self.architecture]
        if self.variant:
            parts.append(self.variant)
        return "/".join(parts)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]``; raises ValueError on anything else."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not os/architecture[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def normalized(self) -> Platform:
        """Canonical form for comparisons: arm64 is arm64/v8, arm is arm/v7, amd64/v1 is amd64."""
        arch, variant = self.architecture.lower(), (self.variant or "").lower() or None
        if arch == "aarch64":
            arch = "arm64"
        if arch in ("x86_64", "x86-64"):
            arch = "amd64"
        if arch == "arm64" and variant is None:
            variant = "v8"
        elif arch == "arm" and variant is None:
            variant = "v7"
        elif arch == "amd64" and variant == "v1":
            variant = None
        return Platform(self.os.lower(), arch, variant)

    @property
    def is_unknown(self) -> bool:
        return self.os == "unknown" and self.architecture == "unknown"


@dataclass(frozen=True, eq=False)
class Descriptor:
    """An OCI content descriptor (annotations are a read-only mapping)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=lambda: _frozen_map(None))
    platform: Platform | None = None
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.annotations, MappingProxyType):
            object.__setattr__(self, "annotations", _frozen_map(self.annotations))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Descriptor):
            return NotImplemented
        return (
            self.media_type == other.media_type
            and self.digest == other.digest
            and self.size == other.size
            and dict(self.annotations) == dict(other.annotations)
            and self.platform == other.platform
            and self.artifact_type == other.artifact_type
        )

    def __hash__(self) -> int:
        return hash((self.media_type, self.digest, self.size))


class NodeKind(StrEnum):
    INDEX = "index"
    PLATFORM = "platform"
    ATTESTATION = "attestation"
    MANIFEST = "manifest"


class NodeStatus(StrEnum):
    """Per-node verdict words; reports, metrics and alerts share them."""

    SIGNED = "signed"
    UNSIGNED = "unsigned"
    INVALID = "invalid"
    ERROR = "error"
    SKIPPED = "skipped"
    UNVERIFIED = "unverified"


class SignatureStatus(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    ERROR = "error"
    UNVERIFIED = "unverified"
    SKIPPED = "skipped"


class TargetStatus(StrEnum):
    COMPLIANT = "compliant"
    NONCOMPLIANT = "noncompliant"
    ERROR = "error"


@dataclass(frozen=True)
class OtherReferrer:
    """A referrer no registered signature format claims (SBOM, provenance, ...), kept for later."""

    digest: str
    artifact_type: str | None


@dataclass(frozen=True)
class IndexEntry:
    """One entry of an index that lists a node: its own edge, with its own platform.

    The same digest may be listed several times in one index (under two platforms, or once as
    an attestation and once as a platform), and in several indexes; every listing is kept.
    ``shadowed``: an earlier entry of the same index has the same platform, so a runtime asking
    for that platform takes the earlier one (runtimes pick the first matching entry).
    """

    parent: str
    position: int
    platform: Platform | None
    attestation: bool = False
    shadowed: bool = False


@dataclass(frozen=True)
class GraphNode:
    """One manifest in an image's graph, as crawled; no verdict yet.

    ``signatures`` are the referrers a registered signature format claims as its signatures.
    ``error`` is set when the node could not be loaded or a guard tripped on it.
    ``entries`` are every index entry that lists this node; ``platform`` and ``parent`` are those
    of the first one a runtime would pick as a platform (kept for display).
    """

    digest: str
    media_type: str
    size: int
    kind: NodeKind
    platform: Platform | None = None
    parent: str | None = None
    depth: int = 0
    signatures: tuple[Descriptor, ...] = ()
    other_referrers: tuple[OtherReferrer, ...] = ()
    attestation_for: str | None = None
    error: str | None = None
    entries: tuple[IndexEntry, ...] = ()
    error_category: ErrorCategory | None = None  # the kind of ``error`` (set with it)

    @property
    def platforms(self) -> tuple[Platform | None, ...]:
        """The platforms this node is listed under as a real (non-attestation) entry."""
        if not self.entries:
            return (self.platform,) if self.kind is NodeKind.PLATFORM else ()
        return tuple(e.platform for e in self.entries if not e.attestation)


@dataclass(frozen=True)
class ImageGraph:
    """tag -> index -> platform manifests / attestations, in crawl order (parents first)."""

    reference: str
    root: str
    nodes: tuple[GraphNode, ...]

    def node(self, digest: str) -> GraphNode:
        for n in self.nodes:
            if n.digest == digest:
                return n
        raise KeyError(digest)

    def children(self, digest: str) -> tuple[GraphNode, ...]:
        """Every node some entry of index ``digest`` lists (not only those first reached there)."""
        return tuple(
            n
            for n in self.nodes
            if n.parent == digest or any(e.parent == digest for e in n.entries)
        )


@dataclass(frozen=True)
class SignatureResult:
    """The verdict on one signature artifact attached to one node."""

    digest: str
    format: str
    status: SignatureStatus
    reason: str
    failed_validation: str | None = None
    warnings: tuple[str, ...] = ()
    signer: str | None = None
    signing_time: datetime | None = None
    expiry: datetime | None = None
    timestamped: bool = False
    # When a valid signature stops counting by itself: its own expiry, or (without a verified
    # timestamp) the earliest certificate expiry of its chain. Drives re-verification of
    # cached verdicts, the expiry metric and `expiring` alerts. None: never, or not valid.
    valid_until: datetime | None = None
    # The earliest time the verdict may change without the signature changing (an expiry, a
    # certificate becoming valid, cached revocation data going stale): caches re-evaluate then.
    recheck_at: datetime | None = None


@dataclass(frozen=True)
class NodeVerdict:
    """A graph node with its signatures verified and its status decided."""

    node: GraphNode
    status: NodeStatus
    reason: str
    signatures: tuple[SignatureResult, ...] = ()
    required: bool = True
    covered_by: str | None = None


@dataclass(frozen=True)
class WaiverNote:
    """The config waiver that accepted a finding: who accepted it, why, and until when."""

    image: str
    reason: str
    owner: str
    expires: datetime

    def __str__(self) -> str:
        return f"{self.reason} ({self.owner}, until {self.expires.isoformat()})"


@dataclass(frozen=True)
class Finding:
    """Something a person must act on, attached to a target (and a node when there is one).

    ``waiver`` is set when a current config waiver accepts it: still reported, not a failure.
    """

    kind: str
    message: str
    rule: str
    node: str | None = None
    platform: str | None = None
    waiver: WaiverNote | None = None


@dataclass(frozen=True)
class RuleData:
    """The coverage rule a target was judged by, as data (``TargetResult.rule`` is its label).

    ``platforms`` None: every platform present; ``formats`` None: every format with trust
    configured.
    """

    scope: str
    require: str
    platforms: tuple[str, ...] | None = None
    attestations: str = "ignore"
    formats: tuple[str, ...] | None = None
    name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The rule as JSON data: the one shape reports show and the state store keeps (its
        codec reads it back)."""
        return {
            "scope": self.scope,
            "require": self.require,
            "platforms": None if self.platforms is None else list(self.platforms),
            "attestations": self.attestations,
            "formats": None if self.formats is None else list(self.formats),
            "name": self.name,
        }


@dataclass(frozen=True)
class TargetResult:
    """The audit of one reference: its nodes' verdicts and its overall status.

    ``error_category`` says what kind of failure ``error`` is (see ErrorCategory); set with
    ``error``, None without one.
    """

    reference: str
    digest: str | None
    media_type: str | None
    status: TargetStatus
    nodes: tuple[NodeVerdict, ...] = ()
    findings: tuple[Finding, ...] = ()
    rule: str | None = None
    error: str | None = None
    policy: RuleData | None = None
    error_category: ErrorCategory | None = None


@dataclass(frozen=True)
class FileStamp:
    """A file (or a directory: every regular file under it) a run read, and its sha256.

    ``sha256`` is None when it could not be read, or for a config file that holds a password
    or token (its hash would let a reader test guesses; auditor/runinfo.py). A directory's
    hash covers the relative paths and contents of its files (see auditor/runinfo.py), so two
    machines with the same trust store report the same hash.
    """

    path: str
    sha256: str | None
    name: str | None = None  # a named trust store: "ca:acme"


@dataclass(frozen=True)
class RunInfo:
    """What a report was made with: the tool's version and the files that decided verdicts.

    Paths and hashes only, never contents: a trust store holds certificates (public); the
    config file's hash is of its bytes (keep secrets in ``*_env`` variables, not in the file).
    """

    version: str
    config: FileStamp | None = None
    trust_policy: FileStamp | None = None
    trust_store: FileStamp | None = None
    trust_stores: tuple[FileStamp, ...] = ()
    cosign: tuple[FileStamp, ...] = ()


class NoteKind(StrEnum):
    """Things a run did not look at, said in every report instead of dropped silently."""

    TAGS_LEFT_OUT = "tags-left-out"
    NO_REPOSITORY_MATCHED = "no-repository-matched"


@dataclass(frozen=True)
class ReportNote:
    """A warning about the run as a whole: ``subject`` is a repository or a glob."""

    kind: NoteKind
    subject: str
    message: str
    left_out: int = 0


@dataclass(frozen=True)
class ReportStart:
    """What a report says before its first target: known once the targets are listed."""

    generated_at: datetime
    info: RunInfo | None = None
    notes: tuple[ReportNote, ...] = ()


@dataclass(frozen=True)
class AuditReport:
    generated_at: datetime
    targets: tuple[TargetResult, ...]
    info: RunInfo | None = None
    notes: tuple[ReportNote, ...] = ()
