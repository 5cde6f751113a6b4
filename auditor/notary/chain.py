"""Where a signing chain meets the trust store, and when its certificates were valid.

The chain's *shape* (leaf first, each certificate issued by the next, self-signed root, key
usage, basic constraints, path length, EKU) is checked with integrity by
``crypto.verify_integrity``, as notation does. This module answers the two questions that
depend on the trust policy: does the chain contain a certificate from the named trust stores
(authenticity), and was every certificate valid at the time that counts (authentic timestamp).
The spec forbids enforcing validity-period nesting, so none is enforced. Messages use
notation's wording. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from cryptography import x509

from auditor.notary.identity import rfc4514

MAX_CHAIN_LENGTH = 10

NO_TRUSTED_CERT = "the signature's certificate chain does not contain any trusted certificate"


def subject(cert: x509.Certificate) -> str:
    """The subject in notation's rendering (Go's attribute order)."""
    return rfc4514(cert)


def rfc1123z(when: datetime) -> str:
    """Go's ``time.RFC1123Z`` in UTC, e.g. ``Tue, 27 Jun 2023 06:10:00 +0000``."""
    return when.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def check_length(chain: Sequence[x509.Certificate], limit: int = MAX_CHAIN_LENGTH) -> str | None:
    if not chain:
        return "the signature has no certificate chain"
    if len(chain) > limit:
        return (
            f"the certificate chain has {len(chain)} certificates, more than the limit of {limit}"
        )
    return None


def find_trust_anchor(
    chain: Sequence[x509.Certificate], trusted: Iterable[x509.Certificate]
) -> x509.Certificate | None:
    """The first chain certificate that is (byte for byte) a trusted certificate.

    Equality rather than "issued by" is notation's rule: the chain must carry its root, and a
    store may pin an intermediate or a self-signed leaf.
    """
    fingerprints = {cert.tbs_certificate_bytes + cert.signature for cert in trusted}
    for cert in chain:
        if cert.tbs_certificate_bytes + cert.signature in fingerprints:
            return cert
    return None


def check_valid_at(chain: Sequence[x509.Certificate], when: datetime) -> str | None:
    """None if every certificate is valid at ``when`` (verification time), else the reason."""
    for cert in chain:
        if when < cert.not_valid_before_utc:
            return (
                f'verification time is before certificate "{subject(cert)}" validity period, '
                f'it will be valid from "{rfc1123z(cert.not_valid_before_utc)}"'
            )
        if when > cert.not_valid_after_utc:
            return (
                f'verification time is after certificate "{subject(cert)}" validity period, '
                f'it was expired at "{rfc1123z(cert.not_valid_after_utc)}"'
            )
    return None


def check_window(
    chain: Sequence[x509.Certificate], earliest: datetime, latest: datetime, what: str
) -> str | None:
    """None if ``[earliest, latest]`` (a timestamp's range) lies within every validity period."""
    for cert in chain:
        if earliest < cert.not_valid_before_utc:
            return (
                f'{what} can be before certificate "{subject(cert)}" validity period, it will be '
                f'valid from "{rfc1123z(cert.not_valid_before_utc)}"'
            )
        if latest > cert.not_valid_after_utc:
            return (
                f'{what} can be after certificate "{subject(cert)}" validity period, it was '
                f'expired at "{rfc1123z(cert.not_valid_after_utc)}"'
            )
    return None


def check_signed_at(chain: Sequence[x509.Certificate], when: datetime) -> str | None:
    """For signingAuthority: every certificate valid at the authentic signing time."""
    for cert in chain:
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            return (
                f'certificate "{subject(cert)}" was not valid when the digital signature was '
                f'produced at "{rfc1123z(when)}"'
            )
    return None


def any_expired(chain: Sequence[x509.Certificate], when: datetime) -> bool:
    return any(when > cert.not_valid_after_utc for cert in chain)
