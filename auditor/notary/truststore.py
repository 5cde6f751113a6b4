"""notation's trust store: ``<root>/x509/{ca,signingAuthority,tsa}/NAME/<cert files>``.

Files hold one or more certificates, PEM or DER (concatenated DER too). The same rules as
notation apply, so a store notation refuses is refused here: the named store must be a real
directory (no symlinks), every entry a regular file with at least one certificate, every
certificate a CA or self-signed, TSA certificates self-issued roots, and the store not empty.
Any violation is a ConfigError: a broken trust store is a configuration problem, never a
reason to call a signature valid or invalid. Stores are read when a signature first needs
them, so a broken store only matters to the statement that names it (the verifier makes it
an ``error`` verdict there).
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from auditor.errors import ConfigError
from auditor.notary.trustpolicy import StoreType, TrustStoreRef

MAX_CERT_FILE_BYTES = 1 << 20


def _der_items(data: bytes) -> list[bytes]:
    """Split concatenated DER SEQUENCEs by their length octets (ValueError if malformed)."""
    items: list[bytes] = []
    pos = 0
    while pos < len(data):
        if data[pos] != 0x30 or pos + 2 > len(data):
            raise ValueError("not DER")
        first = data[pos + 1]
        if first < 0x80:
            length, header = first, 2
        else:
            count = first & 0x7F
            if count == 0 or count > 4 or pos + 2 + count > len(data):
                raise ValueError("bad DER length")
            length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
            header = 2 + count
        end = pos + header + length
        if end > len(data):
            raise ValueError("truncated DER")
        items.append(data[pos:end])
        pos = end
    return items


def read_certificates(data: bytes) -> list[x509.Certificate]:
    """Certificates in PEM (any number) or DER (one or concatenated); ValueError if none parse."""
    if b"-----BEGIN" in data:
        certs = x509.load_pem_x509_certificates(data)
        if not certs:
            raise ValueError("no PEM certificate found")
        return certs
    return [x509.load_der_x509_certificate(item) for item in _der_items(data)]


def is_self_signed(cert: x509.Certificate) -> bool:
    """The certificate's own key made its signature (names need not match: Go's CheckSignature)."""
    key = cert.public_key()
    try:
        hash_alg = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return False
    if hash_alg is None:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            params = cert.signature_algorithm_parameters
            pad = params if isinstance(params, padding.PSS) else padding.PKCS1v15()
            key.verify(cert.signature, cert.tbs_certificate_bytes, pad, hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hash_alg))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


class TrustStore:
    """Reads named stores lazily and caches them (the verifier runs in worker threads)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[TrustStoreRef, tuple[x509.Certificate, ...] | ConfigError] = {}
        self._lock = threading.Lock()

    def certificates(self, ref: TrustStoreRef) -> tuple[x509.Certificate, ...]:
        """The store's certificates, read on first use (as notation reads only the stores
        of the statement that applies); a broken store raises the same ConfigError each
        time it is asked for, without being read again."""
        with self._lock:
            cached = self._cache.get(ref)
        if cached is None:
            try:
                cached = self._load(ref)
            except ConfigError as exc:
                cached = exc
            with self._lock:
                self._cache[ref] = cached
        if isinstance(cached, ConfigError):
            raise ConfigError(cached.message)
        return cached

    def _load(self, ref: TrustStoreRef) -> tuple[x509.Certificate, ...]:
        label = f'the trust store "{ref.name}" of type "{ref.type.value}"'
        path = self.root / "x509" / ref.type.value / ref.name
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise ConfigError(f"{label} does not exist (expected directory {path})") from None
        except OSError as exc:
            raise ConfigError(f"{label} cannot be accessed: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigError(
                f"{label} at {path} is not a regular directory (symlinks are not supported)"
            )
        certs: list[x509.Certificate] = []
        for entry in sorted(path.iterdir()):
            certs.extend(self._load_file(ref, label, entry))
        if not certs:
            raise ConfigError(f"no x509 certificates were found in {label} ({path})")
        return tuple(certs)

    def _load_file(self, ref: TrustStoreRef, label: str, entry: Path) -> list[x509.Certificate]:
        info = os.lstat(entry)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                f"trusted certificate {entry.name} in {label} is not a regular file "
                "(directories or symlinks are not supported)"
            )
        if info.st_size > MAX_CERT_FILE_BYTES:
            raise ConfigError(f"trusted certificate {entry.name} in {label} is too large")
        try:
            certs = read_certificates(entry.read_bytes())
        except (ValueError, OSError) as exc:
            raise ConfigError(
                f"failed to read the trusted certificate {entry.name} in {label}: every file in "
                f"a trust store must hold PEM or DER certificates ({exc})"
            ) from None
        for cert in certs:
            subject = cert.subject.rfc4514_string()
            if not _is_ca(cert) and not is_self_signed(cert):
                raise ConfigError(
                    f'trusted certificate {entry.name} in {label}: certificate "{subject}" is not '
                    "a CA certificate or self-signed signing certificate"
                )
            if ref.type is StoreType.TSA and not (
                _is_ca(cert) and cert.issuer == cert.subject and is_self_signed(cert)
            ):
                raise ConfigError(
                    f'trusted certificate {entry.name} in {label}: certificate "{subject}" is not '
                    "a root CA certificate, only root CA certificates are allowed in a tsa store"
                )
        return certs
