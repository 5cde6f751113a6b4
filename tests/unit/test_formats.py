"""Report formats: JSON structure, table layout, SARIF validity, and the Format enum."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from auditor import __version__
from auditor.coverage import CoverageRule, FindingKind, Require, error_target, evaluate_target
from auditor.formats import Format, render, sarif, table
from auditor.formats import json as json_format
from auditor.formats.common import rfc3339, short_digest
from auditor.model import (
    AuditReport,
    Finding,
    GraphNode,
    ImageGraph,
    NodeKind,
    OtherReferrer,
    SignatureStatus,
    TargetResult,
    TargetStatus,
)
from tests.unit.test_coverage import (
    INDEX_MT,
    IX,
    MANIFEST_MT,
    A,
    B,
    P,
    T,
    dg,
    multi,
    result,
    sig_descriptor,
)

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "data" / "sarif-2.1.0-schema.json").read_text("utf-8")
)
WHEN = datetime(2025, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)
RULE = CoverageRule("ghcr.io/acme/*", Require.BOTH)


def sample_report() -> AuditReport:
    """One noncompliant multi-platform target, one compliant single manifest, one error."""
    graph, results = multi(signed=[IX, A], invalid=[B], with_attestation=True)
    results[A] = [
        result(
            A,
            SignatureStatus.VALID,
            signer="CN=acme,O=Acme",
            signing_time=datetime(2025, 2, 1, 8, 0, tzinfo=timezone(timedelta(hours=2))),
            expiry=datetime(2026, 2, 1, 6, 0, tzinfo=UTC),
            timestamped=True,
            valid_until=datetime(2026, 2, 1, 6, 0, tzinfo=UTC),
            warnings=("revocation not checked",),
        )
    ]
    referrer = OtherReferrer(dg("sbom"), "application/spdx+json")
    nodes = tuple(
        GraphNode(**{**n.__dict__, "other_referrers": (referrer,)}) if n.digest == A else n
        for n in graph.nodes
    )
    graph = ImageGraph(graph.reference, graph.root, nodes)
    m = dg("single")
    single = ImageGraph(
        "127.0.0.1:5000/team/tool:2",
        m,
        (GraphNode(m, MANIFEST_MT, 5, NodeKind.MANIFEST, signatures=(sig_descriptor(m),)),),
    )
    return AuditReport(
        WHEN,
        (
            evaluate_target("ghcr.io/acme/app:1.0", graph, results, RULE),
            evaluate_target(
                single.reference, single, {m: [result(m, SignatureStatus.VALID)]}, RULE
            ),
            error_target("ghcr.io/acme/gone:3", "registry ghcr.io answered 503 after 4 tries"),
        ),
    )


# --- Format enum ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(Format))
def test_every_format_renders(fmt: Format) -> None:
    text = render(sample_report(), fmt)
    assert text.endswith("\n")
    assert "ghcr.io/acme/app:1.0" in text


def test_format_values_are_the_cli_words() -> None:
    assert [f.value for f in Format] == ["table", "json", "sarif", "html"]


def test_render_refuses_an_unknown_format() -> None:
    with pytest.raises(AssertionError):
        render(sample_report(), "xml")  # type: ignore[arg-type]


# --- JSON -------------------------------------------------------------------------------------


def test_json_report_structure_and_key_order() -> None:
    data = json.loads(render(sample_report(), Format.JSON))
    assert list(data) == ["schema_version", "generated_at", "run", "notes", "targets", "summary"]
    assert data["run"] == {"tool": {"name": "registry-auditor", "version": __version__}}
    assert data["notes"] == []
    assert data["schema_version"] == 1
    assert data["generated_at"] == "2025-03-01T12:30:05Z"
    app, tool, gone = data["targets"]
    assert list(app) == [
        "reference",
        "digest",
        "media_type",
        "status",
        "rule",
        "policy",
        "findings",
        "error",
        "error_category",
        "nodes",
    ]
    assert (app["digest"], app["media_type"], app["status"]) == (IX, INDEX_MT, "noncompliant")
    assert app["rule"] == "policy both for ghcr.io/acme/*"
    assert app["policy"] == {
        "scope": "ghcr.io/acme/*",
        "require": "both",
        "platforms": None,
        "attestations": "ignore",
        "formats": None,
        "name": None,
    }
    assert app["error_category"] is None
    assert [(f["kind"], f["node"], f["platform"]) for f in app["findings"]] == [
        ("invalid-signature", B, "linux/arm64/v8"),
        ("unsigned-platform", P, "linux/ppc64le"),
    ]
    assert list(app["findings"][0]) == ["kind", "node", "platform", "rule", "message", "waiver"]
    index, amd64, arm64, ppc, att = app["nodes"]
    assert list(amd64) == [
        "digest",
        "media_type",
        "kind",
        "platform",
        "parent",
        "attestation_for",
        "status",
        "reason",
        "required",
        "covered_by",
        "signatures",
        "other_referrers",
    ]
    assert (index["platform"], index["parent"], index["covered_by"]) == (None, None, None)
    assert (amd64["platform"], amd64["parent"], amd64["covered_by"]) == ("linux/amd64", IX, IX)
    assert (amd64["status"], amd64["required"]) == ("signed", True)
    assert amd64["signatures"] == [
        {
            "digest": dg(f"sig-0-{A}"),
            "format": "notation/jws",
            "status": "valid",
            "reason": "signature verified",
            "failed_validation": None,
            "warnings": ["revocation not checked"],
            "signer": "CN=acme,O=Acme",
            "signing_time": "2025-02-01T06:00:00Z",
            "expiry": "2026-02-01T06:00:00Z",
            "timestamped": True,
            "valid_until": "2026-02-01T06:00:00Z",
        }
    ]
    assert amd64["other_referrers"] == [
        {"digest": dg("sbom"), "artifact_type": "application/spdx+json"}
    ]
    assert arm64["platform"] == "linux/arm64/v8"
    assert arm64["signatures"][0]["failed_validation"] == "authenticity"
    assert (ppc["status"], ppc["signatures"]) == ("unsigned", [])
    assert (att["kind"], att["attestation_for"], att["required"]) == ("attestation", A, False)
    assert (att["platform"], att["status"]) == ("unknown/unknown", "unsigned")
    assert (tool["status"], tool["findings"]) == ("compliant", [])
    assert tool["nodes"][0]["kind"] == "manifest"
    assert gone == {
        "reference": "ghcr.io/acme/gone:3",
        "digest": None,
        "media_type": None,
        "status": "error",
        "rule": None,
        "policy": None,
        "findings": [
            {
                "kind": "unchecked",
                "node": None,
                "platform": None,
                "rule": "",
                "message": "ghcr.io/acme/gone:3 could not be checked: "
                "registry ghcr.io answered 503 after 4 tries",
                "waiver": None,
            }
        ],
        "error": "registry ghcr.io answered 503 after 4 tries",
        "error_category": "other",
        "nodes": [],
    }
    assert data["summary"] == {
        "nodes": {
            "signed": 3,
            "unsigned": 2,
            "invalid": 1,
            "error": 0,
            "skipped": 0,
            "unverified": 0,
        },
        "targets": {"compliant": 1, "noncompliant": 1, "error": 1},
        "findings": {"open": 3, "waived": 0},
    }


def test_json_to_dict_matches_render() -> None:
    report = sample_report()
    assert json.loads(json_format.render(report)) == json_format.to_dict(report)


def test_rfc3339_and_short_digest() -> None:
    assert rfc3339(datetime(2025, 1, 2, 3, 4, 5, 999)) == "2025-01-02T03:04:05Z"
    eastern = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))
    assert rfc3339(eastern) == "2025-01-02T08:04:05Z"
    assert short_digest("sha256:" + "ab" * 32) == "sha256:abababababab"
    assert short_digest(None) == "-"


# --- table ------------------------------------------------------------------------------------


def test_table_shows_verdicts_then_indented_nodes_then_findings() -> None:
    lines = render(sample_report(), Format.TABLE).splitlines()
    header = lines[0].split()
    assert header == ["PLATFORM", "KIND", "DIGEST", "STATUS", "SIGS", "REQUIRED", "REASON"]
    assert sum(line.split()[:1] == ["PLATFORM"] for line in lines) == 1  # one header per run
    assert lines[1] == (
        f"noncompliant ghcr.io/acme/app:1.0 {short_digest(IX)} (policy both for ghcr.io/acme/*)"
    )
    assert lines[2] == "  signed by: CN=acme,O=Acme"  # once per target, not on every row
    index_row, amd64_row = lines[3], lines[4]
    assert index_row.split()[:2] == ["-", "index"]
    assert index_row.startswith("    -  ")
    assert amd64_row.startswith("      linux/amd64")  # one level deeper than its index
    cells = amd64_row.split()
    assert cells[:7] == [
        "linux/amd64",
        "platform",
        short_digest(A),
        "signed",
        "1",
        "yes",
        "1",
    ]
    assert "signer" not in amd64_row
    assert f"(covered by signed index {short_digest(IX)})" in amd64_row
    # a failing required platform is not "covered": that would read as "this is fine"
    ppc_row = next(line for line in lines if short_digest(P) in line and "platform " in line)
    assert "unsigned" in ppc_row
    assert "covered by" not in ppc_row
    # attestations have no real platform: shown as '-', not required
    att_row = next(line for line in lines if short_digest(T) in line)
    assert att_row.split()[:6] == ["-", "attestation", short_digest(T), "unsigned", "0", "no"]
    assert "  findings:" in lines
    finding_lines = [line for line in lines if line.startswith("    invalid-signature: ")]
    assert len(finding_lines) == 1
    assert short_digest(B) in finding_lines[0]
    assert B not in finding_lines[0]  # short digests in the table; JSON has them whole
    assert lines.count("    error: registry ghcr.io answered 503 after 4 tries") == 0
    assert "error ghcr.io/acme/gone:3 [other]" in lines
    assert "repositories:" not in lines  # one target per repository: no rollup
    assert lines[-1] == (
        "3 targets: 1 compliant, 1 noncompliant, 1 error; 6 nodes: 3 signed, 2 unsigned, 1 invalid"
    )
    # columns line up across targets
    kinds = {"index", "platform", "attestation", "manifest"}
    rows = [line for line in lines if line.startswith("    ") and line.split()[1] in kinds]
    assert len(rows) == 6
    assert {row.index("sha256:") for row in rows} == {lines[0].index("DIGEST")}
    assert "\x1b[" not in "\n".join(lines)


def test_table_fits_the_terminal_width() -> None:
    text = render(sample_report(), Format.TABLE, width=80, color=True)
    plain = render(sample_report(), Format.TABLE, width=80)
    assert max(len(line) for line in plain.splitlines()) <= 80
    assert "\u2026" in plain
    assert "\x1b[31mnoncompliant\x1b[0m" in text  # colour survives the cut
    wide = render(sample_report(), Format.TABLE)
    assert max(len(line) for line in wide.splitlines()) > 80


def test_table_groups_by_repository_in_version_order_with_a_rollup() -> None:
    base = sample_report().targets[1]
    tags = ["1.10", "1.9", "latest", "1.2"]
    targets = tuple(replace(base, reference=f"127.0.0.1:5000/team/tool:{t}") for t in tags)
    other = replace(base, reference="127.0.0.1:5000/team/other:1", status=TargetStatus.ERROR)
    report = AuditReport(WHEN, (*targets[:2], other, *targets[2:]))
    lines = render(report, Format.TABLE).splitlines()
    heads = [line.split()[1] for line in lines if line.startswith(("compliant ", "error "))]
    assert heads == [
        "127.0.0.1:5000/team/tool:1.2",
        "127.0.0.1:5000/team/tool:1.9",
        "127.0.0.1:5000/team/tool:1.10",
        "127.0.0.1:5000/team/tool:latest",
        "127.0.0.1:5000/team/other:1",
    ]
    rollup = lines[lines.index("repositories:") + 1 : -1]
    assert rollup == [
        "  127.0.0.1:5000/team/tool: 4 targets: 4 compliant",
        "  127.0.0.1:5000/team/other: 1 target: 1 error",
    ]


def test_table_quiet_prints_findings_only() -> None:
    text = render(sample_report(), Format.TABLE, quiet=True)
    assert text.splitlines() == [
        f"ghcr.io/acme/app:1.0: invalid-signature: linux/arm64/v8 manifest {B} has no valid "
        f"signature: 1 signature, none valid: authenticity: certificate chain does not contain "
        f"any trusted certificate; policy both for ghcr.io/acme/*",
        f"ghcr.io/acme/app:1.0: unsigned-platform: linux/ppc64le manifest {P} has no signature; "
        f"policy both for ghcr.io/acme/*",
        "ghcr.io/acme/gone:3: unchecked: ghcr.io/acme/gone:3 could not be checked: "
        "registry ghcr.io answered 503 after 4 tries",
    ]
    compliant = AuditReport(WHEN, (sample_report().targets[1],))
    assert render(compliant, Format.TABLE, quiet=True) == ""


def test_table_colour_only_when_asked() -> None:
    text = render(sample_report(), Format.TABLE, color=True)
    assert "\x1b[31mnoncompliant\x1b[0m ghcr.io/acme/app:1.0" in text
    assert "\x1b[32msigned" in text


def test_table_escapes_control_characters_from_remote_content() -> None:
    d = dg("evil")
    node = GraphNode(d, MANIFEST_MT, 1, NodeKind.MANIFEST, error="bad\x1b[2J\nname")
    target = evaluate_target("r/x:1", ImageGraph("r/x:1", d, (node,)), {}, RULE)
    text = table.render(AuditReport(WHEN, (target,)))
    assert "\x1b" not in text
    assert "bad\\x1b[2J\\x0aname" in text


# --- SARIF ------------------------------------------------------------------------------------


def sarif_of(report: AuditReport) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(render(report, Format.SARIF))
    return data


def test_sarif_validates_against_the_2_1_0_schema() -> None:
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    jsonschema.Draft4Validator(SCHEMA).validate(sarif_of(sample_report()))


def test_sarif_schema_check_can_fail() -> None:
    """The validation above is meaningful: a malformed log is rejected."""
    data = sarif_of(sample_report())
    data["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate(data)


def test_sarif_one_result_per_finding_with_rules_per_kind() -> None:
    report = sample_report()
    run = sarif_of(report)["runs"]
    assert len(run) == 1
    driver = run[0]["tool"]["driver"]
    assert driver["name"] == "registry-auditor"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert rule_ids == [k.value for k in FindingKind if k is not FindingKind.UNCHECKED]
    results = run[0]["results"]
    # the unreachable target is a notification, not an alert (see the next test)
    findings = [(t, f) for t in report.targets[:2] for f in t.findings]
    assert [r["ruleId"] for r in results] == [f.kind for _, f in findings]
    assert [r["message"]["text"] for r in results] == [
        f"{t.reference}: {f.message}" for t, f in findings
    ]
    for r in results:
        assert rule_ids[r["ruleIndex"]] == r["ruleId"]
    assert [r["level"] for r in results] == ["error", "error"]
    (location,) = results[0]["locations"]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "images/ghcr.io/acme/app"},
        "region": {"startLine": 1},
    }
    assert location["logicalLocations"][0] == {
        "name": "linux/arm64/v8",
        "fullyQualifiedName": f"ghcr.io/acme/app:1.0@{B}",
        "kind": "module",
    }


def test_sarif_unreachable_target_is_a_tool_notification() -> None:
    """A registry outage must not open (and later close) alerts: it is a notification."""
    data = sarif_of(sample_report())
    (invocation,) = data["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is True
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error"
    assert note["message"]["text"] == (
        "ghcr.io/acme/gone:3 could not be checked: registry ghcr.io answered 503 after 4 tries"
    )
    assert note["descriptor"] == {"id": "unchecked"}
    assert all(r["ruleId"] != "unchecked" for r in data["runs"][0]["results"])


def test_sarif_execution_unsuccessful_when_nothing_was_checked() -> None:
    bare = TargetResult("ghcr.io/acme/x:1", None, None, TargetStatus.ERROR, error="timed out")
    data = sarif_of(AuditReport(WHEN, (bare,)))
    jsonschema.Draft4Validator(SCHEMA).validate(data)
    run = data["runs"][0]
    assert run["results"] == []
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert [n["message"]["text"] for n in invocation["toolExecutionNotifications"]] == [
        "ghcr.io/acme/x:1 could not be checked: timed out"
    ]


def test_every_finding_kind_has_sarif_help() -> None:
    assert set(sarif.RULES) | {FindingKind.UNCHECKED} == set(FindingKind)
    for text in sarif.RULES.values():
        assert text.full != text.short
        assert "**Fix:**" in text.help


@pytest.mark.parametrize(
    ("reference", "workspace", "uri"),
    [
        ("127.0.0.1:5000/team/app:1", None, "images/127.0.0.1:5000/team/app"),
        ("[::1]:5000/team/app@sha256:" + "a" * 64, None, "images/%5B::1%5D:5000/team/app"),
        ("alpine", None, "images/docker.io/library/alpine"),
        ("oci-layout:/tmp/my layout:v1", None, "layouts/my%20layout"),
        ("oci-layout:/work/repo/build/img:v1", "/work/repo", "build/img"),
        ("oci-layout:/elsewhere/img:v1", "/work/repo", "layouts/img"),
        ("oci-layout:./build/img:v1", "/work/repo", "build/img"),
        ("oci-layout:../outside/img", "/work/repo", "layouts/img"),
        ("not a reference!", None, "images/unparsed/not%20a%20reference%21"),
    ],
)
def test_artifact_uri_is_relative(reference: str, workspace: str | None, uri: str) -> None:
    got = sarif.artifact_uri(reference, workspace)
    assert got == uri
    assert not urlsplit(got).scheme
    assert not got.startswith("/")
    assert " " not in got


def test_fingerprint_survives_a_rebuild_but_not_a_new_tag() -> None:
    """Same gap in a rebuilt image (new digests) = same alert; another tag = another alert."""
    first = sample_report().targets[0]
    finding = first.findings[0]
    uri = sarif.artifact_uri(first.reference)
    rebuilt = replace(first, digest=dg("rebuilt"))
    moved = replace(finding, node=dg("rebuilt-arm64"))
    assert sarif.primary_location_hash(first, finding, uri) == sarif.primary_location_hash(
        rebuilt, moved, uri
    )
    other_tag = replace(first, reference="ghcr.io/acme/app:2.0")
    assert sarif.primary_location_hash(first, finding, uri) != sarif.primary_location_hash(
        other_tag, finding, uri
    )


def test_sarif_category_names_the_analysis() -> None:
    data = json.loads(sarif.render(sample_report(), category="prod-registry/"))
    assert data["runs"][0]["automationDetails"]["id"] == "prod-registry/2025-03-01T12:30:05Z"
    default = sarif_of(sample_report())["runs"][0]["automationDetails"]["id"]
    assert default == "registry-auditor/2025-03-01T12:30:05Z"


def test_sarif_results_capped_at_githubs_limit_with_a_notification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sarif, "MAX_RESULTS", 0)
    run = sarif_of(sample_report())["runs"][0]
    assert run["results"] == []
    texts = [n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]]
    assert any(t.startswith("2 more findings left out") for t in texts)


def test_sarif_unknown_finding_kind_gets_its_own_rule() -> None:
    target = sample_report().targets[0]
    odd = replace(target, findings=(Finding("cosign-only", "only cosign signatures", "p"),))
    data = sarif_of(AuditReport(WHEN, (odd,)))
    jsonschema.Draft4Validator(SCHEMA).validate(data)
    rules = data["runs"][0]["tool"]["driver"]["rules"]
    result_ = data["runs"][0]["results"][0]
    assert rules[result_["ruleIndex"]]["id"] == "cosign-only"
