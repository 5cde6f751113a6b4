"""SARIF 2.1.0 shaped for GitHub code scanning (and any other SARIF consumer).

A CI job gates on image coverage by uploading this file with
``github/codeql-action/upload-sarif``. GitHub resolves every location against the checked-out
repository, so (see GitHub's "SARIF support for code scanning" page):

* Locations are relative URIs without a scheme, never an absolute path of the runner. An image
  has no file in the repository, so each gets a stable pseudo-path, the way other image scanners
  do it: ``images/<registry>/<repository>`` for a registry image, and for an OCI layout its
  directory relative to the workspace (the checkout root) when it lies inside it, else
  ``layouts/<directory name>``. Every location has ``region.startLine`` 1.
* ``partialFingerprints.primaryLocationLineHash`` (the one fingerprint code scanning uses) is a
  hash of the finding kind, the image (repository and tag) and the node's role in it (its
  platform, or index/manifest), not of the node's digest: a rebuilt image that still has the
  same gap is the same alert, not a new one that closes the old.
* Things that could not be checked (registry outages, signatures never verified: ``unchecked``)
  are ``toolExecutionNotifications`` of the invocation, not results, so alerts do not open and
  close with the network; ``executionSuccessful`` is false when no target could be checked.
* ``automationDetails.id`` is ``<category>/<run time>``: runs with different categories are
  separate analyses, so several audits of one commit can be uploaded.
* Rules carry ``help.markdown``, ``fullDescription`` and the properties GitHub reads
  (``tags``, ``precision``, ``security-severity``); a waived finding is a result with an
  accepted external suppression (its justification: reason, owner, end), shown closed.
* Results are capped at GitHub's 25,000 per run; what is cut is said in a notification.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, TextIO
from urllib.parse import quote

from auditor import __version__
from auditor.coverage import FindingKind, Summary, Tally, summarize
from auditor.errors import InvalidReference
from auditor.formats.common import rfc3339
from auditor.formats.json import nested, rule_dict, run_dict
from auditor.model import (
    AuditReport,
    Finding,
    NoteKind,
    ReportNote,
    ReportStart,
    RunInfo,
    TargetResult,
    TargetStatus,
)
from auditor.oci.reference import ImageReference, parse_reference

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "registry-auditor"
DEFAULT_CATEGORY = "registry-auditor"
MAX_RESULTS = 25_000  # GitHub code scanning: results per run
TAGS = ("security", "supply-chain")


@dataclass(frozen=True)
class RuleText:
    """What a code-scanning UI shows for one finding kind."""

    name: str
    short: str
    full: str
    help: str  # markdown: what it means and how to fix it
    level: str  # SARIF level: error for what is wrong, warning for what could not be checked
    severity: str  # GitHub's security-severity, 0.0 - 10.0 (7.0+ is "high")


_SIGN = (
    "Sign the digest named in the alert, for example "
    "`notation sign <registry>/<repository>@<digest>`, with a key whose certificate is in a "
    "trust store the trust policy names for this repository."
)

RULES: Mapping[FindingKind, RuleText] = {
    FindingKind.UNSIGNED_INDEX: RuleText(
        "UnsignedIndex",
        "An image index required by the coverage policy has no signature.",
        "The coverage rule for this repository requires its image indexes to be signed "
        "(require: index, both or either), and this index has no Notary Project signature.",
        f"An image index (a multi-platform image) is what `docker pull` resolves a tag to. "
        f"Nobody vouched for this one.\n\n**Fix:** {_SIGN}\n\nIf only the platform manifests "
        "are meant to be signed, set `require: platforms` in the matching `coverage:` rule.",
        "error",
        "7.0",
    ),
    FindingKind.UNSIGNED_PLATFORM: RuleText(
        "UnsignedPlatform",
        "A platform manifest required by the coverage policy has no signature.",
        "The coverage rule requires every selected platform manifest of the image to be "
        "signed (require: platforms or both, or either without a signed index), and this one "
        "has no Notary Project signature.",
        "A runtime pulling this platform gets a manifest nobody signed: a signed index does "
        "not sign the manifests below it for verifiers that check the platform digest.\n\n"
        f"**Fix:** {_SIGN}\n\nUnder `require: either`, signing the index instead is enough. "
        "To stop requiring a platform, narrow the rule's `platforms:` list.",
        "error",
        "7.0",
    ),
    FindingKind.UNSIGNED_MANIFEST: RuleText(
        "UnsignedManifest",
        "A single-manifest image has no signature.",
        "The tag points at a single image manifest (no index), which must be signed under "
        "every coverage rule, and it has no Notary Project signature.",
        f"**Fix:** {_SIGN}",
        "error",
        "7.0",
    ),
    FindingKind.UNSIGNED_ATTESTATION: RuleText(
        "UnsignedAttestation",
        "An attestation manifest required by the coverage policy has no signature.",
        "The coverage rule sets attestations: require, and this build attestation manifest "
        "(buildx provenance or SBOM) has no Notary Project signature.",
        f"**Fix:** {_SIGN}\n\nOr set `attestations: ignore` in the matching `coverage:` rule.",
        "error",
        "5.0",
    ),
    FindingKind.INVALID_SIGNATURE: RuleText(
        "InvalidSignature",
        "A required node has signatures, but none passed the trust policy.",
        "Signatures are attached to this node, but none of them verified: wrong or untrusted "
        "certificate, identity not in trustedIdentities, expired or revoked, or an envelope "
        "that does not match the node (possible tampering).",
        "The alert message names the validation that failed, as `notation verify` does.\n\n"
        "**Fix:** re-sign with a certificate the trust store trusts, renew an expired "
        "signature, or correct the trust policy's `trustedIdentities`. An envelope signed over "
        "another digest means the signature was copied from another image: investigate.",
        "error",
        "8.0",
    ),
    FindingKind.MISSING_PLATFORM: RuleText(
        "MissingPlatform",
        "A platform the coverage policy selects is not in the image index.",
        "The coverage rule lists platforms that must be present and signed; the image index "
        "has no entry for this one.",
        "**Fix:** build and push the missing platform (and sign it), or remove it from the "
        "rule's `platforms:` list.",
        "error",
        "4.0",
    ),
}

UNCHECKED = RuleText(
    "Unchecked",
    "Something required could not be checked, so it cannot be called signed.",
    "The registry could not be reached or answered with an error, content was malformed, or no "
    "trust policy was configured so signatures were never verified.",
    "Fix the cause in the message and audit again.",
    "warning",
    "5.0",
)


def _descriptor(rule_id: str, text: RuleText) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": text.name,
        "shortDescription": {"text": text.short},
        "fullDescription": {"text": text.full},
        "help": {"text": text.help.replace("**", "").replace("`", ""), "markdown": text.help},
        "defaultConfiguration": {"level": text.level},
        "properties": {
            "tags": list(TAGS),
            "precision": "very-high",
            "problem.severity": "error" if text.level == "error" else "warning",
            "security-severity": text.severity,
        },
    }


def _unknown_rule(kind: str) -> RuleText:
    return RuleText(
        kind, f"Finding of kind {kind}.", f"Finding of kind {kind}.",
        "See the alert message.", "error", "5.0",
    )


def _relative_layout_path(path: str, workspace: str | None) -> str:
    """The layout's directory relative to the workspace, or ``layouts/<name>`` outside it."""
    posix = PurePosixPath(path.replace("\\", "/"))
    if posix.is_absolute():
        if workspace is not None:
            try:
                posix = posix.relative_to(PurePosixPath(workspace))
            except ValueError:
                return f"layouts/{posix.name or 'layout'}"
        else:
            return f"layouts/{posix.name or 'layout'}"
    normal = posixpath.normpath(str(posix))
    if normal.startswith("..") or normal in (".", ""):
        name = PurePosixPath(normal).name
        return f"layouts/{name if name not in ('', '.', '..') else 'layout'}"
    return normal


