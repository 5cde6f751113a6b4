"""A run recorded from what a streamed run kept of each target (``RecordedTarget``: the encoded
result and the node rows) writes the very rows a run recorded from the results writes."""

from __future__ import annotations

import gc
import sqlite3
import weakref
from collections.abc import Sequence
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from auditor.model import ReportStart, TargetResult
from auditor.state.runs import _Recording
from auditor.state.store import RecordedTarget, Store, recorded
from tests.support.results import multiplatform, unreachable

SOURCE = "registry:127.0.0.1:5000"
AT = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
TABLES = ("runs", "run_targets", "target_results", "node_status", "node_history")


def _runs(
    path: Path, *batches: Sequence[TargetResult | RecordedTarget]
) -> dict[str, list[tuple[object, ...]]]:
    store = Store.open(path)
    for i, batch in enumerate(batches):
        run = store.start_run(SOURCE, "cli", at=AT)
        store.finish_run(run, SOURCE, batch, replace_source=False, at=AT.replace(minute=i + 1))
    store.close()
    with closing(sqlite3.connect(path)) as conn:
        return {
            t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)  # noqa: S608
            for t in TABLES
        }


def test_recorded_targets_write_the_same_rows_as_results(tmp_path: Path) -> None:
    ref, other = "127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app:v2"
    first = [multiplatform(ref, signed_platforms=False), unreachable(other)]
    second = [
        multiplatform(ref, signed_platforms=True), multiplatform(other, signed_platforms=True)
    ]
    from_results = _runs(tmp_path / "a.db", first, second, [])
    from_records = _runs(
        tmp_path / "b.db", [recorded(t) for t in first], [recorded(t) for t in second], []
    )
    assert from_records == from_results
    assert len(from_results["node_history"]) > 3  # changes were recorded: the rows are real
    # the runs' reports, target by target in order (the empty third run has no rows)
    rows = sorted(from_results["run_targets"])
    assert [row[:2] for row in rows] == [(1, 0), (1, 1), (2, 0), (2, 1)]


def test_the_comparison_sees_a_different_run(tmp_path: Path) -> None:
    ref = "127.0.0.1:5000/team/app:v1"
    signed = _runs(tmp_path / "a.db", [multiplatform(ref, signed_platforms=True)])
    unsigned = _runs(tmp_path / "b.db", [recorded(multiplatform(ref, signed_platforms=False))])
    assert signed["target_results"] != unsigned["target_results"]


class _Counting:
    def __init__(self) -> None:
        self.added = 0

    def begin(self, start: ReportStart) -> None:
        pass

    def add(self, target: TargetResult) -> None:
        self.added += 1


def test_recording_keeps_no_result() -> None:
    inner = _Counting()
    recording = _Recording(inner)
    recording.begin(ReportStart(AT))
    refs: list[weakref.ref[object]] = []
    for i in range(20):
        target = multiplatform(f"127.0.0.1:5000/team/app:v{i}", signed_platforms=bool(i % 2))
        target = replace(target, nodes=tuple(replace(v) for v in target.nodes))
        refs.append(weakref.ref(target))
        refs.extend(weakref.ref(v) for v in target.nodes)
        recording.add(target)
        del target
    gc.collect()
    assert len(refs) > 20
    assert all(ref() is None for ref in refs)  # results and verdicts let go
    assert inner.added == 20
    assert [r.reference for r in recording.records] == [
        f"127.0.0.1:5000/team/app:v{i}" for i in range(20)
    ]
