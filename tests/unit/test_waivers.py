"""Waivers: matching, expiry, the recomputed target status, config validation, and how every
report shows a waived finding (table, JSON, SARIF with an accepted suppression)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from auditor.config import WaiverConfig, parse_config
from auditor.coverage import FindingKind, exit_code, summarize
from auditor.errors import ConfigError
from auditor.formats import Format, render
from auditor.model import AuditReport, Finding, Platform, TargetResult, TargetStatus
from auditor.waivers import Waiver, apply_waivers
from tests.support import github_sarif

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2027, 1, 1, tzinfo=UTC)
REF = "registry.example/team/app:1.4"
INDEX, PPC, ARM = "sha256:" + "1" * 64, "sha256:" + "2" * 64, "sha256:" + "3" * 64


def target(*findings: Finding, status: TargetStatus = TargetStatus.NONCOMPLIANT) -> TargetResult:
    return TargetResult(REF, INDEX, None, status, findings=findings, rule="policy both for *")


PPC_UNSIGNED = Finding("unsigned-platform", "ppc64le unsigned", "r", PPC, "linux/ppc64le")
ARM_INVALID = Finding("invalid-signature", "arm64 invalid", "r", ARM, "linux/arm64/v8")
INDEX_UNSIGNED = Finding("unsigned-index", "index unsigned", "r", INDEX)
UNCHECKED = Finding("unchecked", "signature manifest 503", "r", ARM, "linux/arm64/v8")


def waiver(**kw: Any) -> Waiver:
    fields: dict[str, Any] = {
        "image": "registry.example/team/app:*",
        "reason": "ppc64le is signed by another team from January",
        "owner": "platform-security@example.com",
        "expires": LATER,
        **kw,
    }
    return Waiver(**fields)


def test_waived_finding_makes_the_target_compliant_and_is_kept() -> None:
    result = apply_waivers(target(PPC_UNSIGNED), [waiver()], NOW)
    assert result.status is TargetStatus.COMPLIANT
    (finding,) = result.findings
    assert finding.waiver is not None
    assert finding.waiver.owner == "platform-security@example.com"
    assert exit_code([result]) == 0
    assert dict(summarize([result]).findings) == {"open": 0, "waived": 1}


def test_an_unwaived_finding_keeps_the_target_noncompliant() -> None:
    only_ppc = waiver(platforms=(Platform.parse("linux/ppc64le"),))
    result = apply_waivers(target(PPC_UNSIGNED, ARM_INVALID), [only_ppc], NOW)
    assert result.status is TargetStatus.NONCOMPLIANT
    assert [f.waiver is not None for f in result.findings] == [True, False]
    assert dict(summarize([result]).findings) == {"open": 1, "waived": 1}


def test_unchecked_is_never_waived_and_leaves_an_error() -> None:
    result = apply_waivers(target(PPC_UNSIGNED, UNCHECKED), [waiver()], NOW)
    assert result.status is TargetStatus.ERROR
    assert [f.waiver is not None for f in result.findings] == [True, False]
    assert exit_code([result]) == 3


def test_expired_waiver_turns_back_into_the_finding() -> None:
    lapsed = waiver(expires=datetime(2026, 1, 1, tzinfo=UTC))
    result = apply_waivers(target(PPC_UNSIGNED), [lapsed], NOW)
    assert result.status is TargetStatus.NONCOMPLIANT
    (finding,) = result.findings
    assert finding.waiver is None
    assert "waiver by platform-security@example.com expired 2026-01-01" in finding.message


def test_the_first_current_waiver_wins_over_an_expired_one() -> None:
    lapsed = waiver(expires=datetime(2026, 1, 1, tzinfo=UTC), owner="old@example.com")
    result = apply_waivers(target(PPC_UNSIGNED), [lapsed, waiver()], NOW)
    assert result.findings[0].waiver is not None
    assert result.findings[0].waiver.owner == "platform-security@example.com"


@pytest.mark.parametrize(
    ("kw", "matches"),
    [
        ({}, True),
        ({"image": "registry.example/team/*"}, True),
        ({"image": "registry.example/team/app:1.5"}, False),
        ({"image": "registry.example/other/*"}, False),
        ({"image": INDEX}, True),  # the target's digest
        ({"image": PPC}, True),  # the finding's node
        ({"image": ARM}, False),
        ({"platforms": (Platform.parse("linux/ppc64le"),)}, True),
        ({"platforms": (Platform.parse("linux/amd64"),)}, False),
        ({"findings": frozenset({"unsigned-platform"})}, True),
        ({"findings": frozenset({"invalid-signature"})}, False),
    ],
)
def test_waiver_matching(kw: dict[str, Any], matches: bool) -> None:
    assert waiver(**kw).matches(target(PPC_UNSIGNED), PPC_UNSIGNED) is matches


def test_platform_without_variant_selects_every_variant_and_index_needs_no_platform() -> None:
    arm = waiver(platforms=(Platform.parse("linux/arm64"),))
    assert arm.matches(target(ARM_INVALID), ARM_INVALID)
    assert not arm.matches(target(INDEX_UNSIGNED), INDEX_UNSIGNED)


def test_a_pinned_reference_matches_its_tag_glob() -> None:
    pinned = replace(target(PPC_UNSIGNED), reference=f"{REF}@{INDEX}")
    assert waiver().matches(pinned, PPC_UNSIGNED)


# --- config ---------------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "image": "registry.example/team/app:*",
    "platforms": ["linux/ppc64le"],
    "findings": ["unsigned-platform"],
    "reason": "signed by another team from January",
    "owner": "platform-security@example.com",
    "expires": date(2026, 12, 31),
}


def test_config_waiver_date_lasts_to_the_end_of_its_day() -> None:
    config = parse_config({"waivers": [GOOD]}, "c.yaml")
    (w,) = [c.to_waiver() for c in config.waivers]
    assert w.expires == datetime(2027, 1, 1, tzinfo=UTC)
    assert w.platforms == (Platform.parse("linux/ppc64le"),)
    assert w.findings == frozenset({"unsigned-platform"})


def test_config_waiver_rfc3339_time() -> None:
    moment = datetime(2026, 12, 31, 18, 0, tzinfo=UTC)
    assert WaiverConfig.model_validate({**GOOD, "expires": moment}).expires_at() == moment
    naive = WaiverConfig.model_validate({**GOOD, "expires": "2026-12-31T18:00:00"}).expires_at()
    assert naive == moment


@pytest.mark.parametrize("missing", ["reason", "owner", "expires", "image"])
def test_config_rejects_a_waiver_without_a_required_key(missing: str) -> None:
    entry = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(ConfigError, match=rf"c\.yaml: waivers\[0\]\.{missing}: Field required"):
        parse_config({"waivers": [entry]}, "c.yaml")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("reason", "   ", "must not be blank"),
        ("owner", "", "at least 1 character"),
        ("findings", ["unchecked"], "not a finding kind a waiver can accept"),
        ("findings", ["unsigned"], "not a finding kind a waiver can accept"),
        ("platforms", ["linux"], "not os/architecture"),
        ("expires", "next year", "expires"),
        ("colour", "red", "Extra inputs are not permitted"),
    ],
)
def test_config_rejects_a_bad_waiver(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"waivers": [{**GOOD, key: value}]}, "c.yaml")
    assert f"c.yaml: waivers[0].{key}" in str(info.value)
    assert message in str(info.value)


# --- reports --------------------------------------------------------------------------------


def waived_report() -> AuditReport:
    result = apply_waivers(target(PPC_UNSIGNED, INDEX_UNSIGNED), [waiver(
        platforms=(Platform.parse("linux/ppc64le"),)
    )], NOW)
    return AuditReport(NOW, (result,))


def test_json_report_carries_the_waiver_and_counts_it() -> None:
    data = json.loads(render(waived_report(), Format.JSON))
    ppc, index = data["targets"][0]["findings"]
    assert ppc["waiver"] == {
        "image": "registry.example/team/app:*",
        "reason": "ppc64le is signed by another team from January",
        "owner": "platform-security@example.com",
        "expires": "2027-01-01T00:00:00Z",
    }
    assert index["waiver"] is None
    assert data["summary"]["findings"] == {"open": 1, "waived": 1}


def test_table_marks_waived_findings_and_quiet_leaves_them_out() -> None:
    text = render(waived_report(), Format.TABLE)
    assert "    waived unsigned-platform: ppc64le unsigned [ppc64le is signed" in text
    assert "    unsigned-index: index unsigned" in text
    assert text.rstrip().endswith("1 finding waived")
    quiet = render(waived_report(), Format.TABLE, quiet=True)
    assert quiet == f"{REF}: unsigned-index: index unsigned\n"


def test_sarif_waived_finding_is_an_accepted_suppression() -> None:
    doc = json.loads(render(waived_report(), Format.SARIF))
    assert github_sarif.github_problems(doc) == []
    ppc, index = doc["runs"][0]["results"]
    (suppression,) = ppc["suppressions"]
    assert suppression["kind"] == "external"
    assert suppression["state"] == "accepted"
    assert "platform-security@example.com" in suppression["justification"]
    assert "suppressions" not in index
    assert FindingKind(ppc["ruleId"]) is FindingKind.UNSIGNED_PLATFORM
    # the run counts them apart, as the JSON summary does
    assert doc["runs"][0]["properties"]["findings"] == {"open": 1, "waived": 1}


def test_config_waiver_quoted_date_is_still_a_date() -> None:
    assert WaiverConfig.model_validate({**GOOD, "expires": "2026-12-31"}).expires_at() == LATER


def test_readme_waivers_example_is_a_valid_config() -> None:
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    (block,) = [b.split("```", 1)[0] for b in readme.split("```yaml\n")[1:]
                if b.startswith("waivers:")]
    config = parse_config(yaml.safe_load(block), "README.md")
    (w,) = config.waivers
    assert w.to_waiver().findings == frozenset({"unsigned-platform"})
