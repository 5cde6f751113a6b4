"""The signing key and its certificate chain, read from PEM files: the I/O edge of signing.

Refused with a message naming the file: a key or chain that does not parse, an encrypted key
without its passphrase (read from an environment variable, never from the command line, where
``ps`` would show it), a key type or size the Notary Project does not allow, and a chain whose
first certificate is not the key's own (a signature would name someone else as the signer).
The key object never leaves this process and is never written anywhere: ``SigningKey``'s
``repr`` shows the certificate, not the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from auditor.errors import SigningError, UsageError, VerificationError
from auditor.notary.crypto import (
    Algorithm,
    PrivateKey,
    algorithm_for_key,
    subject_of,
    validate_code_signing_chain,
)

MAX_PEM_BYTES = 1024 * 1024
"""A key or chain file bigger than this is not a key or a chain."""


@dataclass(frozen=True)
class SigningKey:
    """A private key with its chain (leaf first); the key is hidden from ``repr``."""

    key: PrivateKey = field(repr=False)
    chain: tuple[x509.Certificate, ...]
    algorithm: Algorithm

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def leaf_der(self) -> bytes:
        return self.leaf.public_bytes(Encoding.DER)

    @property
    def thumbprint(self) -> str:
        """SHA-256 of the leaf certificate, as notation's thumbprint annotation lists it."""
        return hashlib.sha256(self.leaf_der).hexdigest()

    @property
    def subject(self) -> str:
        return subject_of(self.leaf)


def _read(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PEM_BYTES:
            raise UsageError(f"{what} {path}: {size} bytes, more than a PEM file can need")
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path}: is a directory, not a PEM file") from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None


def load_private_key(
    path: Path, *, passphrase_env: str | None = None, env: Mapping[str, str] | None = None
) -> PrivateKey:
    """An RSA or EC private key from a PEM file, decrypted with ``$passphrase_env`` if given."""
    data = _read(path, "--key")
    password: bytes | None = None
    if passphrase_env is not None:
        value = (env or {}).get(passphrase_env)
        if value is None:
            raise UsageError(
                f"--key-passphrase-env: environment variable {passphrase_env} is not set"
            )
        password = value.encode()
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        # cryptography says TypeError when a password is missing or not needed.
        if password is None:
            raise UsageError(
                f"--key {path}: the key is encrypted; name the environment variable holding "
                "its passphrase with --key-passphrase-env"
            ) from None
        raise UsageError(
            f"--key {path}: the key is not encrypted, but a passphrase was given"
        ) from None
    except ValueError:
        # Wrong passphrase and malformed PEM look alike here; say both, reveal neither.
        hint = " or the passphrase is wrong" if password is not None else ""
        raise UsageError(f"--key {path}: not a readable PEM private key{hint}") from None
    except Exception:  # the library's own parse errors: never echo key bytes
        raise UsageError(f"--key {path}: not a readable PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise UsageError(
            f"--key {path}: a {type(key).__name__.removeprefix('_')} key; the Notary Project "
            "signs with RSA (2048/3072/4096) or EC (P-256/P-384/P-521) keys"
        )
    return key


def load_chain(path: Path) -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM file, in file order (leaf first, as the envelope carries it)."""
    data = _read(path, "--cert")
    try:
        chain = tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        raise UsageError(f"--cert {path}: not a PEM certificate chain") from None
    if not chain:
        raise UsageError(f"--cert {path}: holds no certificate")
    return chain


def _spki(key: object) -> bytes:
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def signing_key(
    key: PrivateKey, chain: tuple[x509.Certificate, ...], *, key_path: Path, cert_path: Path
) -> SigningKey:
    """Pair a key with its chain after the checks the spec asks of both."""
    try:
        algorithm = algorithm_for_key(key)
    except VerificationError as exc:
        raise UsageError(f"--key {key_path}: {exc}; the Notary Project allows RSA "
                         "2048/3072/4096 and EC P-256/P-384/P-521") from None
    leaf_key = chain[0].public_key()
    if not isinstance(leaf_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) or _spki(
        leaf_key
    ) != _spki(key.public_key()):
        owner = next(
            (i for i, c in enumerate(chain) if _same_key(c, key)),
            None,
        )
        where = (
            f"it is certificate {owner + 1} of {len(chain)}; put it first"
            if owner is not None
            else "no certificate in the file is the key's"
        )
        raise UsageError(
            f"--cert {cert_path}: the chain must start with the certificate of --key {key_path} "
            f"(leaf first), but it starts with {subject_of(chain[0])!r}; {where}"
        )
    return SigningKey(key=key, chain=chain, algorithm=algorithm)


def _same_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return False
    return _spki(public) == _spki(key.public_key())


def load_signing_key(
    key_path: Path,
    cert_path: Path,
    *,
    passphrase_env: str | None = None,
    env: Mapping[str, str] | None = None,
) -> SigningKey:
    """Key and chain from files, checked; UsageError names the file at fault."""
    key = load_private_key(key_path, passphrase_env=passphrase_env, env=env)
    chain = load_chain(cert_path)
    loaded = signing_key(key, chain, key_path=key_path, cert_path=cert_path)
    try:
        # The spec's certificate requirements (code-signing leaf, CA flags, ordering):
        # refusing here beats publishing signatures every verifier rejects.
        validate_code_signing_chain(loaded.chain)
    except VerificationError as exc:
        raise SigningError(f"--cert {cert_path}: {exc}") from None
    return loaded
