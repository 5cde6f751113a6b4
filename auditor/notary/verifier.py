"""One Notary Project signature, judged by the trust policy: envelope bytes in, verdict out.

Steps and their order follow the spec and notation: pick the statement for the repository
(exact scope over ``*``); ``skip`` -> skipped; then integrity (parse, signature, chain shape,
and the payload's ``targetArtifact`` must be the node it hangs on), authenticity (the chain
contains a certificate of the named trust stores, and the leaf matches a trusted identity),
expiry, authentic timestamp, revocation. Each validation is enforced, logged or skipped as
the statement's level and ``override`` say; integrity is always enforced. A logged failure
becomes a warning in notation's wording; an enforced one ends verification as ``invalid``,
except when the answer could not be obtained (revocation status unknown), which is ``error``.

A trust store the statement names that is missing or broken is read only when a signature
under that statement needs it (as notation reads only the applicable statement's stores); it
is then an inconclusive authenticity (or timestamp) result, as in notation: ``error`` when the
level enforces it, a warning when it only logs it, naming the store and the statement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from auditor.errors import AuditorError, ConfigError, VerificationError
from auditor.model import Descriptor, SignatureResult, SignatureStatus
from auditor.notary import chain as chains
from auditor.notary.crypto import verify_integrity
from auditor.notary.envelope import CERTIFICATE_ERRORS, ENVELOPE_FORMATS, parse_envelope
from auditor.notary.identity import match_identities
from auditor.notary.revocation import RevocationChecker, RevocationStatus, has_revocation_urls
from auditor.notary.timestamp import verify_timestamp
from auditor.notary.trustpolicy import (
    Action,
    StoreType,
    TrustPolicy,
    TrustPolicyStatement,
    TrustStoreRef,
    VerifyTimestamp,
    select_statement,
)
from auditor.notary.truststore import TrustStore
from auditor.notary.types import Envelope, SigningScheme, TimestampResult, Validation
from auditor.oci.digest import compute_digest
from auditor.oci.manifest import ImageManifest

_UNCHECKABLE: tuple[type[Exception], ...] = (AuditorError, *CERTIFICATE_ERRORS)

def _utcnow() -> datetime:
    return datetime.now(UTC)


def _store_failure(statement: TrustPolicyStatement, exc: ConfigError) -> str:
    """notation's words for a trust store it could not load, plus the statement naming it."""
    return f"error while loading the trust store, {exc} (trust policy statement {statement.name!r})"


class _Stop(Exception):
    """An enforced validation failed: verification ends with this verdict."""

    def __init__(self, validation: Validation, message: str, status: SignatureStatus) -> None:
        super().__init__(message)
        self.validation = validation
        self.message = message
        self.status = status


@dataclass
class _Run:
    """Per-signature state while the validations run."""

    statement: TrustPolicyStatement
    warnings: list[str] = field(default_factory=list)
    envelope: Envelope | None = None
    timestamp: TimestampResult | None = None
    anchored: bool = False  # the chain ends in a certificate of the statement's trust store
    # Revocation answers this verdict relied on go stale at this time (re-check after it).
    revocation_until: datetime | None = None

    def relied_on_revocation(self, until: datetime | None) -> None:
        if until is not None and (self.revocation_until is None or until < self.revocation_until):
            self.revocation_until = until

    def fail(
        self,
        validation: Validation,
        message: str,
        *,
        status: SignatureStatus = SignatureStatus.INVALID,
    ) -> None:
        action = self.statement.action(validation)
        if action is Action.ENFORCE:
            raise _Stop(validation, message, status)
        if action is Action.LOG:
            self.warnings.append(
                f'{validation.value} was set to "log" and failed with error: {message}'
            )


