"""``audit now --format json|sarif`` streams its report; a reader sees the same document as the
whole-report path (the one a ``--state`` run still takes). The real binary, a signed layout
and the real registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.binary import run_auditor
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import signed_checkout


@pytest.fixture(scope="module")
def workspace(registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return signed_checkout(registry.host, tmp_path_factory.mktemp("streamed"), "streamed").root


def _without_times(value: Any) -> Any:
    """The document less what differs between two runs by the clock alone."""
    if isinstance(value, dict):
        return {
            k: _without_times(v)
            for k, v in value.items()
            if k not in ("generated_at", "endTimeUtc", "timeUtc", "id")
        }
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_streamed_report_reads_as_the_collected_one(workspace: Path, fmt: str) -> None:
    streamed = run_auditor(["audit", "now", "--format", fmt, "-o", f"s.{fmt}"], cwd=workspace)
    collected = run_auditor(
        ["audit", "now", "--format", fmt, "-o", f"c.{fmt}", "--state", "state.db"],
        cwd=workspace,
    )
    assert "Traceback" not in streamed.stderr + collected.stderr
    assert streamed.code == collected.code == 1  # the sample has unsigned platforms
    assert streamed.stderr.split(" (report in ")[0] == collected.stderr.split(" (report in ")[0]
    ours = json.loads((workspace / f"s.{fmt}").read_text(encoding="utf-8"))
    theirs = json.loads((workspace / f"c.{fmt}").read_text(encoding="utf-8"))
    assert _without_times(ours) == _without_times(theirs)
    if fmt == "json":
        assert len(ours["targets"]) >= 4  # the registry's tags and the layout's
    else:
        assert ours["runs"][0]["results"]
    assert not list(workspace.glob(f".s.{fmt}.*"))  # no temporary file left behind


def test_streamed_json_on_stdout(workspace: Path) -> None:
    run = run_auditor(["audit", "now", "--format", "json"], cwd=workspace)
    assert run.code == 1
    report = run.report
    assert report["summary"]["targets"]["noncompliant"] >= 1
    assert [t["reference"] for t in report["targets"]]


def test_a_configuration_error_leaves_no_report_file(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "auditor.yaml").write_text(
        yaml.safe_dump({"trust": {"policy": str(tmp_path / "missing.json")}}), encoding="utf-8"
    )
    run = run_auditor(
        ["audit", "now", "oci-layout:" + str(workspace / "build/layout"), "--format", "json",
         "-o", "out.json"],
        cwd=tmp_path,
    )
    assert run.code == 2, run.stderr
    assert not (tmp_path / "out.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.json")] == []
