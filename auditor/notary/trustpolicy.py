"""notation's trust policy (``trustpolicy.json`` / ``trustpolicy.oci.json``), read unchanged.

The document is validated the way notation validates it, so a policy notation refuses is a
ConfigError here too (naming the statement and the field), and a policy notation accepts means
the same thing here. Every problem found is reported in one message. Pure: ``parse_trust_policy``
takes bytes; only ``load_trust_policy`` touches the file system.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from auditor import gojson
from auditor.errors import ConfigError, MalformedContent
from auditor.notary.identity import (
    WILDCARD,
    TrustedIdentity,
    find_overlap,
    parse_identity,
)
from auditor.notary.types import Validation

SUPPORTED_VERSIONS = ("1.0",)


class Action(StrEnum):
    ENFORCE = "enforce"
    LOG = "log"
    SKIP = "skip"


class Level(StrEnum):
    STRICT = "strict"
    PERMISSIVE = "permissive"
    AUDIT = "audit"
    SKIP = "skip"


class VerifyTimestamp(StrEnum):
    ALWAYS = "always"
    AFTER_CERT_EXPIRY = "afterCertExpiry"


class StoreType(StrEnum):
    CA = "ca"
    SIGNING_AUTHORITY = "signingAuthority"
    TSA = "tsa"


_V = Validation
_E, _L, _S = Action.ENFORCE, Action.LOG, Action.SKIP
LEVEL_ACTIONS: Mapping[Level, Mapping[Validation, Action]] = MappingProxyType(
    {
        Level.STRICT: MappingProxyType(
            {
                _V.INTEGRITY: _E,
                _V.AUTHENTICITY: _E,
                _V.AUTHENTIC_TIMESTAMP: _E,
                _V.EXPIRY: _E,
                _V.REVOCATION: _E,
            }
        ),
        Level.PERMISSIVE: MappingProxyType(
            {
                _V.INTEGRITY: _E,
                _V.AUTHENTICITY: _E,
                _V.AUTHENTIC_TIMESTAMP: _L,
                _V.EXPIRY: _L,
                _V.REVOCATION: _L,
            }
        ),
        Level.AUDIT: MappingProxyType(
            {
                _V.INTEGRITY: _E,
                _V.AUTHENTICITY: _L,
                _V.AUTHENTIC_TIMESTAMP: _L,
                _V.EXPIRY: _L,
                _V.REVOCATION: _L,
            }
        ),
        Level.SKIP: MappingProxyType(
            {
                _V.INTEGRITY: _S,
                _V.AUTHENTICITY: _S,
                _V.AUTHENTIC_TIMESTAMP: _S,
                _V.EXPIRY: _S,
                _V.REVOCATION: _S,
            }
        ),
    }
)
"""The spec's table: which validation each level enforces, logs or skips."""

_STORE_NAME = re.compile(r"^[a-zA-Z0-9_.-]+$")
# Domain and repository grammar of the distribution reference spec, as notation applies it.
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$"
)
_REPOSITORY = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-*)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-*)[a-z0-9]+)*)*$"
)


@dataclass(frozen=True)
class TrustStoreRef:
    """``ca:NAME``, ``signingAuthority:NAME`` or ``tsa:NAME``."""

    type: StoreType
    name: str

    def __str__(self) -> str:
        return f"{self.type.value}:{self.name}"


@dataclass(frozen=True)
class TrustPolicyStatement:
    name: str
    registry_scopes: tuple[str, ...]
    level: Level
    actions: Mapping[Validation, Action]
    trust_stores: tuple[TrustStoreRef, ...]
    trusted_identities: tuple[TrustedIdentity, ...]
    verify_timestamp: VerifyTimestamp = VerifyTimestamp.ALWAYS
    overridden: bool = False

    def action(self, validation: Validation) -> Action:
        return self.actions[validation]

    @property
    def is_skip(self) -> bool:
        return self.level is Level.SKIP

    @property
    def is_global(self) -> bool:
        return WILDCARD in self.registry_scopes

    def stores(self, store_type: StoreType) -> tuple[TrustStoreRef, ...]:
        return tuple(s for s in self.trust_stores if s.type is store_type)


@dataclass(frozen=True)
class TrustPolicy:
    version: str
    statements: tuple[TrustPolicyStatement, ...]
    source: str = "trust policy"