def artifact_uri(reference: str, workspace: str | None = None) -> str:
    """A relative URI (no scheme, no absolute path) standing for the image; see the module doc.

    ``workspace`` is the directory the SARIF file's paths are relative to (the checkout root in
    CI), used only to make a layout path inside it relative.
    """
    try:
        ref = parse_reference(reference)
    except InvalidReference:
        return "images/unparsed/" + quote(reference.replace("/", "_"), safe="")
    if isinstance(ref, ImageReference):
        path = f"images/{ref.registry}/{ref.repository}"
    else:
        path = _relative_layout_path(ref.path, workspace)
    return quote(path, safe="/:@")


def display_reference(reference: str, workspace: str | None = None) -> str:
    """The reference as SARIF shows it: a layout's path made relative like its location, so no
    absolute path of the runner ends up in a message."""
    try:
        ref = parse_reference(reference)
    except InvalidReference:
        return reference
    if isinstance(ref, ImageReference):
        return reference
    return str(replace(ref, path=_relative_layout_path(ref.path, workspace)))


def _scrub(text: str, workspace: str | None) -> str:
    """Paths inside the workspace made relative in free text (error messages name files)."""
    if not workspace:
        return text
    return text.replace(workspace.rstrip("/") + "/", "")


def _role(target: TargetResult, finding: Finding) -> str:
    if finding.platform:
        return f"platform {finding.platform}"
    if finding.node is None or finding.node == target.digest:
        return "root"
    return f"node {finding.node}"


