"""``tags.limit`` keeps the newest tags and says how many it left out; a repository glob that
matches nothing is a warning. The real binary against the real registry, in every format."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from auditor.layout.writer import tag_manifest
from devkit.samples import write_sample_layout
from tests.support.binary import run_auditor
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import push

TAGS = ["1.2.0", "1.10.0", "1.9.1", "latest", "nightly"]


@pytest.fixture(scope="module")
def workspace(registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tags-limit")
    sample = write_sample_layout(root / "layout", name="limit")
    for tag in TAGS:
        tag_manifest(sample.path, sample.single, tag)
    repository = f"limit-{uuid.uuid4().hex[:8]}/app"
    push(registry.host, sample.path, repository, tags=TAGS)
    config = {
        "registries": [
            {
                "url": f"http://{registry.host}",
                "repositories": [repository, "no-such-team-*/app"],
                "tags": {"limit": 2},
            }
        ],
    }
    (root / "auditor.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (root / "repository").write_text(f"{registry.host}/{repository}", encoding="utf-8")
    return root


def _report(root: Path, fmt: str) -> str:
    out = root / f"report.{fmt}"
    run = run_auditor(["audit", "now", "--format", fmt, "-o", out], cwd=root)
    assert "Traceback" not in run.stderr
    assert run.code == 1  # the sample is unsigned
    # one line per target as it finished (not a terminal), then the summary line
    *finished, summary = run.stderr.splitlines()
    assert [line.split()[:2] for line in finished] == [["[1/2]", "noncompliant"],
                                                       ["[2/2]", "noncompliant"]]
    assert summary.startswith("2 targets: 0 compliant, 2 noncompliant, 0 error; ")
    assert "; 2 warnings (report in " in summary  # the summary line says it too
    return out.read_text(encoding="utf-8")


def test_the_newest_tags_are_audited_and_the_rest_counted(workspace: Path) -> None:
    repository = (workspace / "repository").read_text(encoding="utf-8")
    data = json.loads(_report(workspace, "json"))
    audited = sorted(t["reference"].rsplit(":", 1)[1] for t in data["targets"])
    assert audited == ["1.10.0", "1.9.1"]  # by name it would be 1.10.0 and 1.2.0
    unmatched, limited = data["notes"]  # the catalog is read before the tags
    assert limited["kind"] == "tags-left-out"
    assert limited["subject"] == repository
    assert limited["left_out"] == 3
    assert limited["message"] == (
        f"{repository}: 3 of 5 tags not audited: tags.limit is 2, the newest were kept "
        "(version order, then name); left out: 1.2.0, nightly, latest"
    )
    assert unmatched["kind"] == "no-repository-matched"
    assert "'no-such-team-*/app' matched none" in unmatched["message"]


def test_sarif_and_table_say_it_too(workspace: Path) -> None:
    (run,) = json.loads(_report(workspace, "sarif"))["runs"]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    ids = [n["descriptor"]["id"] for n in notes if n["level"] == "warning"]
    assert "tags-left-out" in ids
    assert "no-repository-matched" in ids
    left = next(n for n in notes if n["descriptor"]["id"] == "tags-left-out")
    assert left["properties"]["leftOut"] == 3
    lines = _report(workspace, "table").splitlines()
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == 2
    assert "3 of 5 tags not audited" in warnings[1]
    assert "matched none" in warnings[0]
