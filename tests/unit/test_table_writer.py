"""The table fed target by target (``TableWriter``, what ``audit now`` streams into) prints
the very bytes the table printed when it was rendered from the whole report at once.

``_collected`` below is that whole-report renderer as it stood before the writer (a frozen
copy of the project's own code, the oracle), over the same row and line helpers.
"""

from __future__ import annotations

import gc
import io
import weakref
from collections.abc import Sequence
from dataclasses import replace

import pytest

from auditor.formats import table
from auditor.formats.common import short_digest
from auditor.formats.table import (
    _HEADER,
    TableWriter,
    _cut,
    _finding_lines,
    _format_rows,
    _paint,
    _repository_and_tag,
    _rows,
    _signers,
    _summary,
    _version_key,
    clean,
    note_line,
    run_line,
)
from auditor.model import AuditReport, ReportStart, TargetResult, TargetStatus
from tests.unit.test_formats import sample_report
from tests.unit.test_report_metadata import INFO, NOTES


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


def _collected(
    report: AuditReport, *, quiet: bool = False, color: bool = False, width: int | None = None
) -> str:
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


def _reports() -> list[AuditReport]:
    full = replace(sample_report(), info=INFO, notes=NOTES)
    base = full.targets
    # Several repositories, tags out of version order, a repository seen again later: the
    # grouping, the version sort, the rollup and the column widths all come into play.
    many = tuple(
        replace(base[i % len(base)], reference=f"127.0.0.1:5000/team/{repo}:{tag}")
        for i, (repo, tag) in enumerate(
            [("tool", "v1.10"), ("app", "2"), ("tool", "v1.9"), ("other", "x"),
             ("tool", "v1.9.1-rc1"), ("app", "10"), ("app", "1\x1b[31m")]
        )
    )
    odd = replace(base[0], reference="not a reference", status=TargetStatus.ERROR,
                  error="not a reference: broken\nline", nodes=())
    return [
        sample_report(),
        full,
        replace(full, targets=()),
        replace(full, targets=many, notes=()),
        replace(full, targets=(*many, odd), info=None),
        replace(sample_report(), targets=sample_report().targets[1:2]),
    ]


@pytest.mark.parametrize("index", range(6))
@pytest.mark.parametrize(
    ("quiet", "color", "width"),
    [(False, False, None), (False, True, None), (False, True, 60), (False, False, 20),
     (True, False, None)],
)
def test_table_writer_prints_exactly_the_whole_report_table(
    index: int, quiet: bool, color: bool, width: int | None
) -> None:
    report = _reports()[index]
    expected = _collected(report, quiet=quiet, color=color, width=width)
    assert table.render(report, quiet=quiet, color=color, width=width) == expected
    out = io.StringIO()
    writer = TableWriter(out, quiet=quiet, color=color, width=width)
    writer.begin(ReportStart(report.generated_at, report.info, report.notes))
    for target in report.targets:
        writer.add(target)
    summary = writer.finish()
    assert out.getvalue() == expected
    assert table.summary_text(summary, len(report.notes)) == table.summary_line(report)


def test_the_comparison_sees_a_difference() -> None:
    """The oracle is not the writer: two reports that differ print differently."""
    first, second = _reports()[3], _reports()[4]
    assert _collected(first) != _collected(second)
    assert "repositories:" in _collected(first)
    assert "\x1b" not in _collected(first)  # the hostile tag is escaped


@pytest.mark.parametrize("quiet", [False, True])
def test_table_writer_keeps_no_target_once_added(quiet: bool) -> None:
    out = io.StringIO()
    writer = TableWriter(out, quiet=quiet)
    writer.begin(ReportStart(sample_report().generated_at, INFO, NOTES))
    refs: list[weakref.ref[object]] = []
    for template in sample_report().targets * 20:
        target = replace(template, nodes=tuple(replace(v) for v in template.nodes))
        refs.append(weakref.ref(target))
        refs.extend(weakref.ref(v) for v in target.nodes)
        writer.add(target)
        del target
    gc.collect()
    assert len(refs) > 20
    assert all(ref() is None for ref in refs)  # results and verdicts let go
    writer.finish()
    assert out.getvalue()
