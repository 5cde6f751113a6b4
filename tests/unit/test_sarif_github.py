"""Our SARIF meets every GitHub code scanning requirement that applies (tests/support/
github_sarif.py lists them), and each requirement check rejects a log that breaks it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jsonschema
import pytest

from auditor.formats import sarif
from auditor.model import AuditReport
from tests.support import github_sarif
from tests.unit.test_formats import SCHEMA, WHEN, sample_report


def report_with_layout() -> AuditReport:
    report = sample_report()
    layout = replace(report.targets[0], reference="oci-layout:/runner/work/repo/build/img:1.0")
    return AuditReport(WHEN, (*report.targets, layout))


def sarif_doc() -> dict[str, Any]:
    text = sarif.render(report_with_layout(), workspace="/runner/work/repo", category="prod")
    data: dict[str, Any] = json.loads(text)
    return data


def test_our_sarif_meets_every_github_requirement() -> None:
    doc = sarif_doc()
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    assert github_sarif.github_problems(doc) == []
    assert github_sarif.no_absolute_paths(json.dumps(doc), "/runner/work") == []
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for r in doc["runs"][0]["results"]
        for loc in r["locations"]
    }
    assert uris == {"images/ghcr.io/acme/app", "build/img"}


def _first_result(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = doc["runs"][0]["results"][0]
    return result


def _first_rule(doc: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = doc["runs"][0]["tool"]["driver"]["rules"][0]
    return rule


def _uri(doc: dict[str, Any], uri: str) -> None:
    _first_result(doc)["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = uri


def _duplicate_result(doc: dict[str, Any]) -> None:
    results = doc["runs"][0]["results"]
    results.append(copy.deepcopy(results[0]))


def _notification_without_text(doc: dict[str, Any]) -> None:
    doc["runs"][0]["invocations"][0]["toolExecutionNotifications"][0]["message"] = {}


BREAKAGES: dict[str, list[Callable[[dict[str, Any]], None]]] = {
    "version_2_1_0": [lambda d: d.update(version="2.0.0"), lambda d: d.pop("$schema")],
    "runs_present_and_limited": [
        lambda d: d.update(runs=[]),
        lambda d: d.update(runs=d["runs"] * 21),
    ],
    "driver_named": [lambda d: d["runs"][0]["tool"]["driver"].pop("name")],
    "rules_described": [
        lambda d: _first_rule(d).pop("fullDescription"),
        lambda d: _first_rule(d)["help"].pop("markdown"),
        lambda d: _first_rule(d)["defaultConfiguration"].update(level="fatal"),
    ],
    "rule_properties": [
        lambda d: _first_rule(d)["properties"].update({"security-severity": "11"}),
        lambda d: _first_rule(d)["properties"].update(tags=["supply-chain"]),
        lambda d: _first_rule(d)["properties"].update(precision="certain"),
        lambda d: _first_rule(d)["properties"].update(tags=[str(i) for i in range(21)]),
    ],
    "results_identify_their_rule": [
        lambda d: _first_result(d).update(ruleIndex=99),
        lambda d: _first_result(d).update(ruleIndex=1),
        lambda d: _first_result(d).update(message={}),
    ],
    "relative_uris_with_regions": [
        lambda d: _uri(d, "docker://ghcr.io/acme/app@sha256:" + "a" * 64),
        lambda d: _uri(d, "oci-layout:/runner/work/img"),
        lambda d: _uri(d, "/runner/work/repo/build/img"),
        lambda d: _uri(d, "C:\\runner\\img"),
        lambda d: _uri(d, "../img"),
        lambda d: _first_result(d)["locations"][0]["physicalLocation"].pop("region"),
        lambda d: _first_result(d).update(locations=[]),
    ],
    "primary_fingerprints": [
        lambda d: _first_result(d).update(partialFingerprints={"other/v1": "x"}),
        _duplicate_result,
    ],
    "automation_details": [
        lambda d: d["runs"][0].pop("automationDetails"),
        lambda d: d["runs"][0].update(automationDetails={"id": "no-slash"}),
    ],
    "suppressions_valid": [
        lambda d: _first_result(d).update(suppressions=[{"kind": "waived"}]),
        lambda d: _first_result(d).update(suppressions=[{"kind": "external", "state": "ok"}]),
    ],
    "tool_notifications": [
        lambda d: d["runs"][0]["invocations"][0].pop("executionSuccessful"),
        _notification_without_text,
    ],
}


def test_every_requirement_has_a_breakage() -> None:
    assert set(BREAKAGES) | {"upload_size"} == set(github_sarif.CHECKS)


@pytest.mark.parametrize(
    ("name", "index"),
    [(name, i) for name, breaks in BREAKAGES.items() for i in range(len(breaks))],
)
def test_each_requirement_check_can_fail(name: str, index: int) -> None:
    doc = sarif_doc()
    assert github_sarif.CHECKS[name](doc) == []
    BREAKAGES[name][index](doc)
    assert github_sarif.CHECKS[name](doc), f"{name} accepted a broken log"


def test_upload_size_check_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = sarif_doc()
    assert github_sarif.upload_size(doc) == []
    monkeypatch.setattr(github_sarif, "MAX_GZIP_BYTES", 10)
    assert github_sarif.upload_size(doc)