def _tag_of(reference: str) -> str:
    try:
        ref = parse_reference(reference)
    except InvalidReference:
        return reference
    return ref.tag or ref.digest or ""


def primary_location_hash(target: TargetResult, finding: Finding, uri: str) -> str:
    """Stable across rebuilds of the same tag (the node digest is not part of it)."""
    key = "\x00".join((finding.kind, uri, _tag_of(target.reference), _role(target, finding)))
    return f"{hashlib.sha256(key.encode()).hexdigest()[:16]}:1"


def _location(target: TargetResult, finding: Finding | None, workspace: str | None) -> Any:
    digest = (finding.node if finding else None) or target.digest
    shown = display_reference(target.reference, workspace)
    logical = f"{shown}@{digest}" if digest else shown
    name = (finding.platform if finding else None) or logical
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": artifact_uri(target.reference, workspace)},
            "region": {"startLine": 1},
        },
        "logicalLocations": [{"name": name, "fullyQualifiedName": logical, "kind": "module"}],
    }


def _result(
    target: TargetResult,
    finding: Finding,
    index: Mapping[str, int],
    levels: Mapping[str, str],
    workspace: str | None,
) -> dict[str, Any]:
    location = _location(target, finding, workspace)
    uri = location["physicalLocation"]["artifactLocation"]["uri"]
    shown = display_reference(target.reference, workspace)
    result: dict[str, Any] = {
        "ruleId": finding.kind,
        "ruleIndex": index[finding.kind],
        "level": levels[finding.kind],
        "message": {"text": _scrub(f"{shown}: {finding.message}", workspace)},
        "locations": [location],
        "partialFingerprints": {
            "primaryLocationLineHash": primary_location_hash(target, finding, uri)
        },
        "properties": {
            key: value
            for key, value in (
                ("target", shown),
                ("targetStatus", target.status.value),
                ("digest", finding.node or target.digest),
                ("policy", finding.rule),
                ("platform", finding.platform),
            )
            if value
        },
    }
    if target.policy is not None:
        result["properties"]["rule"] = rule_dict(target.policy)
    if finding.waiver is not None:
        # GitHub closes an alert whose result carries an accepted suppression.
        result["suppressions"] = [
            {"kind": "external", "state": "accepted", "justification": str(finding.waiver)}
        ]
    return result


def _notification(
    text: str, level: str, shown: str, when: str, category: str | None = None
) -> dict[str, Any]:
    properties = {"target": shown}
    if category is not None:
        properties["category"] = category
    return {
        "descriptor": {"id": FindingKind.UNCHECKED.value},
        "level": level,
        "message": {"text": text},
        "timeUtc": when,
        "properties": properties,
    }


def _note_notification(note: ReportNote, when: str) -> dict[str, Any]:
    """A run-level warning (tags left out, a glob that matched nothing)."""
    return {
        "descriptor": {"id": note.kind.value},
        "level": "warning",
        "message": {"text": note.message},
        "timeUtc": when,
        "properties": {"subject": note.subject, "leftOut": note.left_out},
    }


