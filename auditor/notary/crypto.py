"""Signature algorithms and certificate-chain rules of the Notary Project signature spec.

The spec fixes the algorithm by the signing key (RSA 2048/3072/4096 -> PS256/384/512, EC
P-256/384/521 -> ES256/384/512), so an envelope's ``alg`` must equal the one its leaf key
implies; accepting anything else would open algorithm-substitution attacks. The chain in
the envelope must be ordered leaf -> root and meet the certificate requirements *before* it
is compared with any trust store: notation treats a violation as an integrity failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import ExtendedKeyUsageOID

from auditor.errors import VerificationError
from auditor.notary.types import Envelope

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class Algorithm:
    """One Notary Project signature algorithm and the key it requires."""

    name: str  # JWS name, e.g. "PS256"
    cose_id: int
    key_type: str  # "RSA" or "EC"
    key_size: int  # RSA modulus bits or EC curve bits
    hash_name: str  # "sha256" | "sha384" | "sha512"

    def hash(self) -> hashes.HashAlgorithm:
        return _HASHES[self.hash_name]()

    @property
    def coordinate_bytes(self) -> int:
        """Length of one ECDSA coordinate in the raw ``r || s`` encoding."""
        return (self.key_size + 7) // 8


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("PS256", -37, "RSA", 2048, "sha256"),
        Algorithm("PS384", -38, "RSA", 3072, "sha384"),
        Algorithm("PS512", -39, "RSA", 4096, "sha512"),
        Algorithm("ES256", -7, "EC", 256, "sha256"),
        Algorithm("ES384", -35, "EC", 384, "sha384"),
        Algorithm("ES512", -36, "EC", 521, "sha512"),
    )
}
COSE_ALGORITHMS: dict[int, Algorithm] = {a.cose_id: a for a in ALGORITHMS.values()}

_CURVES: dict[str, int] = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}


def key_spec(key: object) -> tuple[str, int]:
    """(key type, size) of a public or private key, or VerificationError if unsupported."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        size = _CURVES.get(key.curve.name)
        if size is None:
            raise VerificationError(f"unsupported EC curve {key.curve.name}")
        return "EC", size
    raise VerificationError(f"unsupported key type {type(key).__name__}")


def algorithm_for_key(key: object) -> Algorithm:
    """The one algorithm the spec allows for this key (its type and size decide)."""
    kind, size = key_spec(key)
    for alg in ALGORITHMS.values():
        if alg.key_type == kind and alg.key_size == size:
            return alg
    raise VerificationError(f"unsupported {kind} key size {size} bits")


