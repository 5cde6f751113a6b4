"""The streaming JSON and SARIF writers: the very bytes of the whole-report rendering, written
target by target, with nothing kept per target."""

from __future__ import annotations

import gc
import io
import json
import weakref
from dataclasses import replace

import pytest

from auditor.coverage import Tally, exit_code, summary_exit_code
from auditor.formats import json as json_format
from auditor.formats import sarif
from auditor.formats.json import JsonWriter
from auditor.formats.sarif import SarifWriter
from auditor.model import AuditReport, Finding, ReportStart
from tests.unit.test_formats import sample_report
from tests.unit.test_report_metadata import INFO, NOTES


def _reports() -> list[AuditReport]:
    full = replace(sample_report(), info=INFO, notes=NOTES)
    odd = replace(
        full.targets[0],
        findings=(*full.targets[0].findings, Finding("new-kind", "something new", "r")),
    )
    compliant = replace(sample_report(), targets=sample_report().targets[1:2])  # no notices
    return [
        sample_report(), full, replace(full, targets=()), replace(full, targets=(odd,)), compliant
    ]


@pytest.mark.parametrize("index", range(5))
def test_json_writer_writes_exactly_the_whole_document(index: int) -> None:
    report = _reports()[index]
    whole = json.dumps(json_format.to_dict(report), indent=2, ensure_ascii=False) + "\n"
    assert json_format.render(report) == whole


@pytest.mark.parametrize("index", range(5))
@pytest.mark.parametrize("workspace", [None, "/work/repo"])
def test_sarif_writer_writes_exactly_the_whole_document(index: int, workspace: str | None) -> None:
    report = _reports()[index]
    data = sarif.to_dict(report, category="images/prod", workspace=workspace)
    whole = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    assert sarif.render(report, category="images/prod", workspace=workspace) == whole


def test_sarif_writer_caps_results_as_the_whole_document_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sarif, "MAX_RESULTS", 1)
    report = _reports()[1]
    data = sarif.to_dict(report)
    assert len(data["runs"][0]["results"]) == 1
    notes = data["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert any("more findings left out" in n["message"]["text"] for n in notes)
    assert sarif.render(report) == json.dumps(data, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("make", [JsonWriter, SarifWriter])
def test_writers_keep_nothing_of_a_target_once_written(make: type) -> None:
    out = io.StringIO()
    writer = make(out)
    writer.begin(ReportStart(sample_report().generated_at, INFO, NOTES))
    refs = []
    for template in sample_report().targets * 50:
        target = replace(template)  # a new object each time
        refs.append(weakref.ref(target))
        writer.add(target)
        del target
    gc.collect()
    assert all(ref() is None for ref in refs)  # the writer held on to none of them
    summary = writer.finish()
    once = Tally()
    for target in sample_report().targets:
        once.add(target)
    assert dict(summary.targets) == {s: n * 50 for s, n in once.targets.items()}
    assert dict(summary.nodes) == {s: n * 50 for s, n in once.nodes.items()}
    assert summary_exit_code(summary) == exit_code(sample_report().targets)
    document = json.loads(out.getvalue())  # a whole, valid document, every target in it
    if make is JsonWriter:
        assert len(document["targets"]) == 50 * len(sample_report().targets)
    else:
        results = len(json.loads(sarif.render(sample_report()))["runs"][0]["results"])
        assert len(document["runs"][0]["results"]) == 50 * results


def test_summary_exit_code_matches_exit_code() -> None:
    targets = sample_report().targets
    for chosen in (targets[:0], targets[1:2], targets[2:], targets):
        tally = Tally()
        for target in chosen:
            tally.add(target)
        assert summary_exit_code(tally.summary()) == exit_code(chosen)
