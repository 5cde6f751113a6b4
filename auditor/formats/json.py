"""The JSON report (schema_version 1): the stable, machine-readable form of an AuditReport.

Keys are emitted in a fixed order so diffs between runs stay readable; every node, target and
summary status appears by name. Nothing secret is in an AuditReport, so nothing is filtered.
Keys added within schema version 1 (readers ignore keys they do not know): ``run`` (tool
version, config file, trust policy and stores with their sha256), ``notes`` (what the run
left out: tags past ``tags.limit``, globs that matched nothing), and per target ``policy``
(the coverage rule as data) and ``error_category``.
"""

from __future__ import annotations

import io
import json
from typing import Any, TextIO

from auditor import __version__
from auditor.coverage import Summary, Tally, summarize
from auditor.formats.common import rfc3339
from auditor.model import (
    AuditReport,
    FileStamp,
    Finding,
    NodeVerdict,
    ReportNote,
    ReportStart,
    RuleData,
    RunInfo,
    SignatureResult,
    TargetResult,
)

SCHEMA_VERSION = 1


def _signature(result: SignatureResult) -> dict[str, Any]:
    return {
        "digest": result.digest,
        "format": result.format,
        "status": result.status.value,
        "reason": result.reason,
        "failed_validation": result.failed_validation,
        "warnings": list(result.warnings),
        "signer": result.signer,
        "signing_time": rfc3339(result.signing_time) if result.signing_time else None,
        "expiry": rfc3339(result.expiry) if result.expiry else None,
        "timestamped": result.timestamped,
        "valid_until": rfc3339(result.valid_until) if result.valid_until else None,
    }


def _node(verdict: NodeVerdict) -> dict[str, Any]:
    node = verdict.node
    return {
        "digest": node.digest,
        "media_type": node.media_type,
        "kind": node.kind.value,
        "platform": str(node.platform) if node.platform else None,
        "parent": node.parent,
        "attestation_for": node.attestation_for,
        "status": verdict.status.value,
        "reason": verdict.reason,
        "required": verdict.required,
        "covered_by": verdict.covered_by,
        "signatures": [_signature(s) for s in verdict.signatures],
        "other_referrers": [
            {"digest": r.digest, "artifact_type": r.artifact_type} for r in node.other_referrers
        ],
    }


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "kind": finding.kind,
        "node": finding.node,
        "platform": finding.platform,
        "rule": finding.rule,
        "message": finding.message,
        "waiver": None
        if finding.waiver is None
        else {
            "image": finding.waiver.image,
            "reason": finding.waiver.reason,
            "owner": finding.waiver.owner,
            "expires": rfc3339(finding.waiver.expires),
        },
    }


def rule_dict(rule: RuleData | None) -> dict[str, Any] | None:
    return None if rule is None else rule.as_dict()


def target_dict(target: TargetResult) -> dict[str, Any]:
    return {
        "reference": target.reference,
        "digest": target.digest,
        "media_type": target.media_type,
        "status": target.status.value,
        "rule": target.rule,
        "policy": rule_dict(target.policy),
        "findings": [finding_dict(f) for f in target.findings],
        "error": target.error,
        "error_category": target.error_category.value if target.error_category else None,
        "nodes": [_node(n) for n in target.nodes],
    }


def stamp_dict(stamp: FileStamp | None) -> dict[str, Any] | None:
    if stamp is None:
        return None
    out: dict[str, Any] = {"path": stamp.path, "sha256": stamp.sha256}
    if stamp.name is not None:
        out = {"name": stamp.name, **out}
    return out


def run_dict(info: RunInfo | None) -> dict[str, Any]:
    """The tool and the files the verdicts came from (``tool`` only, for a report made
    without them)."""
    tool = {"name": "registry-auditor", "version": info.version if info else __version__}
    if info is None:
        return {"tool": tool}
    return {
        "tool": tool,
        "config": stamp_dict(info.config),
        "trust": {
            "policy": stamp_dict(info.trust_policy),
            "store": stamp_dict(info.trust_store),
            "stores": [stamp_dict(s) for s in info.trust_stores],
            "cosign": [stamp_dict(s) for s in info.cosign],
        },
    }


def note_dict(note: ReportNote) -> dict[str, Any]:
    return {
        "kind": note.kind.value,
        "subject": note.subject,
        "message": note.message,
        "left_out": note.left_out,
    }


def summary_dict(summary: Summary) -> dict[str, Any]:
    return {
        "nodes": {status.value: count for status, count in summary.nodes.items()},
        "targets": {status.value: count for status, count in summary.targets.items()},
        "findings": dict(summary.findings),
    }


def head_dict(start: ReportStart) -> dict[str, Any]:
    """Everything before ``targets``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": rfc3339(start.generated_at),
        "run": run_dict(start.info),
        "notes": [note_dict(n) for n in start.notes],
    }


def to_dict(report: AuditReport) -> dict[str, Any]:
    """The report as plain JSON-ready data, held whole (``JsonWriter`` writes the same)."""
    start = ReportStart(report.generated_at, report.info, report.notes)
    return {
        **head_dict(start),
        "targets": [target_dict(t) for t in report.targets],
        "summary": summary_dict(summarize(report.targets)),
    }


def nested(value: Any, level: int) -> str:
    """``value`` as ``json.dumps(indent=2)`` prints it ``level`` levels deep in a document
    (JSON strings hold no raw newline, so indenting after each one is exact)."""
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + "  " * level)


class JsonWriter:
    """Writes the JSON report to ``out`` target by target, byte for byte what
    ``json.dumps(to_dict(report), indent=2)`` prints, holding only the summary counts.

    ``begin`` once the targets are listed, ``add`` as each target is decided, ``finish`` at
    the end (it writes the summary and returns it).
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tally = Tally()
        self.count = 0

    def begin(self, start: ReportStart) -> None:
        self.out.write("{\n")
        for key, value in head_dict(start).items():
            self.out.write(f"  {json.dumps(key)}: {nested(value, 1)},\n")
        self.out.write('  "targets": ')

    def add(self, target: TargetResult) -> None:
        self.out.write("[\n    " if self.count == 0 else ",\n    ")
        self.out.write(nested(target_dict(target), 2))
        self.tally.add(target)
        self.count += 1

    def finish(self) -> Summary:
        summary = self.tally.summary()
        self.out.write("\n  ]" if self.count else "[]")
        self.out.write(f',\n  "summary": {nested(summary_dict(summary), 1)}\n}}\n')
        return summary


def render(report: AuditReport) -> str:
    buffer = io.StringIO()
    writer = JsonWriter(buffer)
    writer.begin(ReportStart(report.generated_at, report.info, report.notes))
    for target in report.targets:
        writer.add(target)
    writer.finish()
    return buffer.getvalue()
