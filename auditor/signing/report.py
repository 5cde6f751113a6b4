"""``auditor sign`` output: one line per node (table), or JSON for scripts. Pure."""

from __future__ import annotations

import json
from typing import Any

from auditor.coverage import describe_node
from auditor.signing.command import NodeResult, SignReport

SCHEMA_VERSION = 1


def _what(result: NodeResult, root: str) -> str:
    return describe_node(result.node, root=result.node.digest == root)


def render_table(report: SignReport) -> str:
    head = "plan for" if report.dry_run else "signing"
    lines = [
        f"{head} {report.reference} ({report.digest})",
        f"  signer {report.signer} (sha256 {report.thumbprint[:16]}...)",
    ]
    width = max((len(r.outcome.value) for r in report.nodes), default=6)
    for result in report.nodes:
        indent = "  " * (result.node.depth + 1)
        line = f"{result.outcome.value:<{width}}  {indent}{_what(result, report.digest)}"
        if result.signature:
            line += f" -> signature {result.signature} ({result.via})"
        lines.append(f"{line}\n{' ' * width}  {indent}  {result.reason}")
    counts = {o: sum(1 for r in report.nodes if r.outcome is o) for o in
              dict.fromkeys(r.outcome for r in report.nodes)}
    lines.append(", ".join(f"{n} {o.value}" for o, n in counts.items()) or "no nodes")
    return "\n".join(lines) + "\n"


def to_json(report: SignReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "reference": report.reference,
        "digest": report.digest,
        "signer": report.signer,
        "certificate_sha256": report.thumbprint,
        "dry_run": report.dry_run,
        "failed": report.failed,
        "nodes": [
            {
                "digest": r.node.digest,
                "media_type": r.node.media_type,
                "kind": r.node.kind.value,
                "platform": str(r.node.platform) if r.node.platform else None,
                "parent": r.node.parent,
                "outcome": r.outcome.value,
                "reason": r.reason,
                "signature": r.signature,
                "via": r.via,
            }
            for r in report.nodes
        ],
    }


def render_json(report: SignReport) -> str:
    return json.dumps(to_json(report), indent=2) + "\n"
