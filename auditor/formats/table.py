"""Plain-text table for a terminal: each target's one-word verdict, then its nodes, then findings.

Text that came from a registry or a certificate (reasons, signer names) is escaped so a hostile
manifest cannot drive the terminal with control sequences. Colour only when asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditor.coverage import summarize
from auditor.formats.common import short_digest
from auditor.model import AuditReport, Finding, NodeStatus, NodeVerdict, TargetResult, TargetStatus

_COLORS = {
    NodeStatus.SIGNED.value: "32",
    TargetStatus.COMPLIANT.value: "32",
    NodeStatus.UNSIGNED.value: "31",
    NodeStatus.INVALID.value: "31",
    TargetStatus.NONCOMPLIANT.value: "31",
    NodeStatus.ERROR.value: "33",
    NodeStatus.UNVERIFIED.value: "33",
    NodeStatus.SKIPPED.value: "2",
}
_HEADER = ("PLATFORM", "KIND", "DIGEST", "STATUS", "SIGS", "REQUIRED", "REASON")
_STATUS_COLUMN = 3


def clean(text: str) -> str:
    """Escape control characters (ANSI escapes, newlines) so one value stays one line."""
    return "".join(
        ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}"
        for ch in text
    )


def _paint(text: str, word: str, color: bool) -> str:
    code = _COLORS.get(word)
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def _depth(verdict: NodeVerdict, parents: dict[str, str | None]) -> int:
    depth, parent, seen = 0, verdict.node.parent, set[str]()
    while parent is not None and parent in parents and parent not in seen:
        seen.add(parent)
        depth, parent = depth + 1, parents[parent]
    return depth


def _rows(target: TargetResult) -> list[tuple[str, ...]]:
    parents = {v.node.digest: v.node.parent for v in target.nodes}
    rows: list[tuple[str, ...]] = []
    for verdict in target.nodes:
        node = verdict.node
        platform = str(node.platform) if node.platform and not node.platform.is_unknown else "-"
        reason = verdict.reason
        if verdict.covered_by:
            reason += f" (covered by signed index {short_digest(verdict.covered_by)})"
        rows.append(
            (
                "  " * _depth(verdict, parents) + clean(platform),
                node.kind.value,
                short_digest(node.digest),
                verdict.status.value,
                str(len(verdict.signatures) or len(node.signatures)),
                "yes" if verdict.required else "no",
                clean(reason),
            )
        )
    return rows


def _format_rows(rows: Sequence[tuple[str, ...]], widths: Sequence[int], color: bool) -> list[str]:
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        if row is not _HEADER:
            cells[_STATUS_COLUMN] = _paint(cells[_STATUS_COLUMN], row[_STATUS_COLUMN], color)
        lines.append(("    " + "  ".join([*cells, row[-1]])).rstrip())
    return lines


def _finding_line(finding: Finding) -> str:
    text = f"{clean(finding.kind)}: {clean(finding.message)}"
    if finding.waiver is not None:
        text = f"waived {text} [{clean(str(finding.waiver))}]"
    return text


def _finding_lines(target: TargetResult, *, waived: bool = True) -> list[str]:
    lines = [_finding_line(f) for f in target.findings if waived or f.waiver is None]
    if not lines and target.error:
        lines.append(f"error: {clean(target.error)}")
    return lines


def _summary(report: AuditReport) -> str:
    summary = summarize(report.targets)
    targets = ", ".join(f"{n} {s.value}" for s, n in summary.targets.items())
    nodes = ", ".join(f"{n} {s.value}" for s, n in summary.nodes.items() if n)
    total = sum(summary.nodes.values())
    text = f"{len(report.targets)} target{'s' * (len(report.targets) != 1)}: {targets}"
    text += f"; {total} node{'s' * (total != 1)}: {nodes}" if total else ""
    waived = summary.findings["waived"]
    return text + (f"; {waived} finding{'s' * (waived != 1)} waived" if waived else "")


def render(report: AuditReport, *, quiet: bool = False, color: bool = False) -> str:
    """The table, or with ``quiet`` one line per finding (nothing when all is compliant)."""
    if quiet:
        return "".join(
            f"{clean(t.reference)}: {line}\n"
            for t in report.targets
            for line in _finding_lines(t, waived=False)
        )
    all_rows = [row for t in report.targets for row in _rows(t)]
    widths = [max(len(r[i]) for r in [_HEADER, *all_rows]) for i in range(len(_HEADER) - 1)]
    lines: list[str] = []
    for target in report.targets:
        verdict = _paint(target.status.value, target.status.value, color)
        head = f"{verdict} {clean(target.reference)}"
        if target.digest:
            head += f" {short_digest(target.digest)}"
        if target.rule:
            head += f" ({clean(target.rule)})"
        lines.append(head)
        rows = _rows(target)
        if rows:
            lines.extend(_format_rows([_HEADER, *rows], widths, color))
        findings = _finding_lines(target)
        if findings:
            lines.append("  findings:")
            lines.extend(f"    {line}" for line in findings)
    lines.append(_summary(report))
    return "".join(f"{line}\n" for line in lines)
