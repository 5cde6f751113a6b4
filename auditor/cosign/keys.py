"""Public keys for cosign's key-based verification: PEM in, ``verify(signature, message)`` out.

cosign signs with ECDSA (P-256 with SHA-256 by default, P-384 with SHA-384 in cosign 2.x
and SHA-256 in older releases), RSA PKCS#1 v1.5 with SHA-256, or Ed25519 over the message
itself. Only these are accepted; any other key type is a configuration error when the key
is loaded, and a signature error when it arrives inside a transparency-log entry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from auditor.errors import VerificationError

SupportedKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_EC_HASHES: dict[str, tuple[type[hashes.HashAlgorithm], ...]] = {
    "secp256r1": (hashes.SHA256,),
    "secp384r1": (hashes.SHA384, hashes.SHA256),
    "secp521r1": (hashes.SHA512,),
}
_MIN_RSA_BITS = 2048


@dataclass(frozen=True, eq=False)
class PublicKey:
    """A verification key with a label (where it came from) and a stable fingerprint."""

    key: SupportedKey
    label: str

    @property
    def spki(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the DER SubjectPublicKeyInfo (what Rekor's logID is made of)."""
        return "sha256:" + hashlib.sha256(self.spki).hexdigest()

    def same_key(self, other: PublicKey) -> bool:
        return self.spki == other.spki

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` is this key's signature over ``message``."""
        key = self.key
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, message)
                return True
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
                return True
            for hash_type in _EC_HASHES.get(key.curve.name, ()):
                try:
                    key.verify(signature, message, ec.ECDSA(hash_type()))
                except InvalidSignature:
                    continue
                return True
        except (InvalidSignature, ValueError):
            return False
        return False


def load_pem_public_key(data: bytes, label: str) -> PublicKey:
    """Parse one PEM public key; VerificationError names ``label`` and what is wrong."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise VerificationError(f"{label}: not a PEM public key ({exc})") from None
    return check_key(key, label)


def check_key(key: object, label: str) -> PublicKey:
    """Refuse key types and sizes cosign would not produce."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _EC_HASHES:
            raise VerificationError(f"{label}: ECDSA curve {key.curve.name} is not supported")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise VerificationError(
                f"{label}: RSA key of {key.key_size} bits is too short (minimum {_MIN_RSA_BITS})"
            )
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise VerificationError(
            f"{label}: {type(key).__name__} is not a supported key type "
            "(ECDSA P-256/384/521, RSA, Ed25519)"
        )
    return PublicKey(key, label)
