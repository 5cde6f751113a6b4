"""Plain-text table for a terminal: each target's one-word verdict, then its nodes, then findings.

Text that came from a registry or a certificate (reasons, signer names) is escaped so a hostile
manifest cannot drive the terminal with control sequences. Colour only when asked.

Made to be read: one column header per run; targets grouped by repository, tags in version
order; a target's signers once under it instead of on every row; digests short in findings
(the JSON report has them whole); "covered by signed index" only on nodes that do not fail a
requirement themselves (next to an unsigned required platform it would read as "this is
fine"); with ``width`` (the terminal's), long lines are cut with an ellipsis, never wrapped;
a per-repository rollup when there is more than one target.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from auditor.coverage import Summary, summarize
from auditor.errors import InvalidReference
from auditor.formats.common import short_digest
from auditor.model import (
    AuditReport,
    FileStamp,
    Finding,
    NodeStatus,
    NodeVerdict,
    ReportNote,
    RunInfo,
    SignatureStatus,
    TargetResult,
    TargetStatus,
)
from auditor.oci.reference import parse_reference

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
_FAILING = frozenset({NodeStatus.UNSIGNED, NodeStatus.INVALID, NodeStatus.ERROR,
                      NodeStatus.UNVERIFIED})
_DIGEST = re.compile(r"\b(sha256|sha384|sha512):([0-9a-f]{12})[0-9a-f]{20,}\b")
_SIGNER = re.compile(r"; signer (.+)$")
_ELLIPSIS = "\u2026"


def _cut(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + _ELLIPSIS


def _short_digests(text: str) -> str:
    return _DIGEST.sub(lambda m: f"{m.group(1)}:{m.group(2)}", text)


def _repository_and_tag(reference: str) -> tuple[str, str]:
    try:
        ref = parse_reference(reference)
    except InvalidReference:
        return reference, ""
    return ref.scope, ref.tag or ref.digest or ""


def _version_key(tag: str) -> tuple[tuple[int, int | str], ...]:
    """Numbers compare as numbers (v1.10 after v1.9); text parts as text."""
    parts = re.findall(r"\d+|[^\d]+", tag)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _ordered(targets: Sequence[TargetResult]) -> list[TargetResult]:
    """Grouped by repository (first-seen order), tags in version order within each."""
    groups: dict[str, list[TargetResult]] = {}
    for target in targets:
        groups.setdefault(_repository_and_tag(target.reference)[0], []).append(target)
    return [
        t
        for group in groups.values()
        for t in sorted(group, key=lambda t: _version_key(_repository_and_tag(t.reference)[1]))
    ]


def _signers(target: TargetResult) -> list[str]:
    names = (
        s.signer
        for v in target.nodes
        for s in v.signatures
        if s.signer and s.status is SignatureStatus.VALID
    )
    return list(dict.fromkeys(names))


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
        reason = _SIGNER.sub("", verdict.reason)
        failing = verdict.required and verdict.status in _FAILING
        if verdict.covered_by and not failing:
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


def _format_rows(
    rows: Sequence[tuple[str, ...]], widths: Sequence[int], color: bool, width: int | None
) -> list[str]:
    """Aligned rows cut to ``width`` (the reason first, then whatever must go); the status cell
    is painted after cutting so an escape sequence is never cut in half."""
    status_at = 4 + sum(w + 2 for w in widths[:_STATUS_COLUMN])
    lines = []
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)]
        line = _cut(("    " + "  ".join([*cells, row[-1]])).rstrip(), width)
        status = row[_STATUS_COLUMN]
        if color and row is not _HEADER and line[status_at : status_at + len(status)] == status:
            end = status_at + len(status)
            line = line[:status_at] + _paint(status, status, color) + line[end:]
        lines.append(line)
    return lines


def _finding_line(finding: Finding, short: bool = False) -> str:
    message = _short_digests(finding.message) if short else finding.message
    text = f"{clean(finding.kind)}: {clean(message)}"
    if finding.waiver is not None:
        text = f"waived {text} [{clean(str(finding.waiver))}]"
    return text


def _finding_lines(
    target: TargetResult, *, waived: bool = True, short: bool = False
) -> list[str]:
    lines = [_finding_line(f, short) for f in target.findings if waived or f.waiver is None]
    if not lines and target.error:
        lines.append(f"error: {clean(target.error)}")
    return lines


def _summary(report: AuditReport) -> str:
    return summary_text(summarize(report.targets), len(report.notes))


def summary_text(summary: Summary, notes: int = 0) -> str:
    """The summary line from the counts alone (a streamed report keeps nothing else)."""
    count = sum(summary.targets.values())
    targets = ", ".join(f"{n} {s.value}" for s, n in summary.targets.items())
    nodes = ", ".join(f"{n} {s.value}" for s, n in summary.nodes.items() if n)
    total = sum(summary.nodes.values())
    text = f"{count} target{'s' * (count != 1)}: {targets}"
    text += f"; {total} node{'s' * (total != 1)}: {nodes}" if total else ""
    waived = summary.findings["waived"]
    text += f"; {waived} finding{'s' * (waived != 1)} waived" if waived else ""
    return text + (f"; {notes} warning{'s' * (notes != 1)}" if notes else "")


def _rollup(targets: Sequence[TargetResult]) -> list[str]:
    groups: dict[str, list[TargetResult]] = {}
    for target in targets:
        groups.setdefault(_repository_and_tag(target.reference)[0], []).append(target)
    lines = ["repositories:"]
    for repository, group in groups.items():
        counts = {s: sum(t.status is s for t in group) for s in TargetStatus}
        text = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
        lines.append(f"  {clean(repository)}: {len(group)} target{'s' * (len(group) != 1)}: {text}")
    return lines


def _stamp(label: str, stamp: FileStamp | None) -> str:
    if stamp is None:
        return f"{label} none"
    # No hash: unreadable, or a config holding credentials (auditor/runinfo.py).
    digest = f"sha256:{stamp.sha256[:12]}" if stamp.sha256 else "not hashed"
    return f"{label} {clean(stamp.path)} ({digest})"


def run_line(info: RunInfo) -> str:
    """The footer: tool version, config file and trust files with short hashes (the JSON and
    SARIF reports carry them whole)."""
    parts = [f"auditor {clean(info.version)}", _stamp("config", info.config),
             _stamp("trust policy", info.trust_policy), _stamp("trust store", info.trust_store)]
    if info.trust_stores:
        stores = ", ".join(
            f"{clean(s.name or s.path)} sha256:{(s.sha256 or 'unreadable')[:12]}"
            for s in info.trust_stores
        )
        parts.append(f"stores {stores}")
    parts.extend(_stamp("cosign", s) for s in info.cosign)
    return "run: " + "; ".join(parts)


def note_line(note: ReportNote) -> str:
    return f"warning: {clean(note.message)}"


def finished_line(position: int, count: int, target: TargetResult) -> str:
    """One line for a target as it finishes (the CLI's stderr off a terminal, so a CI log
    shows progress): position, verdict, reference, open findings or the error."""
    text = f"[{position}/{count}] {target.status.value} {clean(target.reference)}"
    open_findings = sum(1 for f in target.findings if f.waiver is None)
    if target.status is TargetStatus.ERROR and target.error:
        # Errors usually start with the reference already; say it once.
        return f"{text}: {clean(target.error.removeprefix(f'{target.reference}: '))}"
    if open_findings:
        text += f" ({open_findings} finding{'s' * (open_findings != 1)})"
    return text


def summary_line(report: AuditReport) -> str:
    """The last line of the table; the CLI prints it on stderr when the report goes to a file."""
    return _summary(report)


def render(
    report: AuditReport, *, quiet: bool = False, color: bool = False, width: int | None = None
) -> str:
    """The table, or with ``quiet`` one line per finding (nothing when all is compliant)."""
    if quiet:
        notes = "".join(f"{note_line(n)}\n" for n in report.notes)
        return notes + "".join(
            f"{clean(t.reference)}: {line}\n"
            for t in report.targets
            for line in _finding_lines(t, waived=False)
        )
    targets = _ordered(report.targets)
    all_rows = [row for t in targets for row in _rows(t)]
    widths = [max(len(r[i]) for r in [_HEADER, *all_rows]) for i in range(len(_HEADER) - 1)]
    lines: list[str] = []
    if all_rows:
        lines.extend(_format_rows([_HEADER], widths, color, width))
    for target in targets:
        head = f"{target.status.value} {clean(target.reference)}"
        if target.digest:
            head += f" {short_digest(target.digest)}"
        if target.rule:
            head += f" ({clean(target.rule)})"
        if target.error_category is not None:
            head += f" [{target.error_category.value}]"
        head = _cut(head, width)
        verdict = target.status.value
        lines.append(_paint(verdict, verdict, color) + head[len(verdict):])
        signers = _signers(target)
        if signers:
            lines.append(_cut(f"  signed by: {clean('; '.join(signers))}", width))
        rows = _rows(target)
        if rows:
            lines.extend(_format_rows(rows, widths, color, width))
        findings = _finding_lines(target, short=True)
        if findings:
            lines.append("  findings:")
            lines.extend(_cut(f"    {line}", width) for line in findings)
    repositories = [_repository_and_tag(t.reference)[0] for t in targets]
    if len(set(repositories)) < len(repositories):  # some repository has several targets
        lines.extend(_cut(line, width) for line in _rollup(targets))
    lines.extend(_cut(note_line(n), width) for n in report.notes)
    if report.info is not None:
        lines.append(_cut(run_line(report.info), width))
    lines.append(_cut(_summary(report), width))
    return "".join(f"{line}\n" for line in lines)
