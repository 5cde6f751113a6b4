"""Who signed, for keyless (Fulcio) certificates: the SAN and the OIDC issuer, exact or regexp.

The rules are cosign's ``--certificate-identity(-regexp)`` and
``--certificate-oidc-issuer(-regexp)``: the identity is any SAN of the certificate (email,
URI, or Sigstore's otherName username); the issuer is the Fulcio extension
1.3.6.1.4.1.57264.1.8 (a DER UTF8String) or, in older certificates, 1.3.6.1.4.1.57264.1.1
(raw bytes). A regexp matches anywhere in the value, as Go's ``MatchString`` does in cosign:
anchor it (``^...$``) to pin the whole value. Certificates carrying both issuer extensions
with different values are refused rather than read one way or the other.

The policies follow sigstore-python's ``VerificationPolicy`` protocol (``verify(cert)``
raising ``sigstore.errors.VerificationError``), so they plug into ``Verifier.verify_dsse``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier
from sigstore.errors import VerificationError as SigstoreVerificationError

OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_OTHERNAME_USERNAME = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")

# Optional GitHub workflow claims (Fulcio's v1 extensions, raw bytes), exact matches.
GITHUB_CLAIMS: dict[str, ObjectIdentifier] = {
    "github_workflow_trigger": ObjectIdentifier("1.3.6.1.4.1.57264.1.2"),
    "github_workflow_sha": ObjectIdentifier("1.3.6.1.4.1.57264.1.3"),
    "github_workflow_name": ObjectIdentifier("1.3.6.1.4.1.57264.1.4"),
    "github_workflow_repository": ObjectIdentifier("1.3.6.1.4.1.57264.1.5"),
    "github_workflow_ref": ObjectIdentifier("1.3.6.1.4.1.57264.1.6"),
}


@dataclass(frozen=True)
class Matcher:
    """An exact value or a regexp (searched, as cosign does); exactly one is set."""

    exact: str | None = None
    regexp: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        if (self.exact is None) == (self.regexp is None):
            raise ValueError("a matcher needs exactly one of an exact value or a regexp")

    def matches(self, value: str) -> bool:
        if self.exact is not None:
            return value == self.exact
        assert self.regexp is not None
        return self.regexp.search(value) is not None

    def __str__(self) -> str:
        return self.exact if self.exact is not None else f"/{self.regexp.pattern}/"  # type: ignore[union-attr]


@dataclass(frozen=True)
class KeylessIdentity:
    """The certificate identity a keyless rule requires; an empty identity is impossible."""

    identity: Matcher
    issuer: Matcher
    claims: tuple[tuple[str, str], ...] = field(default=())  # (GITHUB_CLAIMS key, exact value)

    def verify(self, cert: x509.Certificate) -> None:
        """sigstore's VerificationPolicy protocol: raise when ``cert`` is not this identity."""
        mismatch = check_identity(self, cert)
        if mismatch is not None:
            raise IdentityMismatch(mismatch)


class IdentityMismatch(SigstoreVerificationError):
    """The certificate verified but is not the identity the rule names (authenticity)."""


def _der_utf8(value: bytes) -> str | None:
    """A DER UTF8String (tag 12) with a short or long length, else None."""
    if len(value) < 2 or value[0] != 0x0C:
        return None
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(value) < 2 + count:
            return None
        length, offset = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    if len(value) != offset + length:
        return None
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _extension(cert: x509.Certificate, oid: ObjectIdentifier) -> bytes | None:
    try:
        ext = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    return ext.value if isinstance(ext, x509.UnrecognizedExtension) else None


def issuer_of(cert: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio recorded; None when absent or contradictory."""
    v1 = _extension(cert, OIDC_ISSUER_V1)
    v2 = _extension(cert, OIDC_ISSUER_V2)
    values: set[str] = set()
    if v1 is not None:
        try:
            values.add(v1.decode("utf-8"))
        except UnicodeDecodeError:
            return None
    if v2 is not None:
        decoded = _der_utf8(v2)
        if decoded is None:
            return None
        values.add(decoded)
    return values.pop() if len(values) == 1 else None


def sans_of(cert: x509.Certificate) -> list[str]:
    """Email, URI and Sigstore-username SANs, in certificate order."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out: list[str] = list(san.get_values_for_type(x509.RFC822Name))
    out += san.get_values_for_type(x509.UniformResourceIdentifier)
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == _OTHERNAME_USERNAME:
            decoded = _der_utf8(other.value)
            if decoded is not None:
                out.append(decoded)
    return out


def signer_of(cert: x509.Certificate) -> str:
    """How reports name a keyless signer: ``SAN (issuer)``."""
    sans = sans_of(cert)
    issuer = issuer_of(cert)
    who = sans[0] if sans else cert.subject.rfc4514_string() or "certificate without identity"
    return f"{who} ({issuer})" if issuer else who


def check_identity(rule: KeylessIdentity, cert: x509.Certificate) -> str | None:
    """None when ``cert`` is ``rule``'s identity, else the reason it is not."""
    issuer = issuer_of(cert)
    if issuer is None:
        return "the certificate has no (or contradictory) OIDC issuer extensions"
    if not rule.issuer.matches(issuer):
        return f"certificate issuer {issuer!r} does not match {rule.issuer}"
    sans = sans_of(cert)
    if not any(rule.identity.matches(s) for s in sans):
        return f"certificate identity {sans} does not match {rule.identity}"
    for claim, expected in rule.claims:
        raw = _extension(cert, GITHUB_CLAIMS[claim])
        actual = raw.decode("utf-8", "replace") if raw is not None else None
        if actual != expected:
            return f"certificate {claim} {actual!r} is not {expected!r}"
    return None