def valid_scope(scope: str) -> bool:
    """A fully qualified ``host[:port]/repository`` (no tag, no scheme, no wildcard)."""
    if "*" in scope:
        return False
    domain, sep, repository = scope.partition("/")
    return bool(sep and _DOMAIN.match(domain) and _REPOSITORY.match(repository))


LOCAL_SCOPE_EXAMPLE = "local/myOCILayout"


def layout_scope_problem(scope: str) -> str | None:
    """Why ``scope`` cannot name an OCI layout's trust policy scope, or None.

    notation (``verify --oci-layout --scope``) verifies a layout as ``SCOPE@DIGEST`` and
    requires SCOPE to be a registry scope as a policy statement writes it; ``*`` would make
    every statement's exact scope unreachable, so it is refused too.
    """
    if valid_scope(scope):
        return None
    return (
        f"scope {_q(scope)} is not a valid trust policy scope: give a fully qualified "
        f"repository without scheme, tag or wildcard, such as {LOCAL_SCOPE_EXAMPLE} (as "
        "notation verify --oci-layout --scope)"
    )


def _q(text: object) -> str:
    return json.dumps(text) if isinstance(text, str) else repr(text)


def _str_list(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)


def _parse_verification(
    name: str, raw: Any, problems: _Problems
) -> tuple[Level, dict[Validation, Action], VerifyTimestamp, bool] | None:
    where = f"trust policy statement {_q(name)} has invalid signatureVerification"
    if not isinstance(raw, dict):
        problems.add(f"{where}: signatureVerification must be an object with a level")
        return None
    level_raw = raw.get("level")
    if level_raw in (None, ""):
        problems.add(f"{where}: signature verification level is empty or missing")
        return None
    try:
        level = Level(level_raw)
    except ValueError:
        problems.add(f"{where}: invalid signature verification level {_q(level_raw)}")
        return None
    actions = dict(LEVEL_ACTIONS[level])
    verify_ts = VerifyTimestamp.ALWAYS
    ts_raw = raw.get("verifyTimestamp")
    if ts_raw not in (None, ""):
        try:
            verify_ts = VerifyTimestamp(ts_raw)
        except ValueError:
            problems.add(
                f"{where}: verifyTimestamp {_q(ts_raw)} is not supported, supported values are "
                '"always" and "afterCertExpiry"'
            )
    override = raw.get("override")
    if override in (None, {}):
        return level, actions, verify_ts, False
    if not isinstance(override, dict):
        problems.add(f"{where}: override must be a map of validation to action")
        return None
    if level is Level.SKIP:
        problems.add(
            f'{where}: signature verification level "skip" can\'t be used to customize '
            "signature verification"
        )
        return None
    ok = True
    for key, value in override.items():
        try:
            validation = Validation(key)
        except ValueError:
            problems.add(
                f"{where}: verification type {_q(key)} in custom signature verification is not "
                "supported, supported values are " + ", ".join(_q(v.value) for v in Validation)
            )
            ok = False
            continue
        try:
            action = Action(value)
        except ValueError:
            problems.add(
                f"{where}: verification action {_q(value)} in custom signature verification is "
                'not supported, supported values are "enforce", "log", "skip"'
            )
            ok = False
            continue
        if validation is Validation.INTEGRITY:
            problems.add(
                f'{where}: "integrity" verification can not be overridden in custom signature '
                "verification"
            )
            ok = False
        elif action is Action.SKIP and validation is not Validation.REVOCATION:
            problems.add(
                f"{where}: {_q(key)} verification can not be skipped in custom signature "
                "verification"
            )
            ok = False
        else:
            actions[validation] = action
    if not ok:
        return None
    return level, actions, verify_ts, True


