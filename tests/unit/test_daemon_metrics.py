"""The metrics collector's exposition, compared to the expected text, and its limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from auditor.daemon.metrics import DaemonMetrics, SeriesLimits, Snapshot, StateCollector
from auditor.model import Platform, SignatureStatus, TargetResult
from auditor.state.store import RunRecord, StoredTarget
from auditor.waivers import Waiver, apply_waivers
from tests.support.daemon import parse_metrics, select
from tests.support.results import EXPIRY, multiplatform, unreachable

DATA = Path(__file__).resolve().parents[1] / "data"
T = datetime(2030, 1, 1, tzinfo=UTC)
SOURCE = "registry:r:5000"


def _stored(tag: str, result: TargetResult) -> StoredTarget:
    return StoredTarget(result.reference, SOURCE, "r:5000", "team/app", tag, 1, T, result)


def _run(targets: int, errors: int) -> RunRecord:
    return RunRecord(1, SOURCE, "schedule", T, T, "noncompliant", targets, 0, 0, errors, 1.0, None)


# v1's linux/arm64 gap is an accepted exception: its finding is waived, amd64's stays open.
ARM64_WAIVER = Waiver(
    image="r:5000/team/app:v1",
    reason="arm64 is signed by another team",
    owner="platform@example.com",
    expires=datetime(2031, 1, 1, tzinfo=UTC),
    platforms=(Platform("linux", "arm64"),),
)


def _snapshot(*, with_v3: bool = True) -> Snapshot:
    v1 = multiplatform("r:5000/team/app:v1", signed_platforms=False)
    targets = [
        _stored("v1", apply_waivers(v1, [ARM64_WAIVER], T)),
        _stored("v2", multiplatform("r:5000/team/app:v2", signed_platforms=True)),
    ]
    if with_v3:
        targets.append(_stored("v3", unreachable("r:5000/team/app:v3")))
    return Snapshot(
        targets=targets,
        last_runs={"r:5000": _run(3, 1), "down:5000": _run(2, 2)},
        last_success={"r:5000": T},
    )


def _exposition(snapshot: Snapshot, limits: SeriesLimits) -> str:
    registry = CollectorRegistry()
    collector = StateCollector(limits)
    registry.register(collector)
    collector.update(snapshot)
    return generate_latest(registry).decode()


# The expected exposition, checked by hand: with max_series=6 the three targets and the first
# three required nodes (v1's index and both platforms) fit; v2's three nodes, v1's waived
# arm64 series and all four expiry series are dropped and counted.
CAPPED = (DATA / "metrics-capped.prom").read_text(encoding="utf-8")

def test_exposition_with_a_series_cap_matches_the_expected_text() -> None:
    assert _exposition(_snapshot(), SeriesLimits(per_node=True, max_series=6)) == CAPPED


def test_uncapped_exposition_has_every_required_node_and_expiry() -> None:
    samples = parse_metrics(_exposition(_snapshot(), SeriesLimits()))
    signed = select(samples, "auditor_node_signed", tag="v2")
    assert {dict(k)["platform"]: v for k, v in signed.items()} == {
        "": 1.0, "linux/amd64": 1.0, "linux/arm64": 1.0,
    }
    expiry = select(samples, "auditor_signature_expiry_timestamp_seconds", tag="v2")
    assert set(expiry.values()) == {EXPIRY.timestamp()}
    assert len(expiry) == 3
    # v1's platforms are unsigned: no expiry for them, only for its signed index.
    assert len(select(samples, "auditor_signature_expiry_timestamp_seconds", tag="v1")) == 1
    assert set(select(samples, "auditor_series_dropped").values()) == {0.0}


def test_per_node_off_leaves_out_node_series() -> None:
    text = _exposition(_snapshot(), SeriesLimits(per_node=False))
    assert "auditor_node_signed{" not in text
    assert "auditor_signature_expiry_timestamp_seconds{" not in text
    assert 'auditor_target_compliant{registry="r:5000",repository="team/app",tag="v1"} 0.0' in text
    assert 'auditor_series_dropped{metric="auditor_node_signed"} 0.0' in text


def test_deleted_images_drop_out_with_the_next_snapshot() -> None:
    registry = CollectorRegistry()
    collector = StateCollector(SeriesLimits())
    registry.register(collector)
    collector.update(_snapshot())
    assert 'tag="v3"' in generate_latest(registry).decode()
    collector.update(_snapshot(with_v3=False))
    assert 'tag="v3"' not in generate_latest(registry).decode()


def test_daemon_metrics_names_types_and_labels() -> None:
    metrics = DaemonMetrics(SeriesLimits())
    metrics.declare(["r:5000"])
    metrics.record_run("r:5000", "compliant", 0.3)
    metrics.count_response("r:5000", 200)
    text = generate_latest(metrics.registry).decode()
    assert "# TYPE auditor_audit_duration_seconds histogram" in text
    assert 'auditor_audit_duration_seconds_bucket{le="0.5",registry="r:5000"} 1.0' in text
    assert "# TYPE auditor_audits_total counter" in text
    assert 'auditor_audits_total{registry="r:5000",result="compliant"} 1.0' in text
    assert 'auditor_audits_total{registry="r:5000",result="error"} 0.0' in text
    assert 'auditor_registry_requests_total{code="200",registry="r:5000"} 1.0' in text
    assert 'auditor_build_info{version="' in text
    assert "auditor_state_writable 1.0" in text


def test_signatures_are_counted_by_format_and_verdict() -> None:
    """Mixed formats on one image: each signature counted under its own format."""
    result = multiplatform("r:5000/team/app:v4", signed_platforms=True)
    first = result.nodes[1]
    cosign = replace(first.signatures[0], format="cosign/legacy", status=SignatureStatus.INVALID)
    nodes = (result.nodes[0], replace(first, signatures=(cosign,)), *result.nodes[2:])
    snapshot = Snapshot(targets=[_stored("v4", replace(result, nodes=nodes))])
    samples = parse_metrics(_exposition(snapshot, SeriesLimits()))
    counted = {
        (dict(k)["format"], dict(k)["status"]): v
        for k, v in select(samples, "auditor_signatures").items()
    }
    assert counted == {("notation/jws", "valid"): 2.0, ("cosign/legacy", "invalid"): 1.0}


def test_waived_findings_are_counted_apart() -> None:
    """auditor_findings counts open findings only; auditor_findings_waived the accepted ones,
    by rule, so neither a dashboard nor an alert reads an exception as an open problem."""
    samples = parse_metrics(_exposition(_snapshot(), SeriesLimits()))
    open_ = {dict(k)["rule"]: v for k, v in select(samples, "auditor_findings").items()}
    waived = {dict(k)["rule"]: v for k, v in select(samples, "auditor_findings_waived").items()}
    assert open_ == {"unsigned-platform": 1.0, "unchecked": 1.0}
    assert waived == {"unsigned-platform": 1.0}
    # the node whose only finding is waived is marked, so alert rules can leave it out
    marked = {(dict(k)["tag"], dict(k)["platform"]): v
              for k, v in select(samples, "auditor_node_waived").items()}
    assert marked == {("v1", "linux/arm64"): 1.0}
    # A waiver that has expired by the audit is no waiver: both gaps are open again.
    expired = replace(ARM64_WAIVER, expires=datetime(2029, 1, 1, tzinfo=UTC))
    v1 = multiplatform("r:5000/team/app:v1", signed_platforms=False)
    snapshot = Snapshot(targets=[_stored("v1", apply_waivers(v1, [expired], T))])
    samples = parse_metrics(_exposition(snapshot, SeriesLimits()))
    assert select(samples, "auditor_findings_waived") == {}
    assert select(samples, "auditor_node_waived") == {}
    assert sum(select(samples, "auditor_findings").values()) == 2.0
