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

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from auditor.coverage import Summary, Tally, summarize
from auditor.errors import InvalidReference
from auditor.formats.common import short_digest
from auditor.model import (
    AuditReport,
    FileStamp,
    Finding,
    NodeStatus,
    NodeVerdict,
    ReportNote,
    ReportStart,
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
_SEP = "\x00"  # never in a cell: every text from outside goes through clean()


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


@dataclass(frozen=True, slots=True)
class _Entry:
    """What the table prints of one target, already rendered: the target itself (its graph,
    verdicts, signatures) is let go as soon as this is made (issue 12: 10^5 nodes in 300 MB)."""

    repository: str
    tag: str
    status: str
    head: str
    signers: str | None
    rows: tuple[str, ...]  # each row's cells joined by _SEP (one string per node, not seven)
    findings: tuple[str, ...]

    def cells(self) -> list[tuple[str, ...]]:
        return [tuple(row.split(_SEP)) for row in self.rows]


def _entry(target: TargetResult) -> _Entry:
    repository, tag = _repository_and_tag(target.reference)
    head = f"{target.status.value} {clean(target.reference)}"
    if target.digest:
        head += f" {short_digest(target.digest)}"
    if target.rule:
        head += f" ({clean(target.rule)})"
    if target.error_category is not None:
        head += f" [{target.error_category.value}]"
    signers = _signers(target)
    return _Entry(
        repository=repository,
        tag=tag,
        status=target.status.value,
        head=head,
        signers=f"  signed by: {clean('; '.join(signers))}" if signers else None,
        rows=tuple(_SEP.join(row) for row in _rows(target)),
        findings=tuple(_finding_lines(target, short=True)),
    )


class TableWriter:
    """The table fed target by target (the sink ``App.audit_into`` hands results to), the
    same text ``render`` gives. The columns are aligned over every row and targets are grouped
    by repository, so nothing can be printed before the end, but only each target's rendered
    rows and lines are kept (:class:`_Entry`), never the results; with ``quiet`` only the
    finding lines (kept too, so nothing reaches the terminal under the progress line).

    ``begin`` once the targets are listed, ``add`` as each target is decided, ``finish`` at
    the end (it writes the rest and returns the summary).
    """

    def __init__(
        self, out: TextIO, *, quiet: bool = False, color: bool = False, width: int | None = None
    ) -> None:
        self.out = out
        self.quiet = quiet
        self.color = color
        self.width = width
        self.tally = Tally()
        self.entries: list[_Entry] = []
        self.quiet_lines: list[str] = []
        self.notes: tuple[ReportNote, ...] = ()
        self.info: RunInfo | None = None

    def begin(self, start: ReportStart) -> None:
        self.notes, self.info = start.notes, start.info

    def add(self, target: TargetResult) -> None:
        self.tally.add(target)
        if self.quiet:
            self.quiet_lines.extend(
                f"{clean(target.reference)}: {line}"
                for line in _finding_lines(target, waived=False)
            )
        else:
            self.entries.append(_entry(target))

    def finish(self) -> Summary:
        summary = self.tally.summary()
        if self.quiet:
            lines = [*(note_line(n) for n in self.notes), *self.quiet_lines]
            self.out.write("".join(f"{line}\n" for line in lines))
        else:
            for line in self._lines(summary):  # line by line: no second copy of the table
                self.out.write(f"{line}\n")
        self.entries, self.quiet_lines = [], []
        return summary

    def _lines(self, summary: Summary) -> Iterator[str]:
        color, width = self.color, self.width
        groups: dict[str, list[_Entry]] = {}
        for entry in self.entries:
            groups.setdefault(entry.repository, []).append(entry)
        for group in groups.values():
            group.sort(key=lambda e: _version_key(e.tag))
        widths = [len(h) for h in _HEADER[:-1]]
        for entry in self.entries:
            for row in entry.cells():
                for i, w in enumerate(widths):
                    widths[i] = max(w, len(row[i]))
        if any(entry.rows for entry in self.entries):
            yield from _format_rows([_HEADER], widths, color, width)
        for group in groups.values():
            for entry in group:
                head = _cut(entry.head, width)
                yield _paint(entry.status, entry.status, color) + head[len(entry.status):]
                if entry.signers is not None:
                    yield _cut(entry.signers, width)
                if entry.rows:
                    yield from _format_rows(entry.cells(), widths, color, width)
                if entry.findings:
                    yield "  findings:"
                    yield from (_cut(f"    {line}", width) for line in entry.findings)
        if len(groups) < len(self.entries):  # some repository has several targets
            yield _cut("repositories:", width)
            for repository, group in groups.items():
                text = ", ".join(
                    f"{n} {s.value}"
                    for s in TargetStatus
                    if (n := sum(e.status == s.value for e in group))
                )
                yield _cut(
                    f"  {clean(repository)}: {len(group)} target{'s' * (len(group) != 1)}: {text}",
                    width,
                )
        yield from (_cut(note_line(n), width) for n in self.notes)
        if self.info is not None:
            yield _cut(run_line(self.info), width)
        yield _cut(summary_text(summary, len(self.notes)), width)


def render(
    report: AuditReport, *, quiet: bool = False, color: bool = False, width: int | None = None
) -> str:
    """The table, or with ``quiet`` one line per finding (nothing when all is compliant):
    :class:`TableWriter` over the whole report."""
    buffer = io.StringIO()
    writer = TableWriter(buffer, quiet=quiet, color=color, width=width)
    writer.begin(ReportStart(report.generated_at, report.info, report.notes))
    for target in report.targets:
        writer.add(target)
    writer.finish()
    return buffer.getvalue()

