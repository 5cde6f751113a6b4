"""The JSON report (schema_version 1): the stable, machine-readable form of an AuditReport.

Keys are emitted in a fixed order so diffs between runs stay readable; every node, target and
summary status appears by name. Nothing secret is in an AuditReport, so nothing is filtered.
"""

from __future__ import annotations

import json
from typing import Any

from auditor.coverage import summarize
from auditor.formats.common import rfc3339
from auditor.model import AuditReport, Finding, NodeVerdict, SignatureResult, TargetResult

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


def target_dict(target: TargetResult) -> dict[str, Any]:
    return {
        "reference": target.reference,
        "digest": target.digest,
        "media_type": target.media_type,
        "status": target.status.value,
        "rule": target.rule,
        "findings": [finding_dict(f) for f in target.findings],
        "error": target.error,
        "nodes": [_node(n) for n in target.nodes],
    }


def to_dict(report: AuditReport) -> dict[str, Any]:
    """The report as plain JSON-ready data (what ``render`` serialises)."""
    summary = summarize(report.targets)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": rfc3339(report.generated_at),
        "targets": [target_dict(t) for t in report.targets],
        "summary": {
            "nodes": {status.value: count for status, count in summary.nodes.items()},
            "targets": {status.value: count for status, count in summary.targets.items()},
            "findings": dict(summary.findings),
        },
    }


def render(report: AuditReport) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"