def sign_bytes(key: PrivateKey, alg: Algorithm, data: bytes) -> bytes:
    """Sign ``data``; ECDSA signatures come out as raw ``r || s`` as JWS and COSE want."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _pss(alg), alg.hash())
    der = key.sign(data, ec.ECDSA(alg.hash()))
    r, s = decode_dss_signature(der)
    n = alg.coordinate_bytes
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


def verify_bytes(key: object, alg: Algorithm, signature: bytes, data: bytes) -> bool:
    """True if ``signature`` (raw ``r || s`` for ECDSA) is valid over ``data``."""
    try:
        if isinstance(key, rsa.RSAPublicKey) and alg.key_type == "RSA":
            key.verify(signature, data, _pss(alg), alg.hash())
            return True
        if isinstance(key, ec.EllipticCurvePublicKey) and alg.key_type == "EC":
            n = alg.coordinate_bytes
            if len(signature) != 2 * n:
                return False
            r = int.from_bytes(signature[:n], "big")
            s = int.from_bytes(signature[n:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(alg.hash()))
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def _pss(alg: Algorithm) -> padding.PSS:
    # RFC 7518 / RFC 8230: MGF1 with the same hash, salt length = hash length.
    return padding.PSS(mgf=padding.MGF1(alg.hash()), salt_length=alg.hash().digest_size)


def verify_integrity(envelope: Envelope) -> None:
    """Check the envelope's signature with its leaf key, then its chain's structure.

    Order and rules follow notation: the declared ``alg`` must be the one the leaf key implies,
    the signature must verify over ``signed_bytes``, and the chain must be a well-formed
    code-signing chain. Raises ``VerificationError("integrity: ...")``.
    """
    if not envelope.certificate_chain:
        raise VerificationError("integrity: the envelope has no certificate chain")
    leaf = envelope.certificate_chain[0]
    try:
        expected = algorithm_for_key(leaf.public_key())
    except VerificationError as exc:
        raise VerificationError(f"integrity: signing certificate: {exc}") from None
    if expected.name != envelope.algorithm:
        raise VerificationError(
            f"integrity: envelope alg {envelope.algorithm} does not match the signing key "
            f"({expected.key_type} {expected.key_size} requires {expected.name})"
        )
    if not verify_bytes(leaf.public_key(), expected, envelope.signature, envelope.signed_bytes):
        raise VerificationError(
            "integrity: the signature does not verify with the leaf certificate's key "
            "(envelope tampered or signed by another key)"
        )
    try:
        validate_code_signing_chain(envelope.certificate_chain)
    except VerificationError as exc:
        raise VerificationError(f"integrity: certificate chain is invalid: {exc}") from None


# --- certificate requirements -------------------------------------------------------------

_FORBIDDEN_SIGNING_EKUS = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
}


def subject_of(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def is_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Names chain and ``issuer``'s key made ``cert``'s signature (SHA-1 refused)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_signature_hash(cert: x509.Certificate) -> None:
    try:
        algo = cert.signature_hash_algorithm
    except Exception:  # unsupported algorithm OIDs raise UnsupportedAlgorithm
        algo = None
    if algo is None or isinstance(algo, hashes.SHA1 | hashes.MD5):
        raise VerificationError(
            f"certificate {subject_of(cert)!r} uses an unsupported or weak signature algorithm"
        )


def _key_usage(cert: x509.Certificate) -> x509.Extension[x509.KeyUsage]:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound:
        raise VerificationError(
            f"certificate {subject_of(cert)!r}: key usage extension must be present"
        ) from None


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _ekus(cert: x509.Certificate) -> x509.Extension[x509.ExtendedKeyUsage] | None:
    try:
        return cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return None


def _check_leaf_common(cert: x509.Certificate, *, require_critical_ku: bool) -> None:
    bc = _basic_constraints(cert)
    if bc is not None and bc.ca:
        raise VerificationError(
            f"certificate {subject_of(cert)!r}: a signing certificate must not be a CA"
        )
    ku_ext = _key_usage(cert)
    if require_critical_ku and not ku_ext.critical:
        raise VerificationError(
            f"certificate {subject_of(cert)!r}: key usage extension must be marked critical"
        )
    ku = ku_ext.value
    if not ku.digital_signature:
        raise VerificationError(
            f"certificate {subject_of(cert)!r}: key usage must include digitalSignature"
        )
    bad = [
        name
        for name, on in (
            ("keyEncipherment", ku.key_encipherment),
            ("dataEncipherment", ku.data_encipherment),
            ("keyAgreement", ku.key_agreement),
            ("keyCertSign", ku.key_cert_sign),
            ("cRLSign", ku.crl_sign),
            ("encipherOnly", ku.key_agreement and ku.encipher_only),
            ("decipherOnly", ku.key_agreement and ku.decipher_only),
        )
        if on
    ]
    if bad:
        raise VerificationError(
            f"certificate {subject_of(cert)!r}: key usage must be digitalSignature only, "
            f"found {', '.join(bad)}"
        )
    try:
        algorithm_for_key(cert.public_key())
    except VerificationError as exc:
        raise VerificationError(f"certificate {subject_of(cert)!r}: {exc}") from None


def _check_code_signing_leaf(cert: x509.Certificate) -> None:
    _check_leaf_common(cert, require_critical_ku=True)
    eku = _ekus(cert)
    if eku is not None:
        for oid in eku.value:
            if oid in _FORBIDDEN_SIGNING_EKUS:
                raise VerificationError(
                    f"certificate {subject_of(cert)!r}: extended key usage must not contain "
                    f"{_FORBIDDEN_SIGNING_EKUS[oid]}"
                )


def _check_timestamping_leaf(cert: x509.Certificate) -> None:
    _check_leaf_common(cert, require_critical_ku=False)
    eku = _ekus(cert)
    if eku is None or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise VerificationError(
            f"timestamp signing certificate {subject_of(cert)!r} must have timeStamping as its "
            "only extended key usage"
        )
    if not eku.critical:
        raise VerificationError(
            f"timestamp signing certificate {subject_of(cert)!r} must have its extended key "
            "usage extension marked critical"
        )


def _check_ca(cert: x509.Certificate, below: int, *, require_critical_ku: bool) -> None:
    bc = _basic_constraints(cert)
    if bc is None or not bc.ca:
        raise VerificationError(
            f"certificate {subject_of(cert)!r}: basic constraints must be present with cA=true"
        )
    if bc.path_length is not None and bc.path_length < below:
        raise VerificationError(
            f"certificate {subject_of(cert)!r}: path length {bc.path_length} is smaller than "
            f"the {below} CA certificate(s) below it"
        )
    ku_ext = _key_usage(cert)
    if require_critical_ku and not ku_ext.critical:
        raise VerificationError(
            f"certificate {subject_of(cert)!r}: key usage extension must be marked critical"
        )
    if not ku_ext.value.key_cert_sign:
        raise VerificationError(
            f"certificate {subject_of(cert)!r}: key usage must include keyCertSign"
        )


def _validate_chain(
    chain: tuple[x509.Certificate, ...] | list[x509.Certificate], *, tsa: bool
) -> None:
    if not chain:
        raise VerificationError("certificate chain is empty")
    for cert in chain:
        _check_signature_hash(cert)
    check_leaf = _check_timestamping_leaf if tsa else _check_code_signing_leaf
    if len(chain) == 1:
        cert = chain[0]
        if not is_issued_by(cert, cert):
            raise VerificationError(
                f"single certificate {subject_of(cert)!r} is not a self-signed certificate"
            )
        check_leaf(cert)
        return
    for i, cert in enumerate(chain):
        last = i == len(chain) - 1
        if last:
            if not is_issued_by(cert, cert):
                raise VerificationError(
                    f"root certificate {subject_of(cert)!r} is not self-signed; the chain must "
                    "end with a self-signed root"
                )
        else:
            if is_issued_by(cert, cert):
                role = "leaf" if i == 0 else "intermediate"
                raise VerificationError(
                    f"{role} certificate {subject_of(cert)!r} is self-signed; the chain must be "
                    "ordered leaf first, root last"
                )
            parent = chain[i + 1]
            if not is_issued_by(cert, parent):
                raise VerificationError(
                    f"certificate {subject_of(cert)!r} is not issued by {subject_of(parent)!r}; "
                    "the chain must be ordered leaf first, root last"
                )
        if i == 0:
            check_leaf(cert)
        else:
            _check_ca(cert, i - 1, require_critical_ku=not tsa)


def validate_code_signing_chain(
    chain: tuple[x509.Certificate, ...] | list[x509.Certificate],
) -> None:
    """Spec certificate requirements for a signing chain (ordered leaf -> self-signed root)."""
    _validate_chain(chain, tsa=False)


def validate_timestamping_chain(
    chain: tuple[x509.Certificate, ...] | list[x509.Certificate],
) -> None:
    """Spec (and RFC 3161) certificate requirements for a TSA chain."""
    _validate_chain(chain, tsa=True)


def require_valid_at(chain: tuple[x509.Certificate, ...], when: datetime) -> None:
    """Raise unless every certificate in ``chain`` is within its validity period at ``when``.

    (``chain.check_valid_at`` is the reason-returning check in notation's wording.)
    """
    for cert in chain:
        if when < cert.not_valid_before_utc:
            raise VerificationError(
                f"certificate {subject_of(cert)!r} is not valid before "
                f"{cert.not_valid_before_utc.isoformat()}"
            )
        if when > cert.not_valid_after_utc:
            raise VerificationError(
                f"certificate {subject_of(cert)!r} expired at "
                f"{cert.not_valid_after_utc.isoformat()}"
            )
