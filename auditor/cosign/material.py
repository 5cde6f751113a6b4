"""Reads the ``cosign:`` section's files: the trusted root and the rules' public keys.

The one I/O edge of ``auditor/cosign``. The default trusted root is the public-good one that
ships inside the ``sigstore`` wheel, read from the installed package: nothing is fetched, at
load time or during an audit (no TUF refresh). Every problem is a ConfigError naming the
rule and the file, so ``auditor config check`` can report it.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from auditor.config import CosignConfig, CosignRuleConfig, KeylessConfig
from auditor.cosign.identity import GITHUB_CLAIMS, KeylessIdentity, Matcher
from auditor.cosign.keys import PublicKey, load_pem_public_key
from auditor.cosign.trust import CosignRule, CosignTrust, TrustRoot, parse_trusted_root
from auditor.errors import ConfigError, VerificationError

PUBLIC_GOOD = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
MAX_FILE_BYTES = 4 * 1024 * 1024


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{what} {path}: larger than {MAX_FILE_BYTES} bytes")
    return data


def load_trusted_root(path: Path | None) -> TrustRoot:
    """``path``, or the public-good root embedded in the installed sigstore package."""
    if path is not None:
        return parse_trusted_root(_read(path, "cosign.trusted_root"), str(path))
    embedded = resources.files("sigstore._store").joinpath(PUBLIC_GOOD, "trusted_root.json")
    source = "the sigstore package's public-good trusted root"
    try:
        data = embedded.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc})") from None
    return parse_trusted_root(data, source)


def _matcher(exact: str | None, pattern: str | None, where: str) -> Matcher:
    if pattern is not None:
        try:
            return Matcher(regexp=re.compile(pattern))
        except re.error as exc:
            raise ConfigError(f"{where}_regexp: {exc}") from None
    return Matcher(exact=exact)


def keyless_identity(config: KeylessConfig, where: str) -> KeylessIdentity:
    claims = tuple(
        (name, value)
        for name in GITHUB_CLAIMS
        if (value := getattr(config, name)) is not None
    )
    return KeylessIdentity(
        identity=_matcher(config.identity, config.identity_regexp, f"{where}.identity"),
        issuer=_matcher(config.issuer, config.issuer_regexp, f"{where}.issuer"),
        claims=claims,
    )


def _keys(rule: CosignRuleConfig, where: str) -> tuple[PublicKey, ...]:
    paths = rule.key_paths
    out = []
    for i, path in enumerate(paths):
        label = f"{where}.key" + (f"[{i}]" if len(paths) > 1 else "")
        data = _read(path, label)
        try:
            out.append(load_pem_public_key(data, path.name))
        except VerificationError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    return tuple(out)


def load_cosign_trust(config: CosignConfig, source: str = "cosign") -> CosignTrust:
    """Every rule with its keys read and regexps compiled, and the trusted root loaded."""
    rules = []
    for i, rule in enumerate(config.rules):
        where = f"{source}.rules[{i}]"
        keyless = keyless_identity(rule.keyless, f"{where}.keyless") if rule.keyless else None
        rules.append(
            CosignRule(
                name=rule.name or f"rules[{i}]",
                scopes=tuple(s.strip() for s in rule.scopes),
                keyless=keyless,
                keys=_keys(rule, where) if keyless is None else (),
                ignore_tlog=rule.ignore_tlog,
            )
        )
    return CosignTrust(rules=tuple(rules), root=load_trusted_root(config.trusted_root))
