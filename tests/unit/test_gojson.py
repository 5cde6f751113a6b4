"""One JSON reader for every verdict-deciding document: Go's reading, or a refusal naming why.

Expectations follow Go's encoding/json (keys matched to struct fields exactly, else
case-insensitively; the last of several wins), which is how distribution, containerd and
notation read these documents.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from auditor import gojson
from auditor.errors import ConfigError, MalformedContent, VerificationError
from auditor.notary.envelope import parse_payload
from auditor.notary.trustpolicy import parse_trust_policy
from auditor.oci import mediatypes as mt
from auditor.oci.manifest import ImageIndex, ImageManifest, parse_manifest

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def entry(digest: str, arch: str = "amd64") -> str:
    return (
        f'{{"mediaType": "{mt.OCI_MANIFEST}", "digest": "{digest}", "size": 10, '
        f'"platform": {{"os": "linux", "architecture": "{arch}"}}}}'
    )


def index_text(body: str) -> bytes:
    return f'{{"schemaVersion": 2, "mediaType": "{mt.OCI_INDEX}", {body}}}'.encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f'"manifests": [{entry(A)}], "Manifests": [{entry(B)}]', "both set field 'manifests'"),
        (f'"manifests": [{entry(A)}], "manifests": [{entry(B)}]', "duplicate key 'manifests'"),
        (f'"MANIFESTS": [{entry(A)}], "manifests": [{entry(B)}]', "both set field 'manifests'"),
        (f'"manifests": [{entry(A)}], "manife\u017fts": [{entry(B)}]', "Unicode case folding"),
        (
            f'"manifests": [{{"mediaType": "{mt.OCI_MANIFEST}", "digest": "{A}", "size": 1, '
            f'"Digest": "{B}"}}]',
            "both set field 'digest'",
        ),
        (
            f'"manifests": [{{"mediaType": "{mt.OCI_MANIFEST}", "digest": "{A}", "size": 1, '
            '"platform": {"os": "linux", "architecture": "amd64"}, '
            '"Platform": {"os": "linux", "architecture": "arm64"}}]',
            "both set field 'platform'",
        ),
        (
            f'"manifests": [{{"mediaType": "{mt.OCI_MANIFEST}", "digest": "{A}", "size": 1, '
            '"platform": {"os": "linux", "architecture": "amd64", "Architecture": "arm64"}}]',
            "both set field 'architecture'",
        ),
        (
            '"manifests": [], "annotations": {"k": "1", "k": "2"}',
            "duplicate key 'k'",
        ),
        (f'"manifests": [{entry(A)}], "schemaVersion": 2', "duplicate key 'schemaVersion'"),
    ],
)
def test_ambiguous_indexes_are_refused_with_the_keys_named(body: str, message: str) -> None:
    with pytest.raises(MalformedContent, match=message):
        parse_manifest(index_text(body), mt.OCI_INDEX, "index x")


def test_a_key_differing_only_in_ascii_case_is_read_as_go_reads_it() -> None:
    raw = index_text(
        f'"MANIFESTS": [{{"MediaType": "{mt.OCI_MANIFEST}", "DIGEST": "{A}", "Size": 5, '
        '"Platform": {"OS": "linux", "Architecture": "arm64", "Variant": "v8"}, '
        '"Annotations": {"Key": "v"}}]'
    )
    index = parse_manifest(raw, mt.OCI_INDEX)
    assert isinstance(index, ImageIndex)
    (desc,) = index.manifests
    assert (desc.digest, desc.size, str(desc.platform)) == (A, 5, "linux/arm64/v8")
    assert dict(desc.annotations) == {"Key": "v"}  # map keys stay exact, as in Go


def test_a_manifest_without_mediatype_is_an_index_when_go_would_see_manifests() -> None:
    raw = f'{{"schemaVersion": 2, "Manifests": [{entry(A)}]}}'.encode()
    assert isinstance(parse_manifest(raw), ImageIndex)


def test_a_subject_and_config_in_another_case_are_still_seen() -> None:
    config = f'{{"mediaType": "application/x", "digest": "{A}", "size": 2}}'
    raw = (
        f'{{"schemaVersion": 2, "mediaType": "{mt.OCI_MANIFEST}", "Config": {config}, '
        f'"layers": [], "SUBJECT": {{"mediaType": "{mt.OCI_MANIFEST}", "digest": "{B}", '
        '"size": 3}}'
    ).encode()
    manifest = parse_manifest(raw)
    assert isinstance(manifest, ImageManifest)
    assert manifest.subject is not None
    assert manifest.subject.digest == B


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xef\xbb\xbf{}", "not valid JSON"),  # UTF-8 BOM: Go refuses it
        ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
        (b'{"schemaVersion": NaN}', "NaN is not a JSON value"),
        (b'{"schemaVersion": 1e999}', "out of range"),
        (b'{"a": "\\ud800"}', "unpaired UTF-16 surrogate"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested deeper than"),
        (b"[" * (gojson.MAX_DEPTH + 1) + b"]" * (gojson.MAX_DEPTH + 1), "nested deeper than"),
        (b'{"a": 1} {"b": 2}', "not valid JSON"),
        (b"\xff", "not UTF-8"),
    ],
)
def test_strict_reading(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedContent, match=message):
        gojson.loads(raw, "doc")


def test_depth_up_to_the_limit_is_fine_and_surrogate_pairs_are_text() -> None:
    depth = gojson.MAX_DEPTH
    assert gojson.loads(b"[" * depth + b"]" * depth, "doc") is not None
    assert gojson.loads(b'"\\ud83d\\ude00"', "doc") == "\U0001f600"


def test_schema_version_must_be_the_integer_two() -> None:
    for version in ("2.0", "true", '"2"'):
        raw = f'{{"schemaVersion": {version}, "manifests": []}}'.encode()
        with pytest.raises(MalformedContent, match="schemaVersion"):
            parse_manifest(raw, mt.OCI_INDEX)


def test_sizes_beyond_int64_are_refused() -> None:
    raw = index_text(
        f'"manifests": [{{"mediaType": "{mt.OCI_MANIFEST}", "digest": "{A}", "size": {2**63}}}]'
    )
    with pytest.raises(MalformedContent, match="64-bit"):
        parse_manifest(raw, mt.OCI_INDEX)


def payload(target: str) -> bytes:
    return f'{{"targetArtifact": {target}}}'.encode()


def test_payload_is_read_as_notation_reads_it() -> None:
    target = f'{{"MediaType": "{mt.OCI_MANIFEST}", "Digest": "{A}", "SIZE": 7}}'
    assert parse_payload(payload(target)).digest == A
    two = f'{{"mediaType": "{mt.OCI_MANIFEST}", "digest": "{A}", "size": 7, "Digest": "{B}"}}'
    with pytest.raises(VerificationError, match="both set field 'digest'"):
        parse_payload(payload(two))
    doubled = (
        f'{{"targetArtifact": {{"mediaType": "x", "digest": "{A}", "size": 1}}, '
        f'"TargetArtifact": {{"mediaType": "x", "digest": "{B}", "size": 1}}}}'
    ).encode()
    with pytest.raises(VerificationError, match="targetArtifact"):
        parse_payload(doubled)


def policy(statement: Mapping[str, object], extra: str = "") -> bytes:
    text = json.dumps({"version": "1.0", "trustPolicies": [statement]})
    return text.replace('"trustPolicies"', f'{extra}"trustPolicies"', 1).encode()


STATEMENT: dict[str, object] = {
    "name": "p",
    "registryScopes": ["*"],
    "signatureVerification": {"level": "strict"},
    "trustStores": ["ca:s"],
    "trustedIdentities": ["*"],
}


def test_trust_policy_keys_in_another_case_are_read_as_notation_reads_them() -> None:
    statement = dict(STATEMENT)
    statement["SignatureVerification"] = statement.pop("signatureVerification")
    parsed = parse_trust_policy(policy(statement))
    assert parsed.statements[0].level.value == "strict"


def test_trust_policy_with_two_readings_is_a_config_error() -> None:
    statement = dict(STATEMENT)
    statement["SignatureVerification"] = {"level": "skip"}
    with pytest.raises(ConfigError, match="both set field 'signatureVerification'"):
        parse_trust_policy(policy(statement))
    with pytest.raises(ConfigError, match="both set field 'trustPolicies'"):
        parse_trust_policy(policy(STATEMENT, extra='"TrustPolicies": [], '))
    level_twice = dict(STATEMENT, signatureVerification={"level": "strict", "Level": "skip"})
    with pytest.raises(ConfigError, match="both set field 'level'"):
        parse_trust_policy(policy(level_twice))


def test_case_twins_are_refused_everywhere_when_asked() -> None:
    """cosign's documents are read field by field with exact names: no two keys may differ only
    in case, in any object (maps included), however the case differs."""
    for raw in (
        b'{"critical": {}, "Critical": {}}',
        b'{"optional": {"a": "1", "A": "2"}}',
        '{"size": 1, "\u017fize": 2}'.encode(),
    ):
        with pytest.raises(MalformedContent, match="duplicate key"):
            gojson.loads(raw, "doc", case_twins=True)
        assert gojson.loads(raw, "doc") is not None  # without the option: Go's map reading
