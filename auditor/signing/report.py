"""``auditor sign`` output: one line per node (table), or JSON for scripts. Pure."""

from __future__ import annotations

import json
from typing import Any

from auditor.formats.common import short_digest
from auditor.formats.table import clean
from auditor.signing.command import NodeResult, SignReport

SCHEMA_VERSION = 1


_HEADER = ("OUTCOME", "PLATFORM", "KIND", "DIGEST", "SIGNATURE", "WHY")


def _row(result: NodeResult) -> tuple[str, ...]:
    node = result.node
    indent = "  " * node.depth
    platform = str(node.platform) if node.platform and not node.platform.is_unknown else "-"
    return (
        result.outcome.value,
        indent + platform,
        node.kind.value,
        short_digest(node.digest),
        short_digest(result.signature) if result.signature else "-",
        clean(result.reason),
    )


def render_table(report: SignReport) -> str:
    """Header, one row per node (indented like the audit's table), then where and how many.

    Reasons can quote registry text (a node's load error), so they are escaped like the
    audit's table escapes them.
    """
    head = "plan for" if report.dry_run else "signing"
    rows = [_HEADER, *(_row(r) for r in report.nodes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER) - 1)]
    lines = [
        f"{head} {clean(report.reference)} ({report.digest})",
        f"  as {clean(report.signer)} (certificate sha256 {report.thumbprint})",
    ]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  " + "  ".join([*cells, row[-1]]))
    places = sorted({r.via for r in report.nodes if r.via})
    if places:
        lines.append(
            "  new signatures listed through: "
            + " and ".join(places).replace("fallback tag", "each node's sha256-<hex> fallback tag")
        )
    counts: dict[str, int] = {}
    for result in report.nodes:
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    lines.append(", ".join(f"{n} {o}" for o, n in counts.items()) or "no nodes")
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
