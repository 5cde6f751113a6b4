"""Certificate revocation checking: OCSP first, CRL as fallback, with an on-disk cache.

For every certificate of a chain (its issuer is the next certificate; the root is its own),
the spec's rules apply: a certificate with neither an OCSP URL nor a CRL distribution point
is not revocable (fine); OCSP is preferred, and when it cannot give an answer the CRLs are
tried. Responses are trusted only if signed by the issuer (or an OCSP responder certificate
the issuer delegated to) and fresh (``nextUpdate`` not passed). The chain's result is
``revoked`` if any certificate is, else ``unknown`` if any could not be determined, else
``good``. What ``unknown`` means is the trust policy's call (enforce/log/skip), not ours.

Network: the sync httpx client with bounded timeouts (OCSP 2 s, CRL 5 s by default) that
bound each request's *whole* exchange (not only each read), a response size limit, and a cap
on the number of fetches per run (the URLs come from signed material: an envelope must not be
able to make us fetch without end). The verifier only asks for chains that end in a trust
store certificate. The verifier runs in worker threads. The cache stores raw DER, keyed by
URL (CRL) or URL + certificate id (OCSP), and is re-verified on every read, so a stale or
tampered cache entry is simply refetched.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from auditor.decoding import BoundedDecoder
from auditor.errors import AuditorError, TooLarge

OCSP_TIMEOUT_SECONDS = 2.0
CRL_TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 16 << 20
CLOCK_SKEW = timedelta(minutes=5)
_RSASSA_PSS = x509.ObjectIdentifier("1.2.840.113549.1.1.10")


class RevocationStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"
    NON_REVOCABLE = "nonRevocable"


@dataclass(frozen=True)
class CertRevocation:
    """The result for one certificate; ``detail`` says how it was decided or why not."""

    subject: str
    status: RevocationStatus
    method: str | None  # "ocsp", "crl" or None
    detail: str
    # When the answer that decided this goes stale (OCSP/CRL nextUpdate): re-check after it.
    next_update: datetime | None = None


@dataclass(frozen=True)
class ChainRevocation:
    status: RevocationStatus  # GOOD, REVOKED or UNKNOWN
    certificates: tuple[CertRevocation, ...]

    @property
    def problem(self) -> CertRevocation | None:
        """The certificate that decided a non-good result (revoked wins over unknown)."""
        for wanted in (RevocationStatus.REVOKED, RevocationStatus.UNKNOWN):
            for cert in self.certificates:
                if cert.status is wanted:
                    return cert
        return None

    @property
    def next_update(self) -> datetime | None:
        """The earliest time any certificate's revocation answer goes stale."""
        times = [c.next_update for c in self.certificates if c.next_update is not None]
        return min(times) if times else None

    def reason(self) -> str:
        problem = self.problem
        if problem is None:
            return "no certificate in the chain is revoked"
        if problem.status is RevocationStatus.REVOKED:
            return (
                f'signing certificate with subject "{problem.subject}" is revoked '
                f"({problem.detail})"
            )
        return (
            f'signing certificate with subject "{problem.subject}" revocation status is unknown '
            f"({problem.detail})"
        )


class _Unavailable(Exception):
    """This source could not give an answer (network, parse, signature, staleness)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def verify_signed_by(
    key: object, signature: bytes, data: bytes, hash_alg: hashes.HashAlgorithm | None, oid: object
) -> bool:
    """Check a PKIX signature (RSA PKCS#1 v1.5 or PSS, ECDSA) made by ``key``."""
    if hash_alg is None:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pad: padding.AsymmetricPadding
            if oid == _RSASSA_PSS:
                pad = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
            else:
                pad = padding.PKCS1v15()
            key.verify(signature, data, pad, hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hash_alg))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and d.access_location.value.lower().startswith(("http://", "https://"))
    ]


def _distribution_urls(points: x509.CRLDistributionPoints | x509.FreshestCRL) -> list[str]:
    urls: list[str] = []
    for point in points:
        for name in point.full_name or []:
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.lower().startswith(
                ("http://", "https://")
            ):
                urls.append(name.value)
    return urls


def has_revocation_urls(chain: Sequence[x509.Certificate]) -> bool:
    """Whether checking ``chain`` would fetch anything (some certificate names OCSP or CRL)."""
    return any(ocsp_urls(cert) or crl_urls(cert) for cert in chain)


def crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return _distribution_urls(points)