class Verifier:
    """Verifies signatures of nodes under one trust policy and one trust store."""

    def __init__(
        self,
        policy: TrustPolicy,
        trust_store_root: Path,
        *,
        revocation: RevocationChecker | None = None,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.policy = policy
        self.trust_store = TrustStore(trust_store_root)
        self._revocation = revocation
        self._now = now

    # --- public -----------------------------------------------------------------------------

    def skips(self, scope: str) -> bool:
        """True when the statement for ``scope`` has level ``skip`` (nothing is verified)."""
        statement = select_statement(self.policy, scope)
        return statement is not None and statement.is_skip

    def close(self) -> None:
        """Release the revocation checker's HTTP client."""
        if self._revocation is not None:
            self._revocation.close()

    def verify(
        self,
        scope: str,
        subject: Descriptor,
        signature_manifest: ImageManifest,
        envelope_bytes: bytes,
        signature_digest: str,
    ) -> SignatureResult:
        """The verdict on one signature manifest attached to ``subject`` in repository ``scope``.

        Everything is a SignatureResult, a missing or broken trust store of the statement too.
        """
        layer_type = signature_manifest.layers[0].media_type if signature_manifest.layers else ""
        fmt = ENVELOPE_FORMATS.get(layer_type, "notation")
        statement = select_statement(self.policy, scope)
        if statement is None:
            return SignatureResult(
                digest=signature_digest,
                format=fmt,
                status=SignatureStatus.ERROR,
                reason=(
                    f"artifact in {scope!r} has no applicable trust policy statement; add a "
                    "statement whose registryScopes lists it (or '*')"
                ),
            )
        if statement.is_skip:
            return SignatureResult(
                digest=signature_digest,
                format=fmt,
                status=SignatureStatus.SKIPPED,
                reason=(
                    "Trust policy is configured to skip signature verification (statement "
                    f"{statement.name!r})"
                ),
            )
        run = _Run(statement=statement)
        try:
            self._run(run, subject, signature_manifest, envelope_bytes)
        except _Stop as stop:
            return self._result(run, signature_digest, fmt, stop)
        except _UNCHECKABLE as exc:
            unchecked = _Stop(
                Validation.INTEGRITY,
                f"the signature could not be checked: {exc}",
                SignatureStatus.ERROR,
            )
            return self._result(run, signature_digest, fmt, unchecked)
        return self._result(run, signature_digest, fmt, None)

    # --- steps ------------------------------------------------------------------------------

    def _run(
        self,
        run: _Run,
        subject: Descriptor,
        manifest: ImageManifest,
        envelope_bytes: bytes,
    ) -> None:
        envelope = self._integrity(subject, manifest, envelope_bytes)
        run.envelope = envelope
        self._authenticity(run, envelope)
        self._expiry(run, envelope)
        self._authentic_timestamp(run, envelope)
        self._check_revocation(run, envelope)

    @staticmethod
    def _integrity(subject: Descriptor, manifest: ImageManifest, data: bytes) -> Envelope:
        def bad(message: str) -> _Stop:
            return _Stop(Validation.INTEGRITY, message, SignatureStatus.INVALID)

        if len(manifest.layers) != 1:
            raise bad(
                f"the signature manifest must have exactly one layer (the envelope), it has "
                f"{len(manifest.layers)}"
            )
        layer = manifest.layers[0]
        if manifest.subject is not None and manifest.subject.digest != subject.digest:
            raise bad(
                f"the signature manifest refers to {manifest.subject.digest}, not to "
                f"{subject.digest}"
            )
        algorithm = layer.digest.split(":", 1)[0]
        if algorithm in ("sha256", "sha512") and compute_digest(data, algorithm) != layer.digest:
            raise bad(f"the envelope blob does not match its descriptor digest {layer.digest}")
        if len(data) != layer.size:
            # notation's fetch checks size as well as digest; a lying descriptor is refused.
            raise bad(f"the envelope blob is {len(data)} bytes, its descriptor says {layer.size}")
        try:
            envelope = parse_envelope(layer.media_type, data)
            verify_integrity(envelope)
        except VerificationError as exc:
            raise bad(f"unable to verify the digital signature: {exc}") from None
        target = envelope.target
        if (target.media_type, target.digest, target.size) != (
            subject.media_type,
            subject.digest,
            subject.size,
        ):
            raise bad(
                "content descriptor mismatch: the signature is over "
                f"{target.media_type} {target.digest} ({target.size} bytes), not over "
                f"{subject.media_type} {subject.digest} ({subject.size} bytes)"
            )
        if (err := chains.check_length(envelope.certificate_chain)) is not None:
            raise bad(err)
        return envelope

    def _authenticity(self, run: _Run, envelope: Envelope) -> None:
        statement = run.statement
        store_type = (
            StoreType.SIGNING_AUTHORITY
            if envelope.signing_scheme is SigningScheme.SIGNING_AUTHORITY
            else StoreType.CA
        )
        refs = statement.stores(store_type)
        if not refs:
            run.fail(
                Validation.AUTHENTICITY,
                f"trust policy statement {statement.name!r} has no trust store of type "
                f"{store_type.value!r}, needed for signing scheme {envelope.signing_scheme.value}",
            )
        else:
            trusted = self._certificates(run, refs, Validation.AUTHENTICITY)
            if trusted is None:
                return  # the identity check is not reached, as in notation
            if chains.find_trust_anchor(envelope.certificate_chain, trusted) is None:
                run.fail(Validation.AUTHENTICITY, chains.NO_TRUSTED_CERT)
            else:
                run.anchored = True
        mismatch = match_identities(statement.trusted_identities, envelope.certificate_chain[0])
        if mismatch is not None:
            run.fail(Validation.AUTHENTICITY, f"{mismatch} (trust policy {statement.name!r})")

    def _certificates(
        self, run: _Run, refs: Sequence[TrustStoreRef], validation: Validation
    ) -> list[x509.Certificate] | None:
        """The certificates of the statement's stores ``refs``, read now (only a statement that
        applies needs them); None after failing ``validation`` when one cannot be loaded: in
        notation an inconclusive result, enforced or logged as the level says."""
        try:
            return [cert for ref in refs for cert in self.trust_store.certificates(ref)]
        except ConfigError as exc:
            run.fail(validation, _store_failure(run.statement, exc), status=SignatureStatus.ERROR)
            return None

    def _expiry(self, run: _Run, envelope: Envelope) -> None:
        if envelope.expiry is not None and self._now() >= envelope.expiry:
            run.fail(
                Validation.EXPIRY,
                f'digital signature has expired on "{chains.rfc1123z(envelope.expiry)}"',
            )

    def _authentic_timestamp(self, run: _Run, envelope: Envelope) -> None:
        certs = envelope.certificate_chain
        if envelope.signing_scheme is SigningScheme.SIGNING_AUTHORITY:
            when = envelope.authentic_signing_time
            if when is None:
                run.fail(
                    Validation.AUTHENTIC_TIMESTAMP,
                    "the signature has no authentic signing time (required by "
                    "notary.x509.signingAuthority)",
                )
            elif (err := chains.check_signed_at(certs, when)) is not None:
                run.fail(Validation.AUTHENTIC_TIMESTAMP, err)
            return
        statement = run.statement
        now = self._now()
        tsa_refs = statement.stores(StoreType.TSA)
        perform = bool(tsa_refs)
        if (
            perform
            and statement.verify_timestamp is VerifyTimestamp.AFTER_CERT_EXPIRY
            and not chains.any_expired(certs, now)
        ):
            perform = False
        if not perform:
            if (err := chains.check_valid_at(certs, now)) is not None:
                run.fail(Validation.AUTHENTIC_TIMESTAMP, err)
            return
        roots = self._certificates(run, tsa_refs, Validation.AUTHENTIC_TIMESTAMP)
        if roots is None:
            return
        try:
            result = verify_timestamp(envelope, roots)
        except VerificationError as exc:
            run.fail(Validation.AUTHENTIC_TIMESTAMP, str(exc))
            return
        err = chains.check_window(certs, result.earliest, result.latest, "timestamp")
        if err is not None:
            run.fail(Validation.AUTHENTIC_TIMESTAMP, err)
            return
        if self._revocation is not None:
            tsa = self._revocation.check_chain(result.tsa_chain)
            run.relied_on_revocation(tsa.next_update)
            if tsa.status is not RevocationStatus.GOOD:
                run.fail(
                    Validation.AUTHENTIC_TIMESTAMP,
                    "timestamping " + tsa.reason().removeprefix("signing "),
                    status=SignatureStatus.ERROR
                    if tsa.status is RevocationStatus.UNKNOWN
                    else SignatureStatus.INVALID,
                )
                return
        run.timestamp = result

    def _check_revocation(self, run: _Run, envelope: Envelope) -> None:
        if run.statement.action(Validation.REVOCATION) is Action.SKIP:
            return
        if self._revocation is None:
            run.fail(
                Validation.REVOCATION,
                "unable to check revocation status: revocation checking is disabled in this "
                "configuration",
                status=SignatureStatus.ERROR,
            )
            return
        if not run.anchored and has_revocation_urls(envelope.certificate_chain):
            # OCSP and CRL URLs come from the envelope's own certificates: for a chain that
            # no trust store vouches for they are the signer's to choose, so they are not
            # fetched. Such a signature cannot pass authenticity unless the policy only logs
            # it, and then an unknown revocation status changes nothing either.
            run.fail(
                Validation.REVOCATION,
                "revocation not checked: the certificate chain does not end in a trusted "
                "certificate, so its OCSP/CRL URLs are not fetched",
                status=SignatureStatus.ERROR,
            )
            return
        signing_time: datetime | None = None
        if envelope.signing_scheme is SigningScheme.SIGNING_AUTHORITY:
            signing_time = envelope.authentic_signing_time
        elif run.timestamp is not None:
            signing_time = run.timestamp.latest
        result = self._revocation.check_chain(envelope.certificate_chain, signing_time=signing_time)
        run.relied_on_revocation(result.next_update)
        if result.status is RevocationStatus.REVOKED:
            run.fail(Validation.REVOCATION, result.reason())
        elif result.status is RevocationStatus.UNKNOWN:
            run.fail(Validation.REVOCATION, result.reason(), status=SignatureStatus.ERROR)

    # --- result -----------------------------------------------------------------------------

    @staticmethod
    def _valid_until(run: _Run) -> datetime | None:
        """When this (valid) signature stops counting unless something else changes.

        A verified timestamp (or a signing authority's authentic signing time) proves the
        chain was valid when signing, so only the signature's own expiry is left; otherwise
        the chain is checked at verification time and the first certificate to expire ends it.
        """
        envelope = run.envelope
        if envelope is None:
            return None
        ends = [envelope.expiry] if envelope.expiry is not None else []
        anchored_in_time = run.timestamp is not None or (
            envelope.signing_scheme is SigningScheme.SIGNING_AUTHORITY
            and envelope.authentic_signing_time is not None
        )
        if not anchored_in_time:
            ends.extend(cert.not_valid_after_utc for cert in envelope.certificate_chain)
        return min(ends, default=None)

    def _recheck_at(self, run: _Run) -> datetime | None:
        """The earliest time this verdict (valid or not) may change with the same signature:
        the signature's or any certificate's expiry (which also switches ``afterCertExpiry``
        timestamp checking on), a certificate becoming valid, revocation answers going stale.
        Caches must verify again at that time."""
        envelope = run.envelope
        if envelope is None:
            return None
        now = self._now()
        moments = [envelope.expiry] if envelope.expiry is not None else []
        for cert in envelope.certificate_chain:
            moments.append(cert.not_valid_after_utc)
            if cert.not_valid_before_utc > now:
                moments.append(cert.not_valid_before_utc)
        if run.revocation_until is not None:
            moments.append(run.revocation_until)
        return min(moments, default=None)

    def _result(self, run: _Run, digest: str, fmt: str, stop: _Stop | None) -> SignatureResult:
        envelope = run.envelope
        recheck_at = self._recheck_at(run)
        signer = chains.subject(envelope.certificate_chain[0]) if envelope else None
        signing_time = (
            (envelope.authentic_signing_time or envelope.signing_time) if envelope else None
        )
        level = run.statement.level.value + (
            " (with overrides)" if run.statement.overridden else ""
        )
        result = SignatureResult(
            digest=digest,
            format=envelope.format if envelope else fmt,
            status=SignatureStatus.VALID,
            reason=f"verified under trust policy statement {run.statement.name!r} ({level})",
            warnings=tuple(run.warnings),
            signer=signer,
            signing_time=signing_time,
            expiry=envelope.expiry if envelope else None,
            timestamped=run.timestamp is not None,
            recheck_at=recheck_at,
        )
        if stop is None:
            return replace(result, valid_until=self._valid_until(run))
        return replace(
            result,
            status=stop.status,
            reason=f"{stop.validation.value} validation failed. Failure reason: {stop.message}",
            failed_validation=stop.validation.value,
        )
