"""The cosign signature format: which referrers and tags hold cosign signatures, and how one is
fetched and judged.

Two shapes, as cosign writes them:

* legacy: the manifest under the tag ``sha256-<hex>.sig`` of the node (the crawler fetches it
  because :meth:`CosignFormat.signature_tags` names it, and records the tag on the
  descriptor). Each of its simple-signing layers is one signature; the manifest is ``valid``
  when one layer verifies (cosign's own rule: any signature that verifies).
* bundle v0.3: a referrer (referrers API or ``sha256-<hex>`` fallback index) whose artifact
  type, or failing that its layer media type, is the sigstore bundle type; exactly one bundle
  layer, and the manifest's ``subject`` must be the node. A bundle whose manifest announces a
  predicate other than cosign's signature predicate is an attestation: it is not claimed, so
  it is listed among the node's other referrers and never counted.

Fetching is bounded (``max_blob_bytes`` per payload or bundle, ``max_layers`` per legacy
manifest); what the bytes mean is the pure ``legacy``/``bundle`` modules' business, run in a
worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from auditor.cosign import legacy
from auditor.cosign.names import BUNDLE_FORMAT
from auditor.cosign.trust import CosignRule, CosignTrust
from auditor.errors import AuditorError
from auditor.model import Descriptor, SignatureResult, SignatureStatus
from auditor.oci import mediatypes as mt
from auditor.oci.manifest import ImageManifest
from auditor.source import ManifestSource

NAME = "cosign"
DEFAULT_MAX_BLOB_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_LAYERS = 32


def legacy_tag(subject_digest: str) -> str | None:
    """``sha256-<hex>.sig`` for a sha256 digest; None for anything else."""
    algorithm, _, hexdigest = subject_digest.partition(":")
    return f"{algorithm}-{hexdigest}.sig" if algorithm == "sha256" and hexdigest else None


def is_legacy(referrer: Descriptor) -> bool:
    tag = referrer.annotations.get(mt.ANNOTATION_REF_NAME, "")
    return tag.startswith("sha256-") and tag.endswith(".sig")


def is_signature_bundle(referrer: Descriptor) -> bool:
    """A bundle referrer, unless its manifest announces an attestation predicate."""
    if referrer.artifact_type != mt.SIGSTORE_BUNDLE_V03:
        return False
    predicate = referrer.annotations.get(mt.ANNOTATION_BUNDLE_PREDICATE)
    return predicate is None or predicate == mt.COSIGN_SIGN_PREDICATE


class CosignFormat:
    """cosign's signatures, judged by the ``cosign:`` trust rules (None: ``unverified``)."""

    name = NAME

    def __init__(
        self,
        trust: CosignTrust | None,
        *,
        max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
        max_layers: int = DEFAULT_MAX_LAYERS,
    ) -> None:
        self.trust = trust
        self.max_blob_bytes = max_blob_bytes
        self.max_layers = max_layers

    @property
    def verifies(self) -> bool:
        return self.trust is not None

    def claims(self, referrer: Descriptor) -> bool:
        return is_legacy(referrer) or is_signature_bundle(referrer)

    def signature_tags(self, subject_digest: str) -> Sequence[str]:
        tag = legacy_tag(subject_digest)
        return (tag,) if tag else ()

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
        fmt = legacy.FORMAT if is_legacy(signature) else BUNDLE_FORMAT

        def verdict(status: SignatureStatus, reason: str) -> SignatureResult:
            failed = "integrity" if status is SignatureStatus.INVALID else None
            return SignatureResult(signature.digest, fmt, status, reason, failed_validation=failed)

        if self.trust is None:
            return verdict(
                SignatureStatus.UNVERIFIED, "no cosign trust rules configured: not verified"
            )
        rule = self.trust.rule_for(scope)
        if rule is None:
            return verdict(
                SignatureStatus.ERROR,
                f"no cosign rule applies to {scope!r}; add a rule whose scopes match it (or '*')",
            )
        try:
            fetched = await source.get_manifest(repository, signature.digest)
        except AuditorError as exc:
            return verdict(SignatureStatus.ERROR, f"cannot load signature manifest: {exc}")
        manifest = fetched.manifest
        if not isinstance(manifest, ImageManifest):
            return verdict(SignatureStatus.INVALID, "signature artifact is an index")
        root = self.trust.root
        if fmt == legacy.FORMAT:
            return await self._legacy(source, repository, subject, signature, manifest, rule)
        layers = [layer for layer in manifest.layers if layer.media_type == mt.SIGSTORE_BUNDLE_V03]
        if len(layers) != 1:
            return verdict(
                SignatureStatus.INVALID,
                f"bundle manifest has {len(layers)} bundle layers; exactly one is required",
            )
        if manifest.subject is None or manifest.subject.digest != subject.digest:
            named = manifest.subject.digest if manifest.subject else "no subject"
            return verdict(
                SignatureStatus.INVALID,
                f"the bundle manifest refers to {named}, not to {subject.digest}",
            )
        try:
            data = await self._blob(source, repository, layers[0])
        except _Unread as unread:
            return verdict(unread.status, unread.reason)
        from auditor.cosign.bundle import verify_bundle  # sigstore-python: only for a bundle

        return await asyncio.to_thread(
            verify_bundle,
            subject_digest=subject.digest,
            data=data,
            rule=rule,
            root=root,
            digest=signature.digest,
        )

    async def _legacy(
        self,
        source: ManifestSource,
        repository: str,
        subject: Descriptor,
        signature: Descriptor,
        manifest: ImageManifest,
        rule: CosignRule,
    ) -> SignatureResult:
        """Every layer is a signature; the manifest is valid when one of them verifies."""
        assert self.trust is not None
        layers = manifest.layers

        def verdict(status: SignatureStatus, reason: str) -> SignatureResult:
            failed = "integrity" if status is SignatureStatus.INVALID else None
            return SignatureResult(
                signature.digest, legacy.FORMAT, status, reason, failed_validation=failed
            )

        if not layers:
            return verdict(SignatureStatus.INVALID, "the .sig manifest has no layers")
        if len(layers) > self.max_layers:
            return verdict(
                SignatureStatus.ERROR,
                f"the .sig manifest has {len(layers)} layers, more than the limit of "
                f"{self.max_layers}; not checked",
            )
        failures: list[SignatureResult] = []
        for i, layer in enumerate(layers, 1):
            where = f"layer {i} of {len(layers)}"
            payload = b""
            if layer.media_type == mt.COSIGN_SIMPLESIGNING:
                try:
                    payload = await self._blob(source, repository, layer)
                except _Unread as unread:
                    failures.append(verdict(unread.status, f"{where}: {unread.reason}"))
                    continue
            result = await asyncio.to_thread(
                legacy.verify_legacy,
                subject_digest=subject.digest,
                layer=legacy.LegacyLayer(layer.media_type, payload, layer.annotations),
                rule=rule,
                root=self.trust.root,
                digest=signature.digest,
            )
            result = replace(result, reason=f"{where}: {result.reason}")
            if result.status is SignatureStatus.VALID:
                return result
            failures.append(result)
        unchecked = [f for f in failures if f.status is SignatureStatus.ERROR]
        worst = unchecked[0] if unchecked else failures[0]
        return replace(worst, reason="; ".join(f.reason for f in failures))

    async def _blob(self, source: ManifestSource, repository: str, layer: Descriptor) -> bytes:
        """The layer's blob, bounded and size-checked; _Unread says why it was not read."""
        limit = self.max_blob_bytes
        if layer.size > limit:
            raise _Unread(
                SignatureStatus.INVALID, f"layer of {layer.size} bytes exceeds the limit of {limit}"
            )
        try:
            data = await source.get_blob(repository, layer.digest, limit)
        except AuditorError as exc:
            raise _Unread(
                SignatureStatus.ERROR, f"cannot load layer {layer.digest}: {exc}"
            ) from None
        if len(data) != layer.size:
            raise _Unread(
                SignatureStatus.INVALID,
                f"layer {layer.digest} is {len(data)} bytes, its descriptor says {layer.size}",
            )
        return data


class _Unread(Exception):
    def __init__(self, status: SignatureStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