NOTE_TEXTS: Mapping[NoteKind, RuleText] = {
    NoteKind.TAGS_LEFT_OUT: RuleText(
        "TagsLeftOut",
        "A repository has more tags than tags.limit: the oldest were not audited.",
        "The newest tags (version order, then name) up to the registry's tags.limit were "
        "audited; the rest were left out of this run.",
        "Raise `tags.limit` for the registry, or narrow `tags.include` to the tags that ship.",
        "warning",
        "3.0",
    ),
    NoteKind.NO_REPOSITORY_MATCHED: RuleText(
        "NoRepositoryMatched",
        "A repository glob of the config matched no repository of the registry's catalog.",
        "Nothing was audited for this glob: a typo, or the repositories moved.",
        "Correct the glob in `registries[].repositories`.",
        "warning",
        "3.0",
    ),
}


def _invocation_properties(info: RunInfo | None, workspace: str | None) -> dict[str, Any]:
    """The config file and trust files the verdicts came from, paths relative to the
    workspace where they lie inside it."""
    run = run_dict(info)
    run.pop("tool")

    def relative(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: relative(v) for k, v in value.items()}
        if isinstance(value, list):
            return [relative(v) for v in value]
        if isinstance(value, str) and workspace and value.startswith(workspace.rstrip("/") + "/"):
            return _scrub(value, workspace)
        return value

    return relative(run) if run else {}


def _target_notifications(
    target: TargetResult, when: str, workspace: str | None
) -> list[dict[str, Any]]:
    """What could not be checked in one target: notifications, never alerts."""
    notes = []
    shown = display_reference(target.reference, workspace)
    category = target.error_category.value if target.error_category else None
    unchecked = [f for f in target.findings if f.kind == FindingKind.UNCHECKED]
    for finding in unchecked:
        level = "error" if target.status is TargetStatus.ERROR and not target.nodes else (
            "warning"
        )
        text = finding.message.replace(target.reference, shown)
        if shown not in text:
            text = f"{shown}: {text}"
        notes.append(_notification(_scrub(text, workspace), level, shown, when, category))
    if target.error and not unchecked:
        text = f"{shown} could not be checked: {target.error}"
        notes.append(_notification(_scrub(text, workspace), "error", shown, when, category))
    return notes


def _cap_notification(cut: int, when: str) -> dict[str, Any]:
    return {
        "level": "warning",
        "message": {
            "text": f"{cut} more findings left out of this SARIF file: GitHub code scanning "
            f"takes at most {MAX_RESULTS} results per run; the JSON report has them all"
        },
        "timeUtc": when,
    }


def _tool(texts: Mapping[str, RuleText]) -> dict[str, Any]:
    return {
        "driver": {
            "name": TOOL_NAME,
            "version": __version__,
            "semanticVersion": __version__,
            "rules": [_descriptor(rule_id, text) for rule_id, text in texts.items()],
            "notifications": [
                _descriptor(FindingKind.UNCHECKED.value, UNCHECKED),
                *(_descriptor(k.value, t) for k, t in NOTE_TEXTS.items()),
            ],
        }
    }


def _invocation(
    successful: bool,
    ended: str,
    info: RunInfo | None,
    notifications: list[dict[str, Any]],
    workspace: str | None,
) -> dict[str, Any]:
    invocation: dict[str, Any] = {"executionSuccessful": successful, "endTimeUtc": ended}
    properties = _invocation_properties(info, workspace)
    if properties:
        invocation["properties"] = properties
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return invocation


def _automation(category: str | None, when: str) -> dict[str, Any]:
    name = (category or DEFAULT_CATEGORY).strip("/") or DEFAULT_CATEGORY
    return {"id": f"{name}/{when}"}


def _checked(target: TargetResult) -> bool:
    return target.status is not TargetStatus.ERROR or bool(target.nodes)


def _known_rules() -> dict[str, RuleText]:
    return {kind.value: text for kind, text in RULES.items()}


