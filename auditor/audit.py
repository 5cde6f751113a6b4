"""One audit run: targets in, report out.

The orchestrator receives its collaborators (sources, verifier, coverage rules) and owns no I/O
of its own. A failure on one target becomes that target's ``error`` verdict; the run goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from auditor.coverage import CoverageRule, Require, error_target, evaluate_target, select_rule
from auditor.crawl import crawl
from auditor.errors import AuditorError, MalformedContent
from auditor.model import (
    AuditReport,
    Descriptor,
    GraphNode,
    SignatureResult,
    SignatureStatus,
    TargetResult,
)
from auditor.oci import mediatypes as mt
from auditor.oci.graph import GraphLimits, build_graph
from auditor.oci.manifest import ImageManifest
from auditor.oci.reference import Reference
from auditor.source import ManifestSource

ENVELOPE_TYPES = {mt.JWS_ENVELOPE: "notation/jws", mt.COSE_ENVELOPE: "notation/cose"}


class SignatureVerifier(Protocol):
    """What the audit needs from the Notary verifier; bytes in, verdict out."""

    def verify(
        self,
        scope: str,
        subject: Descriptor,
        signature_manifest: ImageManifest,
        envelope_bytes: bytes,
        signature_digest: str,
    ) -> SignatureResult: ...

    def skips(self, scope: str) -> bool:
        """True when the trust policy's level for ``scope`` is ``skip``."""
        ...


@dataclass(frozen=True)
class AuditTarget:
    """One pinned thing to audit: a tag or digest in one repository of one source."""

    reference: Reference
    source: ManifestSource
    repository: str

    @property
    def scope(self) -> str:
        return self.reference.scope

    @property
    def ref(self) -> str:
        ref = self.reference.ref
        if ref is None:
            raise AuditorError(f"{self.reference}: no tag or digest to audit")
        return ref


@dataclass(frozen=True)
class AuditSettings:
    limits: GraphLimits = field(default_factory=GraphLimits)
    max_envelope_bytes: int = 2 * 1024 * 1024
    max_signatures_per_node: int = 100


