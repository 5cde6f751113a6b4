"""Trust policy parsing: every rule notation enforces, statement selection, identities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from auditor.errors import ConfigError
from auditor.notary.identity import (
    match_identities,
    parse_dn,
    parse_identity,
    rfc4514,
)
from auditor.notary.trustpolicy import (
    Action,
    Level,
    StoreType,
    VerifyTimestamp,
    load_trust_policy,
    parse_trust_policy,
    select_statement,
)
from auditor.notary.types import Validation
from tests.support.paths import FIXTURES

POLICIES = FIXTURES / "notation-e2e/config/trustpolicies"


def _statement(**changes: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "name": "s",
        "registryScopes": ["registry.example/app"],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:acme"],
        "trustedIdentities": ["*"],
    }
    for key, value in changes.items():
        if value is None:
            statement.pop(key, None)
        else:
            statement[key] = value
    return statement


def _doc(*statements: dict[str, Any], version: str = "1.0") -> str:
    return json.dumps({"version": version, "trustPolicies": list(statements)})


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_trust_policy(text)
    return str(info.value)


def test_minimal_policy() -> None:
    policy = parse_trust_policy(_doc(_statement()))
    statement = policy.statements[0]
    assert statement.level is Level.STRICT
    assert statement.trust_stores[0].type is StoreType.CA
    assert str(statement.trust_stores[0]) == "ca:acme"
    assert statement.verify_timestamp is VerifyTimestamp.ALWAYS
    assert all(statement.action(v) is Action.ENFORCE for v in Validation)


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("strict", ["enforce"] * 5),
        ("permissive", ["enforce", "enforce", "log", "log", "log"]),
        ("audit", ["enforce", "log", "log", "log", "log"]),
    ],
)
def test_level_table(level: str, expected: list[str]) -> None:
    statement = parse_trust_policy(
        _doc(_statement(signatureVerification={"level": level}))
    ).statements[0]
    order = [
        Validation.INTEGRITY,
        Validation.AUTHENTICITY,
        Validation.AUTHENTIC_TIMESTAMP,
        Validation.EXPIRY,
        Validation.REVOCATION,
    ]
    assert [statement.action(v).value for v in order] == expected


def test_override_applies_on_top_of_level() -> None:
    sv = {"level": "audit", "override": {"authenticity": "enforce", "revocation": "skip"}}
    statement = parse_trust_policy(_doc(_statement(signatureVerification=sv))).statements[0]
    assert statement.action(Validation.AUTHENTICITY) is Action.ENFORCE
    assert statement.action(Validation.REVOCATION) is Action.SKIP
    assert statement.action(Validation.EXPIRY) is Action.LOG
    assert statement.overridden


@pytest.mark.parametrize(
    ("sv", "message"),
    [
        (
            {"level": "strict", "override": {"integrity": "log"}},
            '"integrity" verification can not be overridden',
        ),
        (
            {"level": "strict", "override": {"expiry": "skip"}},
            '"expiry" verification can not be skipped',
        ),
        ({"level": "strict", "override": {"bogus": "log"}}, 'verification type "bogus"'),
        ({"level": "strict", "override": {"expiry": "maybe"}}, 'verification action "maybe"'),
        ({"level": "skip", "override": {"expiry": "log"}}, "can't be used to customize"),
        ({"level": "lenient"}, 'invalid signature verification level "lenient"'),
        ({}, "level is empty or missing"),
        ({"level": "strict", "verifyTimestamp": "sometimes"}, 'verifyTimestamp "sometimes"'),
    ],
)
def test_bad_signature_verification(sv: dict[str, Any], message: str) -> None:
    error = _error(_doc(_statement(signatureVerification=sv)))
    assert message in error
    assert 'statement "s"' in error


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trustStores": []}, "is either missing trust stores or trusted identities"),
        ({"trustedIdentities": None}, "is either missing trust stores or trusted identities"),
        ({"trustStores": ["*"]}, 'malformed trust store value "*"'),
        ({"trustStores": ["ca:"]}, 'unsupported trust store name ""'),
        ({"trustStores": ["x509:acme"]}, 'unsupported trust store type "x509"'),
        ({"trustStores": ["ca:a/b"]}, 'unsupported trust store name "a/b"'),
        ({"trustedIdentities": [""]}, "has an empty trusted identity"),
        ({"trustedIdentities": ["*", "x509.subject: C=US, ST=WA, O=X"]}, "wildcard identity"),
        ({"trustedIdentities": ["x509.subject C=US"]}, "missing separator"),
        ({"trustedIdentities": ["x509.subject:"]}, "without an identity value"),
        ({"trustedIdentities": ["x509.subject: C=US, O=X"]}, 'mandatory RDN attribute for "ST"'),
        ({"trustedIdentities": ["x509.subject: C=US, ST=WA, O=X, O=Y"]}, "duplicate RDN"),
        ({"trustedIdentities": ["x509.subject: C=US+ST=WA, O=X"]}, "multi-valued"),
        (
            {
                "trustedIdentities": [
                    "x509.subject: C=US, ST=WA, O=X",
                    "x509.subject: C=US, ST=WA, O=X, OU=Y",
                ]
            },
            "overlapping x509 trustedIdentities",
        ),
        ({"registryScopes": []}, "has zero registry scopes"),
        ({"registryScopes": None}, "has zero registry scopes"),
        ({"registryScopes": ["*", "registry.example/app"]}, "wildcard scope cannot be used"),
        (
            {"registryScopes": ["registry.example"]},
            'registry scope "registry.example" is not valid',
        ),
        ({"registryScopes": ["registry.example/App"]}, "is not valid"),
        ({"registryScopes": ["registry.example/app:v1"]}, "is not valid"),
        ({"registryScopes": ["registry.example/a*"]}, "is not valid"),
        ({"registryScopes": "registry.example/app"}, "registryScopes must be a list"),
        ({"name": ""}, "missing a name"),
    ],
)
def test_statement_rules(changes: dict[str, Any], message: str) -> None:
    assert message in _error(_doc(_statement(**changes)))


def test_skip_must_not_name_stores() -> None:
    error = _error(_doc(_statement(signatureVerification={"level": "skip"})))
    assert "is set to skip signature verification but configured with trust stores" in error
    skip = _statement(
        signatureVerification={"level": "skip"}, trustStores=None, trustedIdentities=None
    )
    assert parse_trust_policy(_doc(skip)).statements[0].is_skip


def test_document_rules_and_all_problems_reported() -> None:
    assert "unsupported version" in _error(_doc(_statement(), version="2.0"))
    assert "empty version" in _error(json.dumps({"trustPolicies": [_statement()]}))
    assert "zero trust policy statements" in _error(_doc())
    assert "not valid JSON" in _error("{")
    assert "must be a JSON object" in _error("[]")
    two = _error(_doc(_statement(), _statement()))
    assert 'multiple trust policy statements use the same name "s"' in two
    assert "present in multiple trust policy statements" in two
    globals_ = _error(
        _doc(_statement(name="a", registryScopes=["*"]), _statement(name="b", registryScopes=["*"]))
    )
    assert 'registry scope "*" is present in multiple' in globals_
    both = _error(_doc(_statement(trustStores=["*"], registryScopes=[])))
    assert "malformed trust store" in both
    assert "zero registry scopes" in both


def test_unknown_fields_and_repeated_stores_are_accepted_like_notation() -> None:
    statement = _statement(trustStores=["ca:acme", "ca:acme"], globalPolicy=True)
    policy = parse_trust_policy(_doc(statement))
    assert len(policy.statements[0].trust_stores) == 1


def test_select_statement_exact_beats_wildcard() -> None:
    policy = parse_trust_policy(
        _doc(
            _statement(name="global", registryScopes=["*"]),
            _statement(name="app", registryScopes=["registry.example/app", "localhost:5000/x"]),
        )
    )
    chosen = select_statement(policy, "registry.example/app")
    assert chosen is not None
    assert chosen.name == "app"
    fallback = select_statement(policy, "registry.example/other")
    assert fallback is not None
    assert fallback.name == "global"
    exact_only = parse_trust_policy(_doc(_statement()))
    assert select_statement(exact_only, "registry.example/other") is None


def test_load_trust_policy_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_trust_policy(tmp_path / "missing.json")
    target = tmp_path / "real.json"
    target.write_text(_doc(_statement()))
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="symlink"):
        load_trust_policy(link)
    assert load_trust_policy(target).source.endswith("real.json")


@pytest.mark.parametrize(
    "name",
    [
        "trustpolicy.json",
        "permissive_trustpolicy.json",
        "timestamp_after_cert_expiry_trustpolicy.json",
        "multiple_registry_scope_trustpolicy.json",
        "skip_trustpolicy.json",
    ],
)
def test_notation_fixture_policies_load(name: str) -> None:
    assert load_trust_policy(POLICIES / name).statements


# --- identities -----------------------------------------------------------------------------


def _cert_with(*attrs: tuple[x509.ObjectIdentifier, str]) -> x509.Certificate:
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def test_dn_parsing_escapes_and_aliases() -> None:
    assert parse_dn(r" C=US, S=WA , O=Acme\, Inc., CN=\ padded\ ") == {
        "C": "US",
        "ST": "WA",
        "O": "Acme, Inc.",
        "CN": " padded ",
    }
    assert parse_dn(r"C=US,ST=WA,O=caf\C3\A9") == {"C": "US", "ST": "WA", "O": "café"}


def test_identity_matching_is_a_subset_match() -> None:
    leaf = _cert_with(
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "WA"),
        (NameOID.ORGANIZATION_NAME, "Acme, Inc."),
        (NameOID.COMMON_NAME, "builder"),
    )
    assert rfc4514(leaf) == r"CN=builder,O=Acme\, Inc.,ST=WA,C=US"
    ok = parse_identity(r"x509.subject: C=US, ST=WA, O=Acme\, Inc.")
    assert match_identities([ok], leaf) is None
    wrong = parse_identity("x509.subject: C=US, ST=WA, O=Acme, CN=builder")
    assert match_identities([wrong], leaf) is not None
    assert match_identities([parse_identity("*")], leaf) is None
    other_prefix = parse_identity("plugin.id: whatever")
    assert "no x509 trusted identities" in (match_identities([other_prefix], leaf) or "")


def test_certificate_with_repeated_attributes_never_matches() -> None:
    leaf = _cert_with(
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "WA"),
        (NameOID.ORGANIZATION_NAME, "Acme"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "a"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "b"),
    )
    identity = parse_identity("x509.subject: C=US, ST=WA, O=Acme")
    assert "duplicate RDN" in (match_identities([identity], leaf) or "")
