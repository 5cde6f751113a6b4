"""``audit now`` streamed (the table, JSON, SARIF): each target handed on as it is decided.

A run of 10^5 nodes must not hold them all (issue 12: 300 MB peak). The writers
(:class:`~auditor.formats.json.JsonWriter`, :class:`~auditor.formats.sarif.SarifWriter`)
write what ``render`` would, target by target, and keep only counts; the run hands them each
result through ``App.audit_into`` and holds none either. The table sorts and aligns, so it
prints at the end, but its writer (:class:`~auditor.formats.table.TableWriter`) keeps only
each target's rendered rows. With ``--state`` the run is recorded at the end (one transaction,
as before) from each target's encoded result, kept as it is decided instead of the result
(auditor/state/runs.py). The page needs every target at once and still collects the report.

With ``-o FILE`` the report is written to a temporary file beside it and renamed into place
at the end: an interrupted run never leaves half a report under the name a CI step reads.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from auditor.app import App
from auditor.coverage import Summary
from auditor.errors import UsageError
from auditor.formats import Format
from auditor.formats.json import JsonWriter
from auditor.formats.sarif import SarifWriter
from auditor.formats.table import TableWriter
from auditor.model import ReportStart, TargetResult

if TYPE_CHECKING:
    from auditor.state.store import Store

STREAMED = frozenset({Format.TABLE, Format.JSON, Format.SARIF})


@dataclass
class StreamedRun:
    """What is left of a streamed run: its counts and how many warnings it carried."""

    summary: Summary
    notes: int


class _Sink:
    def __init__(self, writer: JsonWriter | SarifWriter | TableWriter) -> None:
        self.writer = writer
        self.notes = 0

    def begin(self, start: ReportStart) -> None:
        self.notes = len(start.notes)
        self.writer.begin(start)

    def add(self, target: TargetResult) -> None:
        self.writer.add(target)


async def stream_audit(
    app: App,
    references: Sequence[str],
    fmt: Format,
    out: TextIO,
    *,
    category: str | None = None,
    workspace: str | None = None,
    quiet: bool = False,
    color: bool = False,
    width: int | None = None,
    store: Store | None = None,
) -> StreamedRun:
    """Audit ``references`` (or the config) writing ``fmt`` to ``out`` as targets finish
    (``quiet``, ``color`` and ``width`` are the table's); with ``store``, the run is recorded
    in it (``audit now --state``)."""
    writer: JsonWriter | SarifWriter | TableWriter
    if fmt is Format.TABLE:
        writer = TableWriter(out, quiet=quiet, color=color, width=width)
    elif fmt is Format.SARIF:
        writer = SarifWriter(out, category=category, workspace=workspace)
    elif fmt is Format.JSON:
        writer = JsonWriter(out)
    else:
        raise ValueError(f"{fmt} is not a streamed format")
    sink = _Sink(writer)
    if store is None:
        await app.audit_into(references, sink)
    else:
        from auditor.state.runs import record_cli_stream  # SQLAlchemy only when asked for

        await record_cli_stream(store, app, references, sink)
    summary = (
        writer.finish(datetime.now(UTC)) if isinstance(writer, SarifWriter) else writer.finish()
    )
    return StreamedRun(summary, sink.notes)


@contextlib.contextmanager
def report_file(path: Path) -> Iterator[TextIO]:
    """A text file that becomes ``path`` only when the block ends without an exception."""
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    except OSError as exc:
        raise UsageError(f"--output {path}: {exc.strerror or exc}") from None
    temporary = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            yield out
        try:
            os.chmod(temporary, 0o644)  # mkstemp's 0600 is for the half-written file only
            os.replace(temporary, path)
        except OSError as exc:
            raise UsageError(f"--output {path}: {exc.strerror or exc}") from None
    finally:
        temporary.unlink(missing_ok=True)