def to_dict(
    report: AuditReport, *, category: str | None = None, workspace: str | None = None
) -> dict[str, Any]:
    """The SARIF log held whole (``SarifWriter`` writes the same, target by target);
    ``category`` names the analysis (``automationDetails``), ``workspace`` is the directory
    relative URIs are taken from (see ``artifact_uri``)."""
    texts = _known_rules()
    pairs = [
        (t, f) for t in report.targets for f in t.findings if f.kind != FindingKind.UNCHECKED
    ]
    for _, finding in pairs:
        texts.setdefault(finding.kind, _unknown_rule(finding.kind))
    index = {rule_id: i for i, rule_id in enumerate(texts)}
    levels = {rule_id: text.level for rule_id, text in texts.items()}
    when = rfc3339(report.generated_at)
    notifications = [n for t in report.targets for n in _target_notifications(t, when, workspace)]
    notifications.extend(_note_notification(n, when) for n in report.notes)
    if len(pairs) > MAX_RESULTS:
        notifications.append(_cap_notification(len(pairs) - MAX_RESULTS, when))
        pairs = pairs[:MAX_RESULTS]
    successful = any(_checked(t) for t in report.targets) or not report.targets
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "automationDetails": _automation(category, when),
                "results": [_result(t, f, index, levels, workspace) for t, f in pairs],
                "tool": _tool(texts),
                "invocations": [
                    _invocation(successful, when, report.info, notifications, workspace)
                ],
                # As the JSON summary: waived findings (suppressed results) counted apart.
                "properties": {"findings": dict(summarize(report.targets).findings)},
            }
        ],
    }


class SarifWriter:
    """Writes the SARIF log to ``out`` target by target, byte for byte what
    ``json.dumps(to_dict(report), indent=2)`` prints: results are written as each target is
    decided; what is kept until the end is small (the rules seen, the notifications of targets
    that could not be checked, counts).
    """

    def __init__(
        self, out: TextIO, *, category: str | None = None, workspace: str | None = None
    ) -> None:
        self.out = out
        self.category = category
        self.workspace = workspace
        self.tally = Tally()
        self.texts = _known_rules()
        self.index = {rule_id: i for i, rule_id in enumerate(self.texts)}
        self.notifications: list[dict[str, Any]] = []
        self.findings = 0
        self.written = 0
        self.targets = 0
        self.checked = False
        self.start = ReportStart(datetime.now(UTC))
        self.when = rfc3339(self.start.generated_at)

    def begin(self, start: ReportStart) -> None:
        self.start, self.when = start, rfc3339(start.generated_at)
        self.out.write(
            f'{{\n  "$schema": {json.dumps(SARIF_SCHEMA)},\n'
            f'  "version": {json.dumps(SARIF_VERSION)},\n  "runs": [\n    {{\n'
            f'      "automationDetails": {nested(_automation(self.category, self.when), 3)},\n'
            '      "results": '
        )

    def add(self, target: TargetResult) -> None:
        self.tally.add(target)
        self.targets += 1
        self.checked = self.checked or _checked(target)
        self.notifications.extend(_target_notifications(target, self.when, self.workspace))
        for finding in target.findings:
            if finding.kind == FindingKind.UNCHECKED:
                continue
            if finding.kind not in self.texts:
                self.texts[finding.kind] = _unknown_rule(finding.kind)
                self.index[finding.kind] = len(self.index)
            self.findings += 1
            if self.written >= MAX_RESULTS:
                continue
            levels = {finding.kind: self.texts[finding.kind].level}
            result = _result(target, finding, self.index, levels, self.workspace)
            self.out.write("[\n        " if self.written == 0 else ",\n        ")
            self.out.write(nested(result, 4))
            self.written += 1

    def finish(self, ended: datetime | None = None) -> Summary:
        """``ended``: the run's end (``endTimeUtc``); default the report's time."""
        notifications = [
            *self.notifications,
            *(_note_notification(n, self.when) for n in self.start.notes),
        ]
        if self.findings > MAX_RESULTS:
            notifications.append(_cap_notification(self.findings - MAX_RESULTS, self.when))
        successful = self.checked or not self.targets
        invocation = _invocation(
            successful,
            rfc3339(ended) if ended is not None else self.when,
            self.start.info,
            notifications,
            self.workspace,
        )
        summary = self.tally.summary()
        properties = {"findings": dict(summary.findings)}
        self.out.write("\n      ]" if self.written else "[]")
        self.out.write(
            f',\n      "tool": {nested(_tool(self.texts), 3)},\n'
            f'      "invocations": {nested([invocation], 3)},\n'
            f'      "properties": {nested(properties, 3)}\n    }}\n  ]\n}}\n'
        )
        return summary


def render(
    report: AuditReport, *, category: str | None = None, workspace: str | None = None
) -> str:
    buffer = io.StringIO()
    writer = SarifWriter(buffer, category=category, workspace=workspace)
    writer.begin(ReportStart(report.generated_at, report.info, report.notes))
    for target in report.targets:
        writer.add(target)
    writer.finish()
    return buffer.getvalue()
