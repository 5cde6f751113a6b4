"""Prometheus metrics: a custom collector over the latest stored results, plus the daemon's own
counters.

The collector renders a ``Snapshot`` (latest results, last runs) at scrape time: a scrape never
triggers a crawl or a database read, deleted images drop out as soon as a run no longer sees
them, and when the store cannot be read the last good snapshot keeps being served. Per-node
series can be turned off (``metrics.per_node``) or capped (``metrics.max_series``); what a cap
drops is exported as ``auditor_series_dropped{metric}``, never silent.

``families`` is pure (snapshot in, metric families out) so the exposition is tested as text.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from auditor import __version__
from auditor.model import NodeStatus, SignatureStatus
from auditor.state.store import RunRecord, StoredTarget

TARGET_LABELS = ("registry", "repository", "tag")
NODE_LABELS = ("registry", "repository", "tag", "kind", "platform")
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass(frozen=True)
class Snapshot:
    """What the collector renders: read from the store after each run and at start-up."""

    targets: Sequence[StoredTarget] = ()
    # Newest finished run of each source, keyed by its ``registry`` label.
    last_runs: Mapping[str, RunRecord] = field(default_factory=dict)
    last_success: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class SeriesLimits:
    per_node: bool = True
    max_series: int = 50_000


def registry_label(source: str) -> str | None:
    """The ``registry`` label of a source key: the host, or ``oci-layout:PATH``; CLI runs have
    none (they are not a registry)."""
    kind, _, rest = source.partition(":")
    if kind == "registry":
        return rest
    if kind == "layout":
        return f"oci-layout:{rest}"
    return None


class _Budget:
    """Per-target and per-node series share ``max_series``; the rest is counted as dropped."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.dropped: Tally[str] = Tally()

    def take(self, metric: str) -> bool:
        if self.left > 0:
            self.left -= 1
            return True
        self.dropped[metric] += 1
        return False


def _min_merge(values: dict[tuple[str, ...], float], key: tuple[str, ...], value: float) -> None:
    """Two nodes with the same labels (a platform listed twice) share one series: the worse."""
    values[key] = min(value, values.get(key, value))


