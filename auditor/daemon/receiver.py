"""``POST /events``: registry notifications turned into audits of what was pushed, at once.

The body is parsed by the pure :mod:`auditor.daemon.events`; this module authenticates the
caller, keeps only repositories the configuration watches, and debounces per repository (a
push of an image is a burst of events: blobs, platform manifests, the index, then its
signatures), then audits that repository from the registry itself. The queue is bounded: past
``max_pending`` repositories waiting, further ones are dropped and counted, and the next
scheduled run still covers them. Nothing an event says about content is trusted.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Sequence

import structlog
from prometheus_client import CollectorRegistry, Counter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auditor.config import RegistryConfig
from auditor.daemon.events import EventError, RegistryEvent, authorized, parse_events
from auditor.daemon.service import AuditService
from auditor.errors import StateError

log = structlog.get_logger("auditor.events")

MAX_BODY_BYTES = 1024 * 1024
MAX_PENDING = 1000


class EventMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "auditor_events",
            "Registry notifications received, by what became of them.",
            ["result"],
            registry=registry,
        )
        for result in (
            "accepted",
            "ignored",
            "unknown_registry",
            "unauthorized",
            "invalid",
            "dropped",
        ):
            self.events.labels(result)
        self.audits = Counter(
            "auditor_event_audits",
            "Audits started by registry notifications (after debouncing).",
            registry=registry,
        )


class EventReceiver:
    def __init__(
        self,
        service: AuditService,
        registries: Sequence[RegistryConfig],
        secrets: Sequence[str],
        metrics: EventMetrics,
        *,
        debounce: float = 1.0,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.service = service
        self.registries = {r.host: r for r in registries}
        self.secrets = [s for s in secrets if s]
        self.metrics = metrics
        self.debounce = debounce
        self.max_pending = max_pending
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def watched(self, event: RegistryEvent) -> bool:
        registry = self.registries.get(event.registry)
        if registry is None:
            return False
        return any(fnmatch.fnmatchcase(event.repository, p) for p in registry.repositories)

    async def handle(self, request: Request) -> Response:
        if not self.secrets:
            self.metrics.events.labels("unauthorized").inc()
            return JSONResponse(
                {"error": "/events is off: set server.events_token_env"}, status_code=403
            )
        if not authorized(request.headers.get("authorization"), self.secrets):
            self.metrics.events.labels("unauthorized").inc()
            return JSONResponse(
                {"error": "a valid bearer token is required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="auditor-events"'},
            )
        body = await _bounded_body(request, MAX_BODY_BYTES)
        if body is None:
            self.metrics.events.labels("invalid").inc()
            return JSONResponse({"error": f"body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        try:
            parsed = parse_events(body)
        except EventError as exc:
            self.metrics.events.labels("invalid").inc()
            return JSONResponse({"error": str(exc)}, status_code=400)
        self.metrics.events.labels("ignored").inc(parsed.ignored)
        accepted = 0
        for event in parsed.events:
            if not self.watched(event):
                self.metrics.events.labels("unknown_registry").inc()
                continue
            if self._schedule(event.scope):
                accepted += 1
                self.metrics.events.labels("accepted").inc()
            else:
                self.metrics.events.labels("dropped").inc()
        return JSONResponse(
            {"accepted": accepted, "ignored": len(parsed.events) - accepted + parsed.ignored},
            status_code=202,
        )

    def _schedule(self, scope: str) -> bool:
        """(Re)start the debounce timer of ``scope``; False when the queue is full."""
        loop = asyncio.get_running_loop()
        timer = self._pending.pop(scope, None)
        if timer is not None:
            timer.cancel()
        elif len(self._pending) >= self.max_pending:
            return False
        self._pending[scope] = loop.call_later(self.debounce, self._fire, scope)
        return True

    def _fire(self, scope: str) -> None:
        self._pending.pop(scope, None)
        task = asyncio.ensure_future(self._audit(scope))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _audit(self, scope: str) -> None:
        self.metrics.audits.inc()
        try:
            run_id = await self.service.submit_reference(scope, trigger="event")
        except StateError as exc:
            log.error("events.audit_not_started", scope=scope, error=str(exc))
            return
        log.info("events.audit", scope=scope, run_id=run_id)

    def close(self) -> None:
        for timer in self._pending.values():
            timer.cancel()
        self._pending.clear()

    def route(self) -> Route:
        return Route("/events", self.handle, methods=["POST"])


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The body, or None past ``limit`` bytes (checked while reading, not after)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
