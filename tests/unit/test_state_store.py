"""The state store on real SQLite files: migrations, transactions, failures, queries."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from auditor.errors import StateError
from auditor.model import TargetResult, TargetStatus, WaiverNote
from auditor.state import schema
from auditor.state.codec import decode_target, encode_target
from auditor.state.store import HEAD_REVISION, MIGRATIONS, Store
from tests.support.results import AMD64, ARM64, INDEX, multiplatform, unreachable

REF = "127.0.0.1:5000/team/app:v1"
REF2 = "127.0.0.1:5000/team/app:v2"
SOURCE = "registry:127.0.0.1:5000"


def _upgrade(path: Path, revision: str) -> None:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
    engine.dispose()


def _write_previous_revision_run(
    path: Path, targets: list[TargetResult] | None, result: str
) -> int:
    """A run as revisions 0001-0003 stored it: the whole report as one ``runs.report`` text
    (compact JSON list, what their ``finish_run`` wrote; NULL for a run that never finished)
    and the latest result per target in ``target_results``."""
    at = "2026-11-30 01:00:00.000000"
    report = (
        None if targets is None
        else json.dumps([encode_target(t) for t in targets], separators=(",", ":"))
    )
    with closing(sqlite3.connect(path)) as conn, conn:
        run = conn.execute(
            "INSERT INTO runs (source, trigger, started_at, finished_at, result, targets,"
            " compliant, noncompliant, errors, duration_seconds, report)"
            " VALUES (?, 'schedule', ?, ?, ?, ?, 0, 0, 0, 1.0, ?)",
            (SOURCE, at, at, result, len(targets or ()), report),
        ).lastrowid
        assert run is not None
        for t in targets or ():
            conn.execute("DELETE FROM target_results WHERE reference = ?", (t.reference,))
            conn.execute(
                "INSERT INTO target_results VALUES (?, ?, '127.0.0.1:5000', 'team/app', ?, ?,"
                " ?, ?, ?, ?)",
                (t.reference, SOURCE, t.reference.rsplit(":", 1)[1], t.digest, t.status.value,
                 run, at, json.dumps(encode_target(t), separators=(",", ":"))),
            )
    return run


def test_codec_round_trip_is_lossless() -> None:
    noncompliant = multiplatform(REF, signed_platforms=False)
    note = WaiverNote("127.0.0.1:5000/team/*", "vendor image", "sec-team",
                      datetime(2031, 1, 1, tzinfo=UTC))
    waived = replace(
        noncompliant,
        findings=tuple(replace(f, waiver=note) for f in noncompliant.findings),
    )
    assert waived.findings
    for target in (multiplatform(REF, signed_platforms=True), unreachable(REF), waived):
        data = json.loads(json.dumps(encode_target(target)))
        assert decode_target(data) == target


@pytest.mark.parametrize("bad", [{}, {"v": 1}, {"v": 1, "reference": "x", "status": "weird"},
                                 {"v": 2, "reference": "x", "status": "compliant"}, [], "text"])
def test_codec_refuses_malformed_data(bad: object) -> None:
    with pytest.raises(StateError):
        decode_target(bad)


def test_migrates_an_empty_database_to_every_table(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "a.db")
    assert store.revision() == HEAD_REVISION
    names = set(inspect(store.engine).get_table_names())
    assert set(schema.metadata.tables) <= names
    store.close()


def test_the_head_revision_constant_is_alembics_head() -> None:
    """``HEAD_REVISION`` lets a database already at the newest schema open without Alembic;
    it must be the head of the migrations that ship."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def test_opening_a_database_at_the_head_needs_no_alembic(tmp_path: Path) -> None:
    Store.open(tmp_path / "head.db").close()
    code = (
        "import sys; from pathlib import Path; from auditor.state.store import Store; "
        f"Store.open(Path({str(tmp_path / 'head.db')!r})).close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_migrates_the_previous_schema_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _upgrade(path, "0001")
    _write_previous_revision_run(path, [multiplatform(REF, signed_platforms=False)], "error")
    assert "manifest_cache" not in inspect(create_engine(f"sqlite:///{path}")).get_table_names()

    store = Store.open(path)
    assert store.revision() == HEAD_REVISION
    assert [t.reference for t in store.latest_results()] == [REF]
    store.cache_manifest(SOURCE, "team/app", INDEX, "application/x", b"{}")
    assert store.cached_manifest(SOURCE, "team/app", INDEX) == ("application/x", b"{}")
    store.close()


def test_0004_splits_each_runs_report_into_rows_the_report_is_rebuilt_from(
    tmp_path: Path,
) -> None:
    """A database written at 0003 (one ``runs.report`` text per run) reads the same after the
    upgrade: each finished run's report target by target in its order, an empty run's report
    empty, an abandoned run's none; and the downgrade gives back the very texts."""
    path = tmp_path / "0003.db"
    _upgrade(path, "0003")
    first = [multiplatform(REF, signed_platforms=False), unreachable(REF2)]
    second = [unreachable(REF2), multiplatform(REF, signed_platforms=True)]
    runs = [
        _write_previous_revision_run(path, first, "noncompliant"),
        _write_previous_revision_run(path, [], "error"),
        _write_previous_revision_run(path, None, "abandoned"),
        _write_previous_revision_run(path, second, "noncompliant"),
    ]
    with closing(sqlite3.connect(path)) as conn:
        texts = conn.execute("SELECT id, report FROM runs ORDER BY id").fetchall()

    store = Store.open(path)
    assert store.revision() == HEAD_REVISION
    reports = [store.run(r) for r in runs]
    assert [r.report if r else "missing" for r in reports] == [
        tuple(first), (), None, tuple(second)
    ]
    assert [r.id for r in store.runs()] == runs[::-1]
    assert {t.reference: t.result for t in store.latest_results()} == {
        REF: second[1], REF2: second[0]
    }
    assert "report" not in {c["name"] for c in inspect(store.engine).get_columns("runs")}
    store.close()

    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
        conn.commit()
    engine.dispose()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT id, report FROM runs ORDER BY id").fetchall() == texts


def test_refuses_a_database_from_a_newer_auditor(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StateError, match="9999 is newer than this auditor knows"):
        Store.open(path)


def test_finish_run_records_results_history_and_counts(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    first = store.start_run(SOURCE, "startup")
    changes = store.finish_run(
        first, SOURCE, [multiplatform(REF, signed_platforms=False)], replace_source=True
    )
    assert {(c.node_digest, c.previous, c.status) for c in changes} == {
        (INDEX, None, "signed"), (AMD64, None, "unsigned"), (ARM64, None, "unsigned"),
    }
    second = store.start_run(SOURCE, "schedule")
    changes = store.finish_run(
        second, SOURCE, [multiplatform(REF, signed_platforms=True)], replace_source=True
    )
    assert {(c.node_digest, c.previous, c.status) for c in changes} == {
        (AMD64, "unsigned", "signed"), (ARM64, "unsigned", "signed"),
    }
    history = store.node_history(REF)
    assert [(h.node_digest, h.status) for h in history if h.node_digest == AMD64] == [
        (AMD64, "unsigned"), (AMD64, "signed"),
    ]
    latest = store.latest_result(REF)
    assert latest is not None
    assert latest.result.status is TargetStatus.COMPLIANT
    assert (latest.registry, latest.repository, latest.tag) == ("127.0.0.1:5000", "team/app", "v1")
    record = store.run(second)
    assert record is not None
    assert record.report is not None
    assert (record.result, record.targets, record.compliant) == ("compliant", 1, 1)
    assert record.report[0] == multiplatform(REF, signed_platforms=True)
    assert store.last_runs()[SOURCE].id == second
    assert SOURCE in store.last_success()
    store.close()


def test_an_unreachable_target_keeps_its_nodes_last_known_status(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    run = store.start_run(SOURCE, "schedule")
    store.finish_run(run, SOURCE, [multiplatform(REF, signed_platforms=True)], replace_source=True)
    run = store.start_run(SOURCE, "schedule")
    changes = store.finish_run(run, SOURCE, [unreachable(REF)], replace_source=True)
    assert changes == []
    assert [h.status for h in store.node_history(REF)] == ["signed"] * 3
    stored = store.latest_result(REF)
    assert stored is not None
    assert stored.result.status is TargetStatus.ERROR
    store.close()


def test_a_whole_source_run_drops_deleted_tags_but_an_ad_hoc_run_does_not(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    both = [multiplatform(REF, signed_platforms=True), multiplatform(REF2, signed_platforms=True)]
    store.finish_run(store.start_run(SOURCE, "schedule"), SOURCE, both, replace_source=True)
    one = [multiplatform(REF, signed_platforms=False)]
    store.finish_run(store.start_run(SOURCE, "api"), SOURCE, one, replace_source=False)
    assert [t.reference for t in store.latest_results()] == [REF, REF2]
    store.finish_run(store.start_run(SOURCE, "schedule"), SOURCE, one, replace_source=True)
    assert [t.reference for t in store.latest_results()] == [REF]
    store.close()


def test_a_crash_mid_write_leaves_the_previous_state_and_the_run_abandoned(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = Store.open(path)
    good = [multiplatform(REF, signed_platforms=True)]
    store.finish_run(store.start_run(SOURCE, "schedule"), SOURCE, good, replace_source=True)
    run = store.start_run(SOURCE, "schedule")
    # A target whose second node cannot be encoded fails the transaction half-way through.
    broken = replace(good[0], nodes=(good[0].nodes[0], "not a node"))  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        store.finish_run(
            run, SOURCE, [multiplatform(REF2, signed_platforms=False), broken],
            replace_source=True,
        )
    store.close()  # the process "dies" here: the run is still 'running'
    reopened = Store.open(path)
    assert [t.reference for t in reopened.latest_results()] == [REF]
    assert reopened.node_history(REF2) == []
    record = reopened.run(run)
    assert record is not None
    assert record.result == "abandoned"
    reopened.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files anyway")
def test_a_read_only_database_reads_but_refuses_writes_clearly(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store.open(path)
    store.finish_run(
        store.start_run(SOURCE, "schedule"), SOURCE,
        [multiplatform(REF, signed_platforms=True)], replace_source=True,
    )
    store.close()
    os.chmod(path, 0o400)
    os.chmod(tmp_path, 0o500)
    try:
        reader = Store.open(path, migrate=False)
        assert [t.reference for t in reader.latest_results()] == [REF]
        with pytest.raises(StateError, match=r"state .*s\.db: .*readonly"):
            reader.check_writable()
        reader.close()
    finally:
        os.chmod(tmp_path, 0o700)
        os.chmod(path, 0o600)


def test_a_read_only_database_through_the_driver(tmp_path: Path) -> None:
    """As root chmod does not stop writes, so the file is opened read-only by URI instead."""
    path = tmp_path / "s.db"
    Store.open(path).close()
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    reader = Store(engine, f"state {path}")
    with pytest.raises(StateError, match=r"readonly"):
        reader.check_writable()
    with pytest.raises(StateError, match=r"readonly"):
        reader.start_run(SOURCE, "schedule")
    reader.close()


def test_a_locked_database_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditor.state.store as store_module

    monkeypatch.setattr(store_module, "LOCK_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "s.db"
    store = Store.open(path)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StateError, match="database is locked"):
            store.check_writable()
    finally:
        holder.rollback()
        holder.close()
    store.check_writable()
    store.close()


def test_keeps_only_the_newest_runs(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    ids = []
    for _ in range(5):
        run = store.start_run(SOURCE, "schedule")
        store.finish_run(run, SOURCE, [unreachable(REF)], replace_source=True, keep_runs=2)
        ids.append(run)
    assert [r.id for r in store.runs()] == ids[-2:][::-1]
    store.close()


def test_verdict_cache_is_keyed_by_trust_hash(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    verdict = multiplatform(REF, signed_platforms=True).nodes[1].signatures[0]
    store.cache_verdict("h1", verdict.digest, AMD64, "scope", verdict)
    cached = store.cached_verdict("h1", verdict.digest, AMD64, "scope")
    assert cached is not None
    assert cached[0] == verdict
    assert cached[1] == verdict.recheck_at
    assert store.cached_verdict("h2", verdict.digest, AMD64, "scope") is None
    assert store.forget_verdicts_except("h2") == 1
    assert store.cached_verdict("h1", verdict.digest, AMD64, "scope") is None
    store.close()


def test_cache_writes_are_staged_until_flushed_and_a_crash_only_loses_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = Store.open(path)
    verdict = multiplatform(REF, signed_platforms=True).nodes[1].signatures[0]
    store.cache_verdict("h1", verdict.digest, AMD64, "scope", verdict)
    store.cache_blob("src", "repo", "sha256:" + "b" * 64, b"envelope")
    store.cache_manifest("src", "repo", "sha256:" + "c" * 64, "application/x", b"{}")
    # Read back before any write: the staged rows answer.
    assert store.cached_blob("src", "repo", "sha256:" + "b" * 64) == b"envelope"
    assert store.cached_manifest("src", "repo", "sha256:" + "c" * 64) == ("application/x", b"{}")
    # Another connection (another process) sees nothing yet: a crash here loses the entries.
    other = Store.open(path, migrate=False)
    assert other.cached_blob("src", "repo", "sha256:" + "b" * 64) is None
    assert other.cached_verdict("h1", verdict.digest, AMD64, "scope") is None
    store.flush_caches()
    assert other.cached_blob("src", "repo", "sha256:" + "b" * 64) == b"envelope"
    cached = other.cached_verdict("h1", verdict.digest, AMD64, "scope")
    assert cached is not None
    assert cached[0] == verdict
    # Closing writes what is still staged.
    store.cache_blob("src", "repo", "sha256:" + "d" * 64, b"late")
    store.close()
    assert other.cached_blob("src", "repo", "sha256:" + "d" * 64) == b"late"
    other.close()


def test_staged_cache_writes_are_flushed_early_past_the_row_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditor.state.store as store_module

    monkeypatch.setattr(store_module, "STAGED_ROWS", 3)
    path = tmp_path / "s.db"
    store = Store.open(path)
    other = Store.open(path, migrate=False)
    for n in range(3):
        store.cache_blob("src", "repo", f"sha256:{n:064x}", b"x")
    assert all(
        other.cached_blob("src", "repo", f"sha256:{n:064x}") == b"x" for n in range(3)
    )
    store.close()
    other.close()


def _sqlite_schema(path: Path) -> dict[tuple[str, str], str | None]:
    with closing(sqlite3.connect(path)) as conn:
        return {(t, n): s for t, n, s in conn.execute("SELECT type, name, sql FROM sqlite_master")}


def test_a_new_database_gets_exactly_the_schema_the_migrations_make(tmp_path: Path) -> None:
    """A first run creates the newest schema from schema.py without Alembic; it must be the
    very schema replaying every migration gives (tables, columns, defaults, indexes), so a
    later migration finds what it expects."""
    Store.open(tmp_path / "fresh.db").close()
    _upgrade(tmp_path / "migrated.db", "head")
    fresh = _sqlite_schema(tmp_path / "fresh.db")
    assert fresh == _sqlite_schema(tmp_path / "migrated.db")
    assert ("table", "alembic_version") in fresh
    reopened = Store.open(tmp_path / "fresh.db")
    assert reopened.revision() == HEAD_REVISION
    reopened.close()


def test_a_new_database_is_created_without_alembic(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from auditor.state.store import Store; "
        f"Store.open(Path({str(tmp_path / 'new.db')!r})).close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
