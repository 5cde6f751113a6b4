"""GitHub code scanning's SARIF requirements, each as a check that returns its problems.

Taken from GitHub's "SARIF support for code scanning" reference page (properties GitHub reads,
which are required, and the upload limits); the JSON schema is checked separately. Each check
is named so a failure says which requirement broke; ``tests/unit/test_sarif_github.py`` shows
every one of them can fail.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

Sarif = dict[str, Any]
Check = Callable[[Sarif], list[str]]

LEVELS = {"none", "note", "warning", "error"}
PRECISIONS = {"very-high", "high", "medium", "low"}
PROBLEM_SEVERITIES = {"error", "warning", "recommendation"}
SUPPRESSION_KINDS = {"inSource", "external"}
SUPPRESSION_STATES = {"accepted", "underReview", "rejected"}
MAX_RUNS = 20
MAX_RESULTS = 25_000
MAX_RULES = 25_000
MAX_LOCATIONS = 10  # "the set of locations where the result was detected up to a maximum of 10"
MAX_TAGS = 20
MAX_GZIP_BYTES = 10 * 1024 * 1024
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def _runs(doc: Sarif) -> list[dict[str, Any]]:
    runs = doc.get("runs")
    return runs if isinstance(runs, list) else []


def _results(doc: Sarif) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
    for r, run in enumerate(_runs(doc)):
        for result in run.get("results") or []:
            yield r, run, result


def _rules(doc: Sarif) -> Iterator[dict[str, Any]]:
    for run in _runs(doc):
        yield from (run.get("tool", {}).get("driver", {}).get("rules") or [])


def version_2_1_0(doc: Sarif) -> list[str]:
    problems = [] if doc.get("version") == "2.1.0" else [f"version is {doc.get('version')!r}"]
    if not isinstance(doc.get("$schema"), str):
        problems.append("$schema missing")
    return problems


def runs_present_and_limited(doc: Sarif) -> list[str]:
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        return ["runs must be a non-empty array"]
    return [f"{len(runs)} runs; GitHub takes at most {MAX_RUNS}"] if len(runs) > MAX_RUNS else []


def driver_named(doc: Sarif) -> list[str]:
    problems = []
    for i, run in enumerate(_runs(doc)):
        driver = run.get("tool", {}).get("driver", {})
        if not isinstance(driver.get("name"), str) or not driver.get("name"):
            problems.append(f"runs[{i}].tool.driver.name missing")
        for key in ("version", "semanticVersion"):
            if key in driver and not isinstance(driver[key], str):
                problems.append(f"runs[{i}].tool.driver.{key} is not a string")
    return problems


def rules_described(doc: Sarif) -> list[str]:
    """id, name, short and full description, help (text and markdown), default level."""
    problems = []
    for run in _runs(doc):
        rules = run.get("tool", {}).get("driver", {}).get("rules") or []
        if len(rules) > MAX_RULES:
            problems.append(f"{len(rules)} rules; GitHub takes at most {MAX_RULES}")
    for rule in _rules(doc):
        rid = rule.get("id")
        if not isinstance(rid, str) or not rid:
            problems.append("rule without id")
            continue
        for path in ("shortDescription", "fullDescription"):
            if not (rule.get(path) or {}).get("text"):
                problems.append(f"rule {rid}: {path}.text missing")
        if not rule.get("name"):
            problems.append(f"rule {rid}: name missing")
        help_ = rule.get("help") or {}
        if not help_.get("text") or not help_.get("markdown"):
            problems.append(f"rule {rid}: help.text and help.markdown are both needed")
        level = (rule.get("defaultConfiguration") or {}).get("level")
        if level not in LEVELS - {"none"}:
            problems.append(f"rule {rid}: defaultConfiguration.level {level!r}")
    return problems


def rule_properties(doc: Sarif) -> list[str]:
    """tags (strings, at most 20), precision, problem.severity, security-severity 0.0-10.0
    (only with the ``security`` tag, as GitHub shows severities for security results only)."""
    problems = []
    for rule in _rules(doc):
        rid, props = rule.get("id"), rule.get("properties") or {}
        tags = props.get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            problems.append(f"rule {rid}: properties.tags must be a list of strings")
            tags = []
        if len(tags) > MAX_TAGS:
            problems.append(f"rule {rid}: {len(tags)} tags; at most {MAX_TAGS}")
        if props.get("precision") not in PRECISIONS:
            problems.append(f"rule {rid}: precision {props.get('precision')!r}")
        if props.get("problem.severity") not in PROBLEM_SEVERITIES:
            problems.append(f"rule {rid}: problem.severity {props.get('problem.severity')!r}")
        severity = props.get("security-severity")
        try:
            score = float(severity) if isinstance(severity, str) else -1.0
        except ValueError:
            score = -1.0
        if not 0.0 <= score <= 10.0:
            problems.append(f"rule {rid}: security-severity {severity!r} is not 0.0-10.0")
        if "security" not in tags:
            problems.append(f"rule {rid}: security-severity needs the 'security' tag")
    return problems


def results_identify_their_rule(doc: Sarif) -> list[str]:
    problems = []
    for r, run in enumerate(_runs(doc)):
        count = len(run.get("results") or [])
        if count > MAX_RESULTS:
            problems.append(f"runs[{r}]: {count} results; GitHub takes at most {MAX_RESULTS}")
    for r, run, result in _results(doc):
        rules = run.get("tool", {}).get("driver", {}).get("rules") or []
        rid, index = result.get("ruleId"), result.get("ruleIndex")
        if not isinstance(rid, str):
            problems.append(f"runs[{r}]: result without ruleId")
        elif not isinstance(index, int) or not 0 <= index < len(rules):
            problems.append(f"result {rid}: ruleIndex {index!r} out of range")
        elif rules[index].get("id") != rid:
            problems.append(f"result {rid}: ruleIndex {index} names {rules[index].get('id')}")
        if result.get("level", "warning") not in LEVELS:
            problems.append(f"result {rid}: level {result.get('level')!r}")
        if not (result.get("message") or {}).get("text"):
            problems.append(f"result {rid}: message.text missing")
    return problems


def relative_uris_with_regions(doc: Sarif) -> list[str]:
    """1-10 locations; each a relative uri (no scheme, no absolute path) and a region with a
    positive startLine (and consistent end line/columns when given)."""
    problems = []
    for _, _, result in _results(doc):
        rid = result.get("ruleId")
        locations = result.get("locations")
        if not isinstance(locations, list) or not 1 <= len(locations) <= MAX_LOCATIONS:
            problems.append(f"result {rid}: needs 1 to {MAX_LOCATIONS} locations")
            continue
        for location in locations:
            physical = location.get("physicalLocation") or {}
            uri = (physical.get("artifactLocation") or {}).get("uri")
            if not isinstance(uri, str) or not uri:
                problems.append(f"result {rid}: artifactLocation.uri missing")
            elif _SCHEME.match(uri) or uri.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(uri):
                problems.append(f"result {rid}: uri {uri!r} is not relative")
            elif " " in uri or ".." in uri.split("/"):
                problems.append(f"result {rid}: uri {uri!r} is not a clean relative path")
            region = physical.get("region") or {}
            start = region.get("startLine")
            if not isinstance(start, int) or start < 1:
                problems.append(f"result {rid}: region.startLine {start!r}")
                continue
            end = region.get("endLine", start)
            if not isinstance(end, int) or end < start:
                problems.append(f"result {rid}: region.endLine {end!r} before startLine")
            for key in ("startColumn", "endColumn"):
                if key in region and (not isinstance(region[key], int) or region[key] < 1):
                    problems.append(f"result {rid}: region.{key} {region[key]!r}")
    return problems


def primary_fingerprints(doc: Sarif) -> list[str]:
    """Every result has partialFingerprints.primaryLocationLineHash, and no two results of a
    run share rule, file and fingerprint (they would collapse into one alert)."""
    problems = []
    seen: set[tuple[int, str, str, str]] = set()
    for r, _, result in _results(doc):
        rid = str(result.get("ruleId"))
        value = (result.get("partialFingerprints") or {}).get("primaryLocationLineHash")
        if not isinstance(value, str) or not value:
            problems.append(f"result {rid}: partialFingerprints.primaryLocationLineHash missing")
            continue
        locations = result.get("locations") or [{}]
        uri = str(
            (locations[0].get("physicalLocation") or {}).get("artifactLocation", {}).get("uri")
        )
        key = (r, rid, uri, value)
        if key in seen:
            problems.append(f"result {rid}: fingerprint {value} repeats in {uri}")
        seen.add(key)
    return problems


def automation_details(doc: Sarif) -> list[str]:
    """``automationDetails.id`` = ``category/run-id``; runs of one file differ in category."""
    problems, categories = [], []
    for i, run in enumerate(_runs(doc)):
        rid = (run.get("automationDetails") or {}).get("id")
        if not isinstance(rid, str) or "/" not in rid or rid.startswith("/"):
            problems.append(f"runs[{i}].automationDetails.id {rid!r} is not category/run-id")
            continue
        categories.append(rid.rsplit("/", 1)[0])
    if len(set(categories)) != len(categories):
        problems.append("two runs share a category")
    return problems


def suppressions_valid(doc: Sarif) -> list[str]:
    problems = []
    for _, _, result in _results(doc):
        for suppression in result.get("suppressions") or []:
            if suppression.get("kind") not in SUPPRESSION_KINDS:
                problems.append(f"suppression kind {suppression.get('kind')!r}")
            if suppression.get("state", "accepted") not in SUPPRESSION_STATES:
                problems.append(f"suppression state {suppression.get('state')!r}")
            if not isinstance(suppression.get("justification", ""), str):
                problems.append("suppression justification is not a string")
    return problems


def tool_notifications(doc: Sarif) -> list[str]:
    """Invocations say whether execution succeeded; notifications have a level and a text."""
    problems = []
    for i, run in enumerate(_runs(doc)):
        for invocation in run.get("invocations") or []:
            if not isinstance(invocation.get("executionSuccessful"), bool):
                problems.append(f"runs[{i}]: invocation without executionSuccessful")
            for note in invocation.get("toolExecutionNotifications") or []:
                if note.get("level", "warning") not in LEVELS:
                    problems.append(f"runs[{i}]: notification level {note.get('level')!r}")
                if not (note.get("message") or {}).get("text"):
                    problems.append(f"runs[{i}]: notification without message.text")
    return problems


def upload_size(doc: Sarif) -> list[str]:
    size = len(gzip.compress(json.dumps(doc).encode()))
    return [f"{size} bytes gzipped; at most {MAX_GZIP_BYTES}"] if size > MAX_GZIP_BYTES else []


CHECKS: dict[str, Check] = {
    check.__name__: check
    for check in (
        version_2_1_0,
        runs_present_and_limited,
        driver_named,
        rules_described,
        rule_properties,
        results_identify_their_rule,
        relative_uris_with_regions,
        primary_fingerprints,
        automation_details,
        suppressions_valid,
        tool_notifications,
        upload_size,
    )
}


def github_problems(doc: Sarif) -> list[str]:
    """Every requirement's problems, each prefixed with the requirement's name."""
    return [f"{name}: {p}" for name, check in CHECKS.items() for p in check(doc)]


def no_absolute_paths(text: str, *paths: str) -> list[str]:
    """Runner paths (the workspace, temp dirs) must not appear anywhere in the file."""
    return [f"{p!r} appears in the SARIF" for p in paths if p and p in text]