@dataclass
class Auditor:
    """Runs targets through crawl -> graph -> verification -> coverage.

    ``require`` (the ``--require`` flag) overrides every rule's requirement.
    ``verifier`` is None when no trust configuration exists: signature artifacts are then
    reported ``unverified``, never ``signed``. Verdicts on signatures are cached for the life
    of the object (the daemon keeps one and re-audits cheaply), keyed by everything a verdict
    depends on: the signature manifest's digest (which pins its envelope), the subject's whole
    descriptor (media type, digest *and* size: a signature binds all three) and the scope (the
    trust policy statement); a valid verdict is dropped once its ``valid_until`` has passed.
    """

    rules: Sequence[CoverageRule]
    verifier: SignatureVerifier | None
    require: Require | None = None
    settings: AuditSettings = field(default_factory=AuditSettings)
    progress: Callable[[str], None] | None = None
    _cache: dict[tuple[str, str, str, int, str], SignatureResult] = field(default_factory=dict)

    async def run(self, targets: Sequence[AuditTarget | TargetResult]) -> AuditReport:
        """Audit every target; a TargetResult passed in (an expansion failure) is kept as is."""
        results: list[TargetResult] = []
        for i, target in enumerate(targets, 1):
            if isinstance(target, TargetResult):
                results.append(target)
                continue
            if self.progress:
                self.progress(f"[{i}/{len(targets)}] {target.reference}")
            results.append(await self.audit_target(target))
        return AuditReport(generated_at=datetime.now(UTC), targets=tuple(results))

    async def audit_target(self, target: AuditTarget) -> TargetResult:
        display = str(target.reference)
        rule = select_rule(self.rules, target.scope, require=self.require)
        try:
            snapshot = await crawl(
                target.source,
                target.repository,
                target.ref,
                display=display,
                limits=self.settings.limits,
            )
            graph = build_graph(snapshot, display)
        except AuditorError as exc:
            return error_target(display, str(exc), rule=rule)
        signature_results = await self._verify_graph(target, graph.nodes)
        return evaluate_target(
            display,
            graph,
            signature_results,
            rule,
            verified=self.verifier is not None,
            trust_skipped=self.verifier is not None and self.verifier.skips(target.scope),
        )

    async def _verify_graph(
        self, target: AuditTarget, nodes: Sequence[GraphNode]
    ) -> Mapping[str, tuple[SignatureResult, ...]]:
        jobs = [self._verify_node(target, node) for node in nodes]
        verified = await asyncio.gather(*jobs)
        return {node.digest: res for node, res in zip(nodes, verified, strict=True)}

    async def _verify_node(
        self, target: AuditTarget, node: GraphNode
    ) -> tuple[SignatureResult, ...]:
        if node.error is not None:
            return ()
        limit = self.settings.max_signatures_per_node
        subject = Descriptor(node.media_type, node.digest, node.size)
        results = [
            await self._verify_one(target, subject, sig) for sig in node.signatures[:limit]
        ]
        if len(node.signatures) > limit:
            results.append(
                SignatureResult(
                    digest=node.signatures[limit].digest,
                    format="notation",
                    status=SignatureStatus.ERROR,
                    reason=(
                        f"{len(node.signatures) - limit} more signatures not tried: "
                        f"limit of {limit} per node"
                    ),
                )
            )
        return tuple(results)

    async def _verify_one(
        self, target: AuditTarget, subject: Descriptor, signature: Descriptor
    ) -> SignatureResult:
        key = (signature.digest, subject.media_type, subject.digest, subject.size, target.scope)
        cached = self._cache.get(key)
        if cached is not None and (
            cached.valid_until is None or cached.valid_until > datetime.now(UTC)
        ):
            return cached
        result = await self._fetch_and_verify(target, subject, signature)
        if result.status is not SignatureStatus.ERROR:
            # Errors are transient (registry, network): never cache them.
            self._cache[key] = result
        return result

    async def _fetch_and_verify(
        self, target: AuditTarget, subject: Descriptor, signature: Descriptor
    ) -> SignatureResult:
        def verdict(status: SignatureStatus, fmt: str, reason: str) -> SignatureResult:
            failed = "integrity" if status is SignatureStatus.INVALID else None
            return SignatureResult(signature.digest, fmt, status, reason, failed_validation=failed)

        try:
            fetched = await target.source.get_manifest(target.repository, signature.digest)
        except MalformedContent as exc:
            # Its bytes are there and digest-checked, but they are no signature manifest (or
            # one that two readers would read two ways): a definite failure, not "unchecked".
            reason = f"signature manifest refused: {exc}"
            return verdict(SignatureStatus.INVALID, "notation", reason)
        except AuditorError as exc:
            reason = f"cannot load signature manifest: {exc}"
            return verdict(SignatureStatus.ERROR, "notation", reason)
        manifest = fetched.manifest
        verifier = self.verifier
        if verifier is not None and verifier.skips(target.scope) and isinstance(
            manifest, ImageManifest
        ):
            # notation's skip level judges nothing, not even whether an envelope is there:
            # the verifier's own skipped verdict, before the envelope checks below.
            return verifier.verify(target.scope, subject, manifest, b"", signature.digest)
        if not isinstance(manifest, ImageManifest):
            reason = "signature artifact is an index, not a signature manifest"
            return verdict(SignatureStatus.INVALID, "notation", reason)
        envelopes = [layer for layer in manifest.layers if layer.media_type in ENVELOPE_TYPES]
        if len(envelopes) != 1:
            count = len(envelopes)
            reason = f"signature manifest has {count} envelope layers; exactly one is required"
            return verdict(SignatureStatus.INVALID, "notation", reason)
        layer = envelopes[0]
        fmt = ENVELOPE_TYPES[layer.media_type]
        if verifier is None:
            reason = "no trust policy configured: signature not verified"
            return verdict(SignatureStatus.UNVERIFIED, fmt, reason)
        limit = self.settings.max_envelope_bytes
        if layer.size > limit:
            reason = f"envelope of {layer.size} bytes exceeds the limit of {limit}"
            return verdict(SignatureStatus.INVALID, fmt, reason)
        try:
            envelope = await target.source.get_blob(target.repository, layer.digest, limit)
        except AuditorError as exc:
            reason = f"cannot load signature envelope {layer.digest}: {exc}"
            return verdict(SignatureStatus.ERROR, fmt, reason)
        return await asyncio.to_thread(
            verifier.verify, target.scope, subject, manifest, envelope, signature.digest
        )
