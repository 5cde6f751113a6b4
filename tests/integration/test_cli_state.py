"""``auditor audit now --state PATH``: the run is recorded and the next one uses the caches;
a state that cannot be written is a clear error (exit 3), never a traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.daemon import SignedIndexImage
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import audit_json, isolate_environment


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path / "env")


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608


@pytest.mark.registry
def test_audit_now_with_state_records_runs_and_reuses_caches(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    image = SignedIndexImage.create(tmp_path / "image", registry.host, "cli/state")
    reference = f"{registry.host}/{image.repository}:v1"
    state = tmp_path / "auditor.db"
    trust = ("--trust-policy", image.policy, "--trust-store", image.store)

    first = audit_json(reference, *trust, "--state", state)
    assert first.code == 1, first.stderr  # platforms unsigned
    assert _count(state, "runs") == 1
    manifests, verdicts = _count(state, "manifest_cache"), _count(state, "verdict_cache")
    # The index (kept by its digest: the next audit asks for the tag "unless it is still
    # this") and the signature manifest; the platforms are judged on their index descriptor,
    # not fetched (verify_children_exist is off), so they are not in the cache.
    assert manifests == 2
    assert verdicts == 1  # the index's signature

    second = audit_json(reference, *trust, "--state", state)
    assert second.code == 1
    assert second.report["targets"] == first.report["targets"]
    assert _count(state, "runs") == 2
    assert (_count(state, "manifest_cache"), _count(state, "verdict_cache")) == (
        manifests, verdicts,
    )
    with sqlite3.connect(state) as conn:
        results = [r[0] for r in conn.execute("SELECT result FROM runs ORDER BY id")]
    assert results == ["noncompliant", "noncompliant"]


def test_audit_now_with_an_unusable_state_is_a_one_line_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-directory.db"
    folder.mkdir()
    run = audit_json("127.0.0.1:1/x:y", "--state", folder)
    assert run.code == 3
    assert run.stderr.startswith("error: state ")
    assert "is a directory" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1