def _parse_stores(name: str, raw: list[str], problems: _Problems) -> list[TrustStoreRef]:
    refs: list[TrustStoreRef] = []
    for value in raw:
        store_type, sep, store_name = value.partition(":")
        if not sep:
            problems.add(
                f"trust policy statement {_q(name)} has malformed trust store value {_q(value)}. "
                "The required format is <TrustStoreType>:<TrustStoreName>"
            )
            continue
        try:
            parsed_type = StoreType(store_type)
        except ValueError:
            problems.add(
                f"trust policy statement {_q(name)} uses an unsupported trust store type "
                f"{_q(store_type)} in trust store value {_q(value)}"
            )
            continue
        if not _STORE_NAME.match(store_name):
            problems.add(
                f"trust policy statement {_q(name)} uses an unsupported trust store name "
                f"{_q(store_name)} in trust store value {_q(value)}. Named store name needs to "
                "follow [a-zA-Z0-9_.-]+ format"
            )
            continue
        ref = TrustStoreRef(parsed_type, store_name)
        if ref not in refs:  # notation accepts a repeated store; it adds nothing
            refs.append(ref)
    return refs


def _parse_identities(name: str, raw: list[str], problems: _Problems) -> list[TrustedIdentity]:
    if len(raw) > 1 and WILDCARD in raw:
        problems.add(
            f"trust policy statement {_q(name)} uses a wildcard trusted identity '*', a wildcard "
            "identity cannot be used in conjunction with other values"
        )
        return []
    identities: list[TrustedIdentity] = []
    for value in raw:
        try:
            identities.append(parse_identity(value))
        except ValueError as exc:
            problems.add(f"trust policy statement {_q(name)} {exc}")
    overlap = find_overlap(identities)
    if overlap is not None:
        problems.add(
            f"trust policy statement {_q(name)} has overlapping x509 trustedIdentities, "
            f"{_q(overlap[0])} overlaps with {_q(overlap[1])}"
        )
    return identities


def _parse_statement(index: int, raw: Any, problems: _Problems) -> TrustPolicyStatement | None:
    if not isinstance(raw, dict):
        problems.add(f"trustPolicies[{index}] is not an object")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.add(
            f"trustPolicies[{index}]: a trust policy statement is missing a name, every statement "
            "requires a name"
        )
        return None
    before = len(problems.items)
    verification = _parse_verification(name, raw.get("signatureVerification"), problems)

    scopes = _str_list(raw.get("registryScopes", []))
    stores_raw = _str_list(raw.get("trustStores", []) or [])
    identities_raw = _str_list(raw.get("trustedIdentities", []) or [])
    for field_name, parsed in (
        ("registryScopes", scopes),
        ("trustStores", stores_raw),
        ("trustedIdentities", identities_raw),
    ):
        if parsed is None:
            problems.add(
                f"trust policy statement {_q(name)}: {field_name} must be a list of strings"
            )
    if verification is None or scopes is None or stores_raw is None or identities_raw is None:
        return None
    level, actions, verify_ts, overridden = verification

    stores: list[TrustStoreRef] = []
    identities: list[TrustedIdentity] = []
    if level is Level.SKIP:
        if stores_raw or identities_raw:
            problems.add(
                f"trust policy statement {_q(name)} is set to skip signature verification but "
                "configured with trust stores and/or trusted identities, remove them if "
                "signature verification needs to be skipped"
            )
    elif not stores_raw or not identities_raw:
        problems.add(
            f"trust policy statement {_q(name)} is either missing trust stores or trusted "
            "identities, both must be specified"
        )
    else:
        stores = _parse_stores(name, stores_raw, problems)
        identities = _parse_identities(name, identities_raw, problems)

    if not scopes:
        problems.add(
            f"trust policy statement {_q(name)} has zero registry scopes, it must specify "
            "registry scopes with at least one value"
        )
    elif len(scopes) > 1 and WILDCARD in scopes:
        problems.add(
            f"trust policy statement {_q(name)} uses wildcard registry scope '*', a wildcard "
            "scope cannot be used in conjunction with other scope values"
        )
    for scope in scopes:
        if scope != WILDCARD and not valid_scope(scope):
            problems.add(
                f"trust policy statement {_q(name)}: registry scope {_q(scope)} is not valid, "
                "make sure it is a fully qualified repository without the scheme, protocol or "
                "tag. For example domain.com/my/repository or a local scope like "
                "local/myOCILayout"
            )
    if len(set(scopes)) != len(scopes):
        duplicate = next(s for s in scopes if scopes.count(s) > 1)
        problems.add(
            f"trust policy statement {_q(name)} lists registry scope {_q(duplicate)} more than once"
        )
    if len(problems.items) != before:
        return None
    return TrustPolicyStatement(
        name=name,
        registry_scopes=tuple(scopes),
        level=level,
        actions=MappingProxyType(actions),
        trust_stores=tuple(stores),
        trusted_identities=tuple(identities),
        verify_timestamp=verify_ts,
        overridden=overridden,
    )


