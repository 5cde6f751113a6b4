"""One audit run of one unit (or one reference), recorded in the store, counted in metrics,
logged; the daemon's scheduler, its HTTP API and (next) its event receiver all go through here.

Runs of one unit never overlap: each unit has a lock, a scheduled run that finds its unit busy
is coalesced into the running one, and an API run waits its turn. A run that fails in any way
is recorded as such and the daemon goes on; a run still going at shutdown gets the grace period
and is then abandoned (recorded ``abandoned``, nothing half-written).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from auditor.app import App
from auditor.audit import AuditTarget
from auditor.daemon.metrics import DaemonMetrics, Snapshot, registry_label
from auditor.daemon.units import Unit
from auditor.errors import AuditorError, StateError
from auditor.model import AuditReport, TargetResult, TargetStatus
from auditor.state.naming import source_key
from auditor.state.store import StatusChange, Store, run_result

log = structlog.get_logger("auditor.daemon")


@dataclass(frozen=True)
class FinishedRun:
    """What listeners (alerts, next issue) receive after a run is stored."""

    run_id: int
    source: str
    trigger: str
    report: AuditReport
    changes: Sequence[StatusChange]
    # True when the run covered its whole source (a scheduled or API run of a unit), so a
    # target of that source it did not see is gone; False for one reference.
    complete: bool = False


RunListener = Callable[[FinishedRun], Awaitable[None]]


def load_snapshot(store: Store) -> Snapshot:
    """Everything the metrics collector renders, read in one go (raises StateError)."""
    last_runs = {
        label: run
        for source, run in store.last_runs().items()
        if (label := registry_label(source)) is not None
    }
    last_success = {
        label: when
        for source, when in store.last_success().items()
        if (label := registry_label(source)) is not None
    }
    return Snapshot(store.latest_results(), last_runs, last_success)


class AuditService:
    def __init__(
        self, app: App, store: Store, metrics: DaemonMetrics, *, keep_runs: int = 500
    ) -> None:
        self.app = app
        self.store = store
        self.metrics = metrics
        self.keep_runs = keep_runs
        self.listeners: list[RunListener] = []
        self.state_error: str | None = None
        self.runs_finished = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._running: dict[str, int] = {}
        self._active: set[asyncio.Task[object]] = set()
        self._background: set[asyncio.Task[object]] = set()

    # --- state ------------------------------------------------------------------------------

    async def refresh_metrics(self) -> bool:
        """Load the store's latest results into the collector; keep the old ones on failure."""
        try:
            snapshot = await asyncio.to_thread(load_snapshot, self.store)
        except StateError as exc:
            self._state_failed(exc, "reading the state for metrics")
            return False
        self.metrics.state.update(snapshot)
        return True

    def _state_failed(self, exc: StateError, doing: str) -> None:
        self.state_error = str(exc)
        self.metrics.state_writable.set(0)
        log.error("state.error", doing=doing, error=str(exc))

    def _state_ok(self) -> None:
        self.state_error = None
        self.metrics.state_writable.set(1)

    async def check_state(self) -> str | None:
        """None when the store takes a write now, else why not (``/readyz``)."""
        try:
            await asyncio.to_thread(self.store.check_writable)
        except StateError as exc:
            self._state_failed(exc, "checking the state is writable")
            return str(exc)
        self._state_ok()
        return None

    # --- runs -------------------------------------------------------------------------------

    def busy(self, unit: Unit) -> int | None:
        """The id of the run of ``unit`` in progress, if any."""
        return self._running.get(unit.key)

    async def scheduled(self, unit: Unit, trigger: str = "schedule") -> int | None:
        """A scheduled run; coalesced into the running one when the unit is busy.

        The run is the service's task, not the scheduler's: stopping the scheduler (which
        cancels its jobs) must not cut a run short; the shutdown's grace period decides.
        """
        running = self.busy(unit)
        if running is not None:
            log.info("audit.coalesced", registry=unit.label, run_id=running, trigger=trigger)
            return running
        task = self._background_run(self.run_unit(unit, trigger))
        result = await asyncio.shield(task)
        return result if isinstance(result, int) else None

    async def run_unit(self, unit: Unit, trigger: str, *, run_id: int | None = None) -> int | None:
        async def targets() -> list[AuditTarget | TargetResult]:
            if unit.registry is not None:
                return await self.app.registry_targets(unit.registry)
            assert unit.layout is not None
            return await self.app.layout_targets(unit.layout)

        return await self._run(
            unit.key, unit.label, trigger, targets, replace_source=True, run_id=run_id
        )

    async def submit_reference(self, reference: str, trigger: str = "api") -> int:
        """Start auditing one reference in the background; its run id at once.
        Raises StateError when the run cannot even be recorded."""
        key = source_key(reference, "adhoc")
        label = registry_label(key) or key
        run_id = await self.start_run_id(key, trigger)
        self._background_run(
            self._run(
                key, label, trigger, lambda: self.app.targets([reference]),
                replace_source=False, run_id=run_id,
            )
        )
        return run_id

    async def submit_units(self, units: Sequence[Unit], trigger: str = "api") -> list[int]:
        """Start a run of every unit now; a busy unit answers with its running run's id."""
        ids: list[int] = []
        for unit in units:
            running = self.busy(unit)
            if running is not None:
                ids.append(running)
                continue
            run_id = await self.start_run_id(unit.key, trigger)
            self._background_run(self.run_unit(unit, trigger, run_id=run_id))
            ids.append(run_id)
        return ids

    def _background_run(self, job: Awaitable[int | None]) -> asyncio.Task[object]:
        task: asyncio.Task[object] = asyncio.ensure_future(job)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def start_run_id(self, source: str, trigger: str) -> int:
        try:
            return await asyncio.to_thread(self.store.start_run, source, trigger)
        except StateError as exc:
            self._state_failed(exc, "starting a run")
            raise

    async def _run(
        self,
        key: str,
        label: str,
        trigger: str,
        targets: Callable[[], Awaitable[list[AuditTarget | TargetResult]]],
        *,
        replace_source: bool,
        run_id: int | None = None,
    ) -> int | None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        task = asyncio.current_task()
        if task is not None:
            self._active.add(task)
        try:
            if run_id is None:
                try:
                    run_id = await self.start_run_id(key, trigger)
                except StateError:
                    return None
            async with lock:
                self._running[key] = run_id
                try:
                    await self._audit(key, label, trigger, run_id, targets, replace_source)
                finally:
                    self._running.pop(key, None)
            return run_id
        finally:
            if task is not None:
                self._active.discard(task)

    async def _audit(
        self,
        key: str,
        label: str,
        trigger: str,
        run_id: int,
        targets: Callable[[], Awaitable[list[AuditTarget | TargetResult]]],
        replace_source: bool,
    ) -> None:
        started = time.monotonic()
        try:
            try:
                if self.app.refresh_trust():
                    log.info("trust.changed", trust_hash=self.app.trust_hash[:12])
            except AuditorError as exc:
                log.error("trust.reload_failed", error=str(exc))
            report = await self.app.run(targets, label)
        except asyncio.CancelledError:
            self.metrics.record_run(label, "abandoned", time.monotonic() - started)
            await self._abandon(run_id, "abandoned at shutdown (grace period over)")
            log.warning("audit.abandoned", registry=label, run_id=run_id, trigger=trigger)
            raise
        except Exception as exc:  # a bug must not stop the daemon: record it, go on
            self.metrics.record_run(label, "error", time.monotonic() - started)
            await self._abandon(run_id, f"internal error: {exc.__class__.__name__}")
            log.exception("audit.failed", registry=label, run_id=run_id, trigger=trigger)
            return
        elapsed = time.monotonic() - started
        result = run_result(report.targets)
        self.metrics.record_run(label, result, elapsed)
        for target in report.targets:
            if target.status is TargetStatus.ERROR:
                log.warning(
                    "audit.target_error",
                    registry=label,
                    run_id=run_id,
                    target=target.reference,
                    reason=target.error or "; ".join(f.message for f in target.findings),
                )
        counts = {s.value: sum(1 for t in report.targets if t.status is s) for s in TargetStatus}
        log.info(
            "audit.finished",
            registry=label,
            run_id=run_id,
            trigger=trigger,
            result=result,
            targets=len(report.targets),
            duration_seconds=round(elapsed, 3),
            **counts,
        )
        try:
            changes = await asyncio.to_thread(
                self.store.finish_run,
                run_id,
                key,
                report.targets,
                replace_source=replace_source,
                keep_runs=self.keep_runs,
            )
        except StateError as exc:
            self._state_failed(exc, f"recording run {run_id}")
            return
        self._state_ok()
        self.runs_finished += 1
        await self.refresh_metrics()
        finished = FinishedRun(run_id, key, trigger, report, changes, replace_source)
        for listener in self.listeners:
            try:
                await listener(finished)
            except Exception:
                log.exception("listener.failed", run_id=run_id)

    async def _abandon(self, run_id: int, message: str) -> None:
        try:
            await asyncio.shield(asyncio.to_thread(self.store.abandon_run, run_id, message))
        except StateError as exc:
            self._state_failed(exc, f"abandoning run {run_id}")

    # --- shutdown ---------------------------------------------------------------------------

    async def drain(self, grace_seconds: float) -> bool:
        """Let running audits finish within the grace period, then cancel (abandon) the rest.
        True when everything finished in time."""
        pending = {t for t in self._active | self._background if not t.done()}
        if not pending:
            return True
        log.info("shutdown.waiting", runs=len(pending), grace_seconds=grace_seconds)
        _, late = await asyncio.wait(pending, timeout=grace_seconds)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=5.0)
        return not late
