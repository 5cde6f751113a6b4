"""Recording a run in the state store around an audit (``audit now --state``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.model import AuditReport, ReportStart, TargetResult
from auditor.state.store import RecordedTarget, Store, recorded

if TYPE_CHECKING:
    from auditor.app import App
    from auditor.audit import ReportSink

CLI_SOURCE = "cli"


def open_state(path: Path) -> Store:
    return Store.open(path)


async def record_cli_run(store: Store, app: App, references: Sequence[str]) -> AuditReport:
    """Audit with the store's caches and record the run (not replacing other results: a CLI
    run may audit a subset). A store that cannot record the run is a StateError, as the user
    asked for the run to be kept."""
    run_id = await asyncio.to_thread(store.start_run, CLI_SOURCE, "cli")
    try:
        report = await app.audit(references)
    except BaseException:
        await asyncio.to_thread(store.abandon_run, run_id, "the audit did not finish")
        raise
    await asyncio.to_thread(
        store.finish_run, run_id, CLI_SOURCE, report.targets, replace_source=False
    )
    return report


class _Recording:
    """A sink that hands each target on to ``sink`` and keeps only what the store will write
    of it (:class:`~auditor.state.store.RecordedTarget`), not the result."""

    def __init__(self, sink: ReportSink) -> None:
        self.sink = sink
        self.records: list[RecordedTarget] = []

    def begin(self, start: ReportStart) -> None:
        self.sink.begin(start)

    def add(self, target: TargetResult) -> None:
        self.records.append(recorded(target))
        self.sink.add(target)


async def record_cli_stream(
    store: Store, app: App, references: Sequence[str], sink: ReportSink
) -> None:
    """``record_cli_run`` with each target handed to ``sink`` as it is decided (the streamed
    table, JSON and SARIF): the run is recorded at the end, in one transaction as before,
    from the encoded targets kept on the way (the same rows ``record_cli_run`` writes)."""
    run_id = await asyncio.to_thread(store.start_run, CLI_SOURCE, "cli")
    recording = _Recording(sink)
    try:
        await app.audit_into(references, recording)
    except BaseException:
        await asyncio.to_thread(store.abandon_run, run_id, "the audit did not finish")
        raise
    await asyncio.to_thread(
        store.finish_run, run_id, CLI_SOURCE, recording.records, replace_source=False
    )