_DOCUMENT_FIELDS = ("version", "trustPolicies")
_STATEMENT_FIELDS = (
    "name",
    "registryScopes",
    "signatureVerification",
    "trustStores",
    "trustedIdentities",
)
_VERIFICATION_FIELDS = ("level", "override", "verifyTimestamp")


def _as_go_reads_it(doc: Any) -> Any:
    """The document with every struct's keys as notation (Go's encoding/json) matches them.

    ``"Level"`` is read as ``level``, as notation does; two keys for one field are refused
    (MalformedContent), so the policy we apply is the policy notation would apply.
    """
    if not isinstance(doc, dict):
        return doc
    out = gojson.fields(doc, _DOCUMENT_FIELDS, "trust policy")
    statements = out.get("trustPolicies")
    if isinstance(statements, list):
        normalized: list[Any] = []
        for i, raw in enumerate(statements):
            if isinstance(raw, dict):
                raw = gojson.fields(raw, _STATEMENT_FIELDS, f"trustPolicies[{i}]")
                verification = raw.get("signatureVerification")
                if isinstance(verification, dict):
                    where = f"trustPolicies[{i}].signatureVerification"
                    raw["signatureVerification"] = gojson.fields(
                        verification, _VERIFICATION_FIELDS, where
                    )
            normalized.append(raw)
        out["trustPolicies"] = normalized
    return out


def parse_trust_policy(data: bytes | str, source: str = "trust policy") -> TrustPolicy:
    """Parse and validate a trust policy document; ConfigError lists every problem found."""
    try:
        doc = _as_go_reads_it(gojson.loads(data, "trust policy"))
    except MalformedContent as exc:
        raise ConfigError(f"{source}: malformed trust policy, {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: malformed trust policy, the document must be a JSON object")
    problems = _Problems()
    version = doc.get("version")
    if version in (None, ""):
        problems.add("trust policy document has empty version, version must be specified")
    elif version not in SUPPORTED_VERSIONS:
        problems.add(f"trust policy document uses unsupported version {_q(version)}")
    raw_statements = doc.get("trustPolicies")
    if not isinstance(raw_statements, list) or not raw_statements:
        problems.add("trust policy document can not have zero trust policy statements")
        raw_statements = []
    statements: list[TrustPolicyStatement] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_statements):
        name = raw.get("name") if isinstance(raw, dict) else None
        if isinstance(name, str) and name:
            if name in names:
                problems.add(
                    f"multiple trust policy statements use the same name {_q(name)}, statement "
                    "names must be unique"
                )
            names.add(name)
        statement = _parse_statement(index, raw, problems)
        if statement is not None:
            statements.append(statement)
    owners: dict[str, str] = {}
    for statement in statements:
        for scope in set(statement.registry_scopes):
            if scope in owners:
                problems.add(
                    f"registry scope {_q(scope)} is present in multiple trust policy statements "
                    f"({_q(owners[scope])} and {_q(statement.name)}), one registry scope value "
                    "can only be associated with one statement"
                )
            else:
                owners[scope] = statement.name
    if problems.items:
        raise ConfigError(f"{source}: " + "; ".join(problems.items))
    return TrustPolicy(version=str(version), statements=tuple(statements), source=source)


def load_trust_policy(path: Path) -> TrustPolicy:
    """Read a policy file; a missing, unreadable, symlinked or malformed file is a ConfigError."""
    if path.is_symlink():
        raise ConfigError(f"trust policy {path} is a symlink, which notation does not support")
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"trust policy {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"trust policy {path} cannot be read: {exc.strerror or exc}") from exc
    return parse_trust_policy(data, source=f"trust policy {path}")


def select_statement(policy: TrustPolicy, scope: str) -> TrustPolicyStatement | None:
    """The statement for a ``host/repository`` scope: an exact match wins over ``*``."""
    wildcard: TrustPolicyStatement | None = None
    for statement in policy.statements:
        if scope in statement.registry_scopes:
            return statement
        if statement.is_global:
            wildcard = statement
    return wildcard