class RevocationChecker:
    """Checks chains against OCSP responders and CRLs (thread-safe; reuse one per run)."""

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        ocsp_timeout: float = OCSP_TIMEOUT_SECONDS,
        crl_timeout: float = CRL_TIMEOUT_SECONDS,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_fetches: int | None = None,
        url_rewrite: Callable[[str], str] | None = None,
        now: Callable[[], datetime] = _utcnow,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._cache_dir = cache_dir
        self._ocsp_timeout = ocsp_timeout
        self._crl_timeout = crl_timeout
        self._max_bytes = max_response_bytes
        self._max_fetches = max_fetches
        self._fetches = 0
        self._fetch_lock = threading.Lock()
        self._rewrite = url_rewrite or (lambda url: url)
        self._now = now
        self._transport = transport
        # Built at the first OCSP/CRL fetch: most runs skip revocation or never reach the
        # network, and an httpx client (its TLS context) costs ~50 ms to make.
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._closed = False

    @property
    def _client(self) -> httpx.Client:
        with self._http_lock:
            if self._http is None:
                self._http = httpx.Client(
                    transport=self._transport,
                    follow_redirects=True,
                    max_redirects=3,
                    trust_env=False,
                )
                if self._closed:
                    self._http.close()  # used after close: fails as a closed client does
            return self._http

    def close(self) -> None:
        with self._http_lock:
            self._closed = True
            if self._http is not None:
                self._http.close()

    def __enter__(self) -> RevocationChecker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- chain ------------------------------------------------------------------------------

    def check_chain(
        self, chain: Sequence[x509.Certificate], *, signing_time: datetime | None = None
    ) -> ChainRevocation:
        """Check every certificate, root first, as the spec orders it.

        ``signing_time`` (an authentic signing time) lets a revocation dated after the signing
        keep the signature good, as the spec allows for timestamped signatures.
        """
        results: list[CertRevocation] = []
        for index in range(len(chain) - 1, -1, -1):
            cert = chain[index]
            issuer = chain[index + 1] if index + 1 < len(chain) else cert
            results.append(self.check_certificate(cert, issuer, signing_time=signing_time))
        results.reverse()
        statuses = {r.status for r in results}
        if RevocationStatus.REVOKED in statuses:
            overall = RevocationStatus.REVOKED
        elif RevocationStatus.UNKNOWN in statuses:
            overall = RevocationStatus.UNKNOWN
        else:
            overall = RevocationStatus.GOOD
        return ChainRevocation(status=overall, certificates=tuple(results))

    def check_certificate(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        *,
        signing_time: datetime | None = None,
    ) -> CertRevocation:
        subject = _subject(cert)
        ocsp_list, crl_list = ocsp_urls(cert), crl_urls(cert)
        if not ocsp_list and not crl_list:
            return CertRevocation(
                subject, RevocationStatus.NON_REVOCABLE, None, "no OCSP or CRL information"
            )
        failures: list[str] = []
        for url in ocsp_list:
            try:
                status, detail, next_update = self._ocsp(url, cert, issuer, signing_time)
            except _Unavailable as exc:
                failures.append(f"OCSP {url}: {exc}")
                continue
            if status is not RevocationStatus.UNKNOWN or not crl_list:
                return CertRevocation(subject, status, "ocsp", detail, next_update)
            failures.append(f"OCSP {url}: {detail}")
            break
        for url in crl_list:
            try:
                status, detail, next_update = self._crl(url, cert, issuer, signing_time)
            except _Unavailable as exc:
                failures.append(f"CRL {url}: {exc}")
                continue
            return CertRevocation(subject, status, "crl", detail, next_update)
        return CertRevocation(subject, RevocationStatus.UNKNOWN, None, "; ".join(failures))

    # --- OCSP -------------------------------------------------------------------------------

    def _ocsp(
        self,
        url: str,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        signing_time: datetime | None,
    ) -> tuple[RevocationStatus, str, datetime | None]:
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303 - CertID hash, as RFC 5019 profiles it
        cache_key = f"ocsp|{url}|{request.issuer_key_hash.hex()}|{cert.serial_number}"
        cached = self._cache_read(cache_key)
        if cached is not None:
            try:
                return self._evaluate_ocsp(cached, cert, issuer, signing_time)
            except _Unavailable:
                pass
        body = self._fetch(
            url,
            self._ocsp_timeout,
            content=request.public_bytes(serialization.Encoding.DER),
            headers={"Content-Type": "application/ocsp-request"},
        )
        status, detail, next_update = self._evaluate_ocsp(body, cert, issuer, signing_time)
        if next_update is not None:
            self._cache_write(cache_key, body)
        return status, detail, next_update

    def _evaluate_ocsp(
        self,
        body: bytes,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        signing_time: datetime | None,
    ) -> tuple[RevocationStatus, str, datetime | None]:
        try:
            response = ocsp.load_der_ocsp_response(body)
        except ValueError as exc:
            raise _Unavailable(f"malformed OCSP response ({exc})") from None
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise _Unavailable(f"responder answered {response.response_status.name}")
        self._check_ocsp_signature(response, issuer)
        single = self._matching_single(response, cert, issuer)
        now = self._now()
        if single.this_update_utc > now + CLOCK_SKEW:
            raise _Unavailable("OCSP response thisUpdate is in the future")
        next_update = single.next_update_utc
        if next_update is not None and now > next_update:
            raise _Unavailable(f"OCSP response expired at {next_update.isoformat()}")
        status = single.certificate_status
        if status is ocsp.OCSPCertStatus.GOOD:
            return RevocationStatus.GOOD, "OCSP: good", next_update
        if status is ocsp.OCSPCertStatus.REVOKED:
            revoked_at = single.revocation_time_utc
            if signing_time is not None and revoked_at is not None and revoked_at > signing_time:
                return (
                    RevocationStatus.GOOD,
                    f"OCSP: revoked at {revoked_at.isoformat()}, after the authentic signing time",
                    next_update,
                )
            when = revoked_at.isoformat() if revoked_at else "an unknown time"
            return RevocationStatus.REVOKED, f"OCSP: revoked at {when}", next_update
        return RevocationStatus.UNKNOWN, "OCSP responder does not know the certificate", next_update

    def _matching_single(
        self, response: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate
    ) -> ocsp.OCSPSingleResponse:
        for single in response.responses:
            if single.serial_number != cert.serial_number:
                continue
            expected = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(cert, issuer, single.hash_algorithm)
                .build()
            )
            if (
                single.issuer_key_hash == expected.issuer_key_hash
                and single.issuer_name_hash == expected.issuer_name_hash
            ):
                return single
        raise _Unavailable("OCSP response does not cover this certificate")

    def _check_ocsp_signature(self, response: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
        try:
            hash_alg = response.signature_hash_algorithm
        except UnsupportedAlgorithm:
            raise _Unavailable("OCSP response uses an unsupported signature algorithm") from None
        data, signature = response.tbs_response_bytes, response.signature
        oid = response.signature_algorithm_oid
        if verify_signed_by(issuer.public_key(), signature, data, hash_alg, oid):
            return
        now = self._now()
        for delegate in response.certificates:
            if not self._is_delegated_responder(delegate, issuer, now):
                continue
            if verify_signed_by(delegate.public_key(), signature, data, hash_alg, oid):
                return
        raise _Unavailable(
            "OCSP response is not signed by the issuer or a responder the issuer authorized"
        )

    @staticmethod
    def _is_delegated_responder(
        delegate: x509.Certificate, issuer: x509.Certificate, now: datetime
    ) -> bool:
        try:
            delegate.verify_directly_issued_by(issuer)
            eku = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            return False
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            return False
        return delegate.not_valid_before_utc <= now <= delegate.not_valid_after_utc

    # --- CRL --------------------------------------------------------------------------------

    def _load_crl(self, url: str, issuer: x509.Certificate) -> x509.CertificateRevocationList:
        """A CRL for ``url`` signed by ``issuer`` and not past nextUpdate (cache, then network)."""
        cache_key = f"crl|{url}"
        cached = self._cache_read(cache_key)
        if cached is not None:
            try:
                crl = self._parse_crl(cached, issuer)
                self._check_fresh(crl)
                return crl
            except _Unavailable:
                pass
        body = self._fetch(url, self._crl_timeout)
        crl = self._parse_crl(body, issuer)
        self._check_fresh(crl)
        if crl.next_update_utc is not None:
            self._cache_write(cache_key, body)
        return crl

    @staticmethod
    def _parse_crl(body: bytes, issuer: x509.Certificate) -> x509.CertificateRevocationList:
        try:
            crl = (
                x509.load_pem_x509_crl(body)
                if body.lstrip().startswith(b"-----")
                else x509.load_der_x509_crl(body)
            )
        except ValueError as exc:
            raise _Unavailable(f"malformed CRL ({exc})") from None
        if crl.issuer != issuer.subject:
            raise _Unavailable(f'CRL issuer "{crl.issuer.rfc4514_string()}" is not the issuer')
        try:
            valid = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        except (TypeError, UnsupportedAlgorithm):
            valid = False
        if not valid:
            raise _Unavailable("CRL signature does not verify with the issuer's key")
        return crl

    def _check_fresh(self, crl: x509.CertificateRevocationList) -> None:
        next_update = crl.next_update_utc
        if next_update is not None and self._now() > next_update:
            raise _Unavailable(f"CRL expired at {next_update.isoformat()}")

    def _crl(
        self,
        url: str,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        signing_time: datetime | None,
    ) -> tuple[RevocationStatus, str, datetime | None]:
        try:
            crl = self._load_crl(url, issuer)
        except _Unavailable as exc:
            if "expired" not in str(exc):
                raise
            # An expired CRL still proves a revocation (other than a hold) it lists.
            body = self._fetch(url, self._crl_timeout)
            stale = self._parse_crl(body, issuer)
            entry = stale.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None and _reason(entry) is not x509.ReasonFlags.certificate_hold:
                return (*self._revoked(entry, signing_time, "CRL (expired)"), None)
            raise
        crls = [crl]
        crls.extend(self._delta_crls(crl, issuer))
        updates = [c.next_update_utc for c in crls if c.next_update_utc is not None]
        next_update = min(updates) if updates else None
        for current in reversed(crls):  # the delta (newest) decides first
            entry = current.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is None:
                continue
            if _reason(entry) is x509.ReasonFlags.remove_from_crl:
                return RevocationStatus.GOOD, "CRL: removed from the CRL", next_update
            return (*self._revoked(entry, signing_time, "CRL"), next_update)
        return RevocationStatus.GOOD, "CRL: not listed", next_update

    @staticmethod
    def _revoked(
        entry: x509.RevokedCertificate, signing_time: datetime | None, source: str
    ) -> tuple[RevocationStatus, str]:
        try:
            invalidity = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
            invalid_from: datetime | None = invalidity.invalidity_date_utc
        except x509.ExtensionNotFound:
            invalid_from = None
        if signing_time is not None and invalid_from is not None and invalid_from > signing_time:
            return (
                RevocationStatus.GOOD,
                f"{source}: invalid from {invalid_from.isoformat()}, after the authentic signing "
                "time",
            )
        return (
            RevocationStatus.REVOKED,
            f"{source}: revoked at {entry.revocation_date_utc.isoformat()}",
        )

    def _delta_crls(
        self, base: x509.CertificateRevocationList, issuer: x509.Certificate
    ) -> list[x509.CertificateRevocationList]:
        try:
            freshest = base.extensions.get_extension_for_class(x509.FreshestCRL).value
        except x509.ExtensionNotFound:
            return []
        urls = _distribution_urls(freshest)
        if not urls:
            raise _Unavailable("base CRL names a delta CRL without an HTTP URL")
        try:
            base_number = base.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound:
            raise _Unavailable("base CRL with a delta CRL has no CRL number") from None
        failures: list[str] = []
        for url in urls:
            try:
                delta = self._load_crl(url, issuer)
                indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
            except _Unavailable as exc:
                failures.append(f"{url}: {exc}")
                continue
            except x509.ExtensionNotFound:
                failures.append(f"{url}: not a delta CRL")
                continue
            if indicator.crl_number > base_number:
                failures.append(f"{url}: delta CRL is for a newer base CRL")
                continue
            return [delta]
        raise _Unavailable("delta CRL unavailable: " + "; ".join(failures))

    # --- transport and cache ----------------------------------------------------------------

    def _fetch(
        self,
        url: str,
        timeout: float,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        target = self._rewrite(url)
        method = "POST" if content is not None else "GET"
        with self._fetch_lock:
            if self._max_fetches is not None and self._fetches >= self._max_fetches:
                raise _Unavailable(
                    f"not fetched: the per-run cap of {self._max_fetches} revocation requests "
                    "is reached (limits.max_revocation_fetches)"
                )
            self._fetches += 1
        ends_at = time.monotonic() + timeout
        try:
            sent = {"Accept-Encoding": "identity", **(headers or {})}
            with self._client.stream(
                method, target, content=content, headers=sent, timeout=timeout
            ) as response:
                if not 200 <= response.status_code < 300:
                    raise _Unavailable(f"HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if (
                    declared
                    and declared.isascii()
                    and declared.isdigit()
                    and int(declared) > self._max_bytes
                ):
                    raise _Unavailable(f"response larger than {self._max_bytes} bytes")
                decoder = BoundedDecoder(
                    response.headers.get("content-encoding"), self._max_bytes, url
                )
                chunks: list[bytes] = []
                for raw in response.iter_raw():
                    chunks.append(decoder.feed(raw))
                    if time.monotonic() > ends_at:
                        # A body dripping inside the per-read timeout still ends here.
                        raise _Unavailable(f"no complete answer within {timeout:g}s")
                chunks.append(decoder.flush())
                return b"".join(chunks)
        except TooLarge:
            raise _Unavailable(f"response larger than {self._max_bytes} bytes") from None
        except AuditorError as exc:
            raise _Unavailable(str(exc).removeprefix(f"{url}: ")) from None
        except httpx.TimeoutException:
            raise _Unavailable(f"timed out after {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise _Unavailable(f"{type(exc).__name__}: {exc}") from None

    def _cache_path(self, key: str) -> Path | None:
        if self._cache_dir is None:
            return None
        return self._cache_dir / (hashlib.sha256(key.encode()).hexdigest() + ".der")

    def _cache_read(self, key: str) -> bytes | None:
        path = self._cache_path(key)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def _cache_write(self, key: str, body: bytes) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            os.replace(tmp, path)
        except OSError:
            return  # a cache that cannot be written only costs a refetch


def _reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None