def families(snapshot: Snapshot, limits: SeriesLimits) -> list[Metric]:
    budget = _Budget(limits.max_series)
    compliant = GaugeMetricFamily(
        "auditor_target_compliant",
        "1 when the target's latest audit found it compliant, else 0",
        labels=TARGET_LABELS,
    )
    node_signed = GaugeMetricFamily(
        "auditor_node_signed",
        "1 when a required node carries a verified signature, else 0",
        labels=NODE_LABELS,
    )
    node_waived = GaugeMetricFamily(
        "auditor_node_waived",
        "1 for a required node whose every finding a current config waiver accepts (only "
        "those nodes have a series)",
        labels=NODE_LABELS,
    )
    expiry = GaugeMetricFamily(
        "auditor_signature_expiry_timestamp_seconds",
        "When the signature that makes a required node signed stops counting (Unix time)",
        labels=NODE_LABELS,
    )
    nodes = GaugeMetricFamily(
        "auditor_nodes", "Nodes by kind and status in the latest audits",
        labels=("registry", "repository", "kind", "status"),
    )
    findings = GaugeMetricFamily(
        "auditor_findings",
        "Open findings (not accepted by a waiver) by rule in the latest audits",
        labels=("registry", "repository", "rule"),
    )
    waived = GaugeMetricFamily(
        "auditor_findings_waived",
        "Findings a current config waiver accepts, by rule, in the latest audits",
        labels=("registry", "repository", "rule"),
    )
    signatures = GaugeMetricFamily(
        "auditor_signatures",
        "Signatures by format (notation/jws, cosign/bundle, ...) and verdict in the latest audits",
        labels=("registry", "repository", "format", "status"),
    )
    node_counts: Tally[tuple[str, ...]] = Tally()
    finding_counts: Tally[tuple[str, ...]] = Tally()
    waived_counts: Tally[tuple[str, ...]] = Tally()
    signature_counts: Tally[tuple[str, ...]] = Tally()
    signed_values: dict[tuple[str, ...], float] = {}
    waived_values: dict[tuple[str, ...], float] = {}
    expiry_values: dict[tuple[str, ...], float] = {}
    for stored in snapshot.targets:
        result = stored.result
        labels = (stored.registry, stored.repository, stored.tag)
        if budget.take("auditor_target_compliant"):
            compliant.add_metric(labels, 1.0 if result.status.value == "compliant" else 0.0)
        for finding in result.findings:
            # A waived finding is counted apart: it is not a failure, and a dashboard or an
            # alert on auditor_findings must not see accepted exceptions as open problems.
            tally = finding_counts if finding.waiver is None else waived_counts
            tally[(stored.registry, stored.repository, finding.kind)] += 1
        # Per node: is each of its findings waived? (A node whose gaps are all accepted
        # exceptions gets an auditor_node_waived series; the alert rules leave it out.)
        node_waivers: dict[str, list[bool]] = {}
        for finding in result.findings:
            if finding.node is not None:
                node_waivers.setdefault(finding.node, []).append(finding.waiver is not None)
        for verdict in result.nodes:
            node = verdict.node
            node_counts[(stored.registry, stored.repository, node.kind.value,
                         verdict.status.value)] += 1
            for sig in verdict.signatures:
                signature_counts[(stored.registry, stored.repository, sig.format,
                                  sig.status.value)] += 1
            if not limits.per_node or not verdict.required:
                continue
            node_key = (*labels, node.kind.value, str(node.platform) if node.platform else "")
            signed = verdict.status is NodeStatus.SIGNED
            _min_merge(signed_values, node_key, 1.0 if signed else 0.0)
            flags = node_waivers.get(node.digest, [])
            _min_merge(waived_values, node_key, 1.0 if flags and all(flags) else 0.0)
            ends = [s.valid_until for s in verdict.signatures if s.status is SignatureStatus.VALID]
            # The node stays signed until its longest-lived valid signature stops counting; a
            # valid signature that never stops counting means no expiry series at all.
            if signed and ends and all(end is not None for end in ends):
                last = max(end for end in ends if end is not None)
                _min_merge(expiry_values, node_key, last.timestamp())
    for signed_key, value in signed_values.items():
        if budget.take("auditor_node_signed"):
            node_signed.add_metric(signed_key, value)
    for waived_key, value in waived_values.items():
        if value and budget.take("auditor_node_waived"):
            node_waived.add_metric(waived_key, value)
    for expiry_key, value in expiry_values.items():
        if budget.take("auditor_signature_expiry_timestamp_seconds"):
            expiry.add_metric(expiry_key, value)
    for count_key, count in sorted(node_counts.items()):
        nodes.add_metric(count_key, float(count))
    for count_key, count in sorted(finding_counts.items()):
        findings.add_metric(count_key, float(count))
    for count_key, count in sorted(waived_counts.items()):
        waived.add_metric(count_key, float(count))
    for count_key, count in sorted(signature_counts.items()):
        signatures.add_metric(count_key, float(count))

    up = GaugeMetricFamily(
        "auditor_registry_up",
        "1 when the registry's latest run audited at least one target, 0 when every one failed",
        labels=("registry",),
    )
    for registry, run in sorted(snapshot.last_runs.items()):
        up.add_metric((registry,), 1.0 if run.targets > run.errors else 0.0)
    success = GaugeMetricFamily(
        "auditor_audit_last_success_timestamp_seconds",
        "When the registry's latest run that audited at least one target finished (Unix time)",
        labels=("registry",),
    )
    for registry, when in sorted(snapshot.last_success.items()):
        success.add_metric((registry,), when.timestamp())
    dropped = GaugeMetricFamily(
        "auditor_series_dropped",
        "Series left out of this scrape by metrics.max_series, by metric",
        labels=("metric",),
    )
    for metric in (
        "auditor_target_compliant",
        "auditor_node_signed",
        "auditor_node_waived",
        "auditor_signature_expiry_timestamp_seconds",
    ):
        dropped.add_metric((metric,), float(budget.dropped[metric]))
    return [
        compliant, node_signed, node_waived, expiry, nodes, findings, waived, signatures, up,
        success, dropped,
    ]


class StateCollector(Collector):
    """Renders the last snapshot handed to :meth:`update`; never touches the store itself."""

    def __init__(self, limits: SeriesLimits) -> None:
        self.limits = limits
        self.snapshot = Snapshot()

    def update(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from families(self.snapshot, self.limits)


class DaemonMetrics:
    """The daemon's own activity, in a registry of its own (one per daemon, so tests and
    several daemons in one process do not share counters)."""

    def __init__(self, limits: SeriesLimits) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.state = StateCollector(limits)
        self.registry.register(self.state)
        self.duration = Histogram(
            "auditor_audit_duration_seconds",
            "How long one run of one registry took",
            ("registry",),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.audits = Counter(
            "auditor_audits",
            "Runs by registry and result (compliant, noncompliant, error, abandoned)",
            ("registry", "result"),
            registry=self.registry,
        )
        self.requests = Counter(
            "auditor_registry_requests",
            "HTTP responses from registries (and their token services) by host and status code",
            ("registry", "code"),
            registry=self.registry,
        )
        self.state_writable = Gauge(
            "auditor_state_writable",
            "1 when the last write to the state store succeeded, 0 when it failed",
            registry=self.registry,
        )
        self.state_writable.set(1)
        build = Gauge(
            "auditor_build_info", "The running auditor's version", ("version",),
            registry=self.registry,
        )
        build.labels(__version__).set(1)

    def count_response(self, host: str, code: int) -> None:
        self.requests.labels(host, str(code)).inc()

    def record_run(self, registry: str, result: str, seconds: float) -> None:
        self.audits.labels(registry, result).inc()
        self.duration.labels(registry).observe(seconds)

    def declare(self, registries: Iterable[str]) -> None:
        """Start every configured registry's series at zero, so rates work from the start."""
        for registry in registries:
            self.duration.labels(registry)
            for result in ("compliant", "noncompliant", "error"):
                self.audits.labels(registry, result)
