"""APScheduler 3 in the daemon's asyncio loop: one job per unit (registry or layout).

Each job fires every ``schedule.interval`` (or on ``schedule.cron``) with jitter, once at
start-up, never twice at once (``max_instances=1``), and missed fires are coalesced into one.
The service adds the same guarantee for runs started through the API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from auditor.config import ScheduleConfig
from auditor.daemon.units import Unit


def build_trigger(schedule: ScheduleConfig) -> BaseTrigger:
    jitter = schedule.jitter_seconds
    if schedule.cron is not None:
        minute, hour, day, month, day_of_week = schedule.cron.split()
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week,
            timezone=UTC, jitter=jitter or None,
        )
    return IntervalTrigger(
        seconds=schedule.interval_seconds, timezone=UTC, jitter=jitter or None
    )


class Scheduler:
    def __init__(
        self,
        schedule: ScheduleConfig,
        units: Sequence[Unit],
        run: Callable[[Unit], Awaitable[object]],
        *,
        startup_audit: bool = True,
    ) -> None:
        self.schedule = schedule
        self.units = list(units)
        self._run = run
        self._startup = startup_audit
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Add the jobs and start; must be called with the event loop running."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        for i, unit in enumerate(self.units):
            scheduler.add_job(
                self._run,
                build_trigger(self.schedule),
                args=[unit],
                id=unit.key,
                name=f"audit {unit.label}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                # The start-up audit: every unit at once, a few ms apart to keep order stable.
                next_run_time=now + timedelta(milliseconds=10 * i) if self._startup else None,
            )
        scheduler.start()
        self._scheduler = scheduler

    def shutdown(self) -> None:
        """Stop firing; running jobs are the service's to drain."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def next_runs(self) -> dict[str, datetime | None]:
        if self._scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}
