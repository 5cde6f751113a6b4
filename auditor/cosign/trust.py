"""The ``cosign:`` trust rules, as the pure verifier sees them (loaded by ``material.py``).

First rule whose scopes match the target's ``host/repository`` applies (globs, ``*`` for
every target), like the notation trust policy's registryScopes. A rule is either keyless (a
certificate identity chained to the trusted root's Fulcio CAs) or key-based (PEM public
keys); never both, so a bare key can never stand in for an identity. The transparency-log
proof is required unless the rule says ``ignore_tlog: true``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from auditor.cosign.keys import PublicKey, check_key
from auditor.cosign.rekor import LogKey
from auditor.errors import ConfigError, VerificationError

if TYPE_CHECKING:
    # sigstore-python is imported where it is used (a trusted root loaded, a bundle verified):
    # importing it costs more than a whole small audit, and most runs have no cosign section.
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    from auditor.cosign.identity import KeylessIdentity


@dataclass(frozen=True)
class CosignRule:
    name: str
    scopes: tuple[str, ...]
    keyless: KeylessIdentity | None = None
    keys: tuple[PublicKey, ...] = ()
    ignore_tlog: bool = False

    def __post_init__(self) -> None:
        if (self.keyless is None) == (not self.keys):
            raise ValueError(f"cosign rule {self.name!r}: give keyless or key, exactly one")

    def matches(self, scope: str) -> bool:
        return any(fnmatch.fnmatchcase(scope, s) for s in self.scopes)


@dataclass(frozen=True)
class TrustRoot:
    """Sigstore trust material: Fulcio CAs, CT logs, TSAs (for sigstore-python) and Rekor keys."""

    sigstore: TrustedRoot
    log_keys: Mapping[str, LogKey]
    source: str

    def verifier(self) -> Verifier:
        """sigstore's verifier over this root (cheap: it holds the root and makes no request)."""
        from sigstore.errors import Error as SigstoreError
        from sigstore.verify import Verifier

        try:
            return Verifier(trusted_root=self.sigstore)
        except SigstoreError as exc:
            raise VerificationError(f"{self.source}: {exc}") from None


@dataclass(frozen=True)
class CosignTrust:
    rules: tuple[CosignRule, ...]
    root: TrustRoot

    def rule_for(self, scope: str) -> CosignRule | None:
        return next((r for r in self.rules if r.matches(scope)), None)


def _time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def parse_trusted_root(data: bytes, source: str) -> TrustRoot:
    """A ``trusted_root.json`` document; ConfigError names ``source`` when it cannot be used."""
    from sigstore.models import TrustedRoot
    from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootDocument

    try:
        document = TrustedRootDocument.from_json(data)
        root = TrustedRoot(document)
    except Exception as exc:  # sigstore-models raises pydantic and its own errors alike
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{source}: not a Sigstore trusted root ({first})") from None
    keys: dict[str, LogKey] = {}
    for i, tlog in enumerate(document.tlogs or ()):
        label = f"{source}: tlogs[{i}]"
        try:
            raw = serialization.load_der_public_key(tlog.public_key.raw_bytes or b"")
            key = check_key(raw, label)
        except (ValueError, UnsupportedAlgorithm, VerificationError):
            continue  # a log we cannot use only fails the entries that name it
        log_id = (tlog.log_id.key_id or b"").hex()
        valid = tlog.public_key.valid_for
        keys[log_id] = LogKey(
            log_id=log_id,
            key=PublicKey(key.key, f"{tlog.base_url or label}"),
            valid_from=_time(valid.start) if valid else None,
            valid_until=_time(valid.end) if valid else None,
            base_url=tlog.base_url or "",
        )
    if not document.certificate_authorities and not keys:
        raise ConfigError(f"{source}: the trusted root has no Fulcio CA and no Rekor key")
    return TrustRoot(sigstore=root, log_keys=keys, source=source)
