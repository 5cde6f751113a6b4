"""The daemon's alerting: after every stored run, decide (pure diff), store, then deliver.

Listens to the audit service's finished runs. For each target it reads what was last alerted,
lets :func:`~auditor.daemon.alerts.diff.decide` say what to send, and stores the new states
together with the rendered messages (the outbox) in one transaction; only then are messages
posted, in the background, so a slow or dead receiver never holds up an audit. Each sink's
outbox is delivered oldest first and stops at the first failure, so a receiver that was down
gets every pending message, in order, when it is back (the next run tries again).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from auditor.config import AlertsConfig, AuditorConfig, parse_duration
from auditor.daemon.alerts.delivery import Outcome, Sink, build_sinks, deliver
from auditor.daemon.alerts.diff import Alert, AlertSettings, AlertState, decide, forget
from auditor.daemon.service import FinishedRun
from auditor.errors import StateError
from auditor.model import TargetResult
from auditor.state.naming import source_key
from auditor.state.store import OutgoingAlert, PendingAlert, Store

log = structlog.get_logger("auditor.alerts")


def alert_settings(config: AlertsConfig) -> AlertSettings:
    remind = config.remind_every
    return AlertSettings(
        expiry_warning=timedelta(seconds=parse_duration(config.expiry_warning)),
        remind_every=timedelta(seconds=parse_duration(remind)) if remind else None,
        error_after=timedelta(seconds=parse_duration(config.error_after)),
    )


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry, sinks: Sequence[Sink]) -> None:
        self.sent = Counter(
            "auditor_alerts_sent",
            "Alert deliveries by sink and result (sent, failed: retried later, rejected).",
            ["sink", "result"],
            registry=registry,
        )
        self.pending = Gauge(
            "auditor_alerts_pending",
            "Alert messages decided but not delivered yet.",
            ["sink"],
            registry=registry,
        )
        for sink in sinks:
            self.pending.labels(sink.name).set(0)
            for outcome in Outcome:
                self.sent.labels(sink.name, outcome.value)


class AlertService:
    """The run listener that turns stored runs into delivered messages."""

    def __init__(
        self,
        store: Store,
        client: httpx.AsyncClient,
        sinks: Sequence[Sink],
        settings: AlertSettings,
        metrics: AlertMetrics,
        *,
        public_url: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.client = client
        self.sinks = list(sinks)
        self.settings = settings
        self.metrics = metrics
        self.public_url = public_url
        self.clock = clock
        self._deliveries: dict[str, asyncio.Lock] = {s.name: asyncio.Lock() for s in sinks}
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_run(self, run: FinishedRun) -> None:
        """Decide and store this run's alerts, then deliver in the background."""
        if not self.sinks:
            return
        try:
            await asyncio.to_thread(self._decide_and_store, run)
        except StateError as exc:
            log.error("alerts.state_error", run_id=run.run_id, error=str(exc))
        self.deliver_soon()

    def _decide_and_store(self, run: FinishedRun) -> None:
        now = self.clock()
        by_source: dict[str, list[TargetResult]] = {}
        for target in run.report.targets:
            by_source.setdefault(source_key(target.reference, run.source), []).append(target)
        if run.complete:
            by_source.setdefault(run.source, [])
        for source, targets in by_source.items():
            previous = self.store.alert_states(source)
            states: dict[str, AlertState] = {}
            outbox: list[OutgoingAlert] = []
            for target in targets:
                alert, state = decide(
                    target.reference, previous.get(target.reference), target, now, self.settings
                )
                states[target.reference] = state
                if alert is not None:
                    outbox.extend(self._render(alert, target))
            forgotten: list[str] = []
            if run.complete and source == run.source:
                seen = {t.reference for t in targets}
                for reference, state in previous.items():
                    if reference in seen:
                        continue
                    forgotten.append(reference)
                    gone = forget(reference, state, now)
                    if gone is not None:
                        outbox.extend(self._render(gone, None))
            self.store.record_alerts(source, states, outbox, forgotten)
            for item in outbox:
                log.info(
                    "alert.decided",
                    target=item.reference,
                    transition=item.transition,
                    sink=item.sink,
                    delivery_id=item.delivery_id,
                )

    def _render(self, alert: Alert, result: TargetResult | None) -> list[OutgoingAlert]:
        out = []
        for sink in self.sinks:
            delivery_id = str(uuid.uuid4())
            payload = sink.render(alert, delivery_id, result, self.public_url)
            out.append(
                OutgoingAlert(sink.name, delivery_id, alert.target, alert.transition.value, payload)
            )
        return out

    # --- delivery ---------------------------------------------------------------------------

    def deliver_soon(self) -> None:
        task = asyncio.ensure_future(self.deliver_pending())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver_pending(self) -> None:
        await asyncio.gather(*(self._deliver_sink(sink) for sink in self.sinks))

    async def _deliver_sink(self, sink: Sink) -> None:
        lock = self._deliveries[sink.name]
        if lock.locked():
            return  # a pass over this sink is under way; it reads the outbox to its end
        async with lock:
            try:
                while True:
                    pending = await asyncio.to_thread(self.store.pending_alerts, sink.name)
                    if not pending:
                        break
                    if not await self._send_batch(sink, pending):
                        break
                counts = await asyncio.to_thread(self.store.pending_alert_counts)
            except StateError as exc:
                log.error("alerts.state_error", sink=sink.name, error=str(exc))
                return
            self.metrics.pending.labels(sink.name).set(counts.get(sink.name, 0))

    async def _send_batch(self, sink: Sink, pending: Sequence[PendingAlert]) -> bool:
        """Send in order; False at the first message that could not be delivered."""
        for item in pending:
            result = await deliver(self.client, sink, item.delivery_id, item.payload)
            self.metrics.sent.labels(sink.name, result.outcome.value).inc()
            if result.outcome is Outcome.FAILED:
                await asyncio.to_thread(self.store.alert_failed, item.id, result.reason)
                log.warning(
                    "alert.delivery_failed",
                    sink=sink.name,
                    delivery_id=item.delivery_id,
                    attempts=item.attempts + 1,
                    reason=result.reason,
                )
                return False
            await asyncio.to_thread(self.store.alert_done, item.id)
            event = "alert.sent" if result.outcome is Outcome.SENT else "alert.rejected"
            log.info(
                event,
                sink=sink.name,
                delivery_id=item.delivery_id,
                target=item.reference,
                transition=item.transition,
                reason=result.reason,
            )
        return True

    async def drain(self, grace: float) -> None:
        """Let deliveries under way finish (shutdown); undelivered ones stay pending."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)


def from_config(
    config: AuditorConfig,
    store: Store,
    client: httpx.AsyncClient,
    registry: CollectorRegistry,
    env: Mapping[str, str],
) -> AlertService:
    sinks = build_sinks(config.alerts, env)
    public = str(config.server.public_url) if config.server.public_url else None
    return AlertService(
        store,
        client,
        sinks,
        alert_settings(config.alerts),
        AlertMetrics(registry, sinks),
        public_url=public,
    )
