"""The page in the daemon: ``/`` (overview) and ``/targets/<id>`` on the ``/metrics`` listener.

Read-only views of the state store: the latest result of every target, each node's status
history, the last audit and the next scheduled one. They are rendered by the same pure
templates as ``audit now --format html`` (auditor/formats/html.py), linked by relative paths,
and filtered on the server (the GET form works without JavaScript; the script only filters
live).

Access follows ``/audit``'s rule: with ``server.token_env`` set, the token is required (from
anywhere); without one, only loopback clients get in. ``server.public_read: true`` opens these
read-only pages (never ``/audit``) to whoever reaches the listener. A person's browser cannot
attach a bearer header to a link, so the token is also accepted as the password of HTTP Basic
authentication (any user name): the browser asks for it once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from auditor.daemon.http import HttpSettings, authorized
from auditor.daemon.scheduler import Scheduler
from auditor.errors import AuditorError
from auditor.formats.html import (
    HistoryEntry,
    OverviewQuery,
    PageContext,
    change_cause,
    content_security_policy,
    render_overview,
    render_target,
    target_id,
)
from auditor.model import AuditReport

_TARGET_ID = re.compile(r"^[0-9a-f]{16}$")
HISTORY_LIMIT = 200
"""Most recent node status changes shown on a target's page."""


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": f"{content_security_policy()}; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _basic_password(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def may_read(request: Request, settings: HttpSettings) -> bool:
    """``public_read``, or ``/audit``'s rule, or the token as a Basic password."""
    if settings.public_read or authorized(request, settings.token):
        return True
    password = _basic_password(request)
    return (
        settings.token is not None
        and password is not None
        and hmac.compare_digest(password.encode(), settings.token.encode())
    )


def _denied(settings: HttpSettings) -> Response:
    if settings.token is None:
        return PlainTextResponse(
            "the pages are open to loopback clients only "
            "(set server.token_env, or server.public_read: true)\n",
            status_code=403,
        )
    return PlainTextResponse(
        "the pages need the daemon's token (as a bearer token, or as the password)\n",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="registry-auditor", charset="UTF-8"'},
    )


def _unavailable(exc: AuditorError) -> Response:
    return PlainTextResponse(f"state store unavailable: {exc}\n", status_code=503)


@dataclass(frozen=True)
class _Latest:
    report: AuditReport
    audited_at: dict[str, datetime]


def _latest(request: Request) -> _Latest:
    """The latest stored result of every target (blocking: run in a thread)."""
    stored = request.app.state.store.latest_results()
    moments = {s.reference: s.audited_at for s in stored}
    generated = max(moments.values(), default=datetime.now(UTC))
    return _Latest(AuditReport(generated, tuple(s.result for s in stored)), moments)


def _next_audit(request: Request) -> datetime | None:
    scheduler: Scheduler | None = getattr(request.app.state, "scheduler", None)
    if scheduler is None:
        return None
    upcoming = [t for t in scheduler.next_runs().values() if t is not None]
    return min(upcoming, default=None)


def _history(request: Request, reference: str) -> tuple[HistoryEntry, ...]:
    """The target's newest node status changes, newest first (the store gives oldest first)."""
    changes = request.app.state.store.node_history(reference, limit=HISTORY_LIMIT)
    return tuple(
        HistoryEntry(
            node=c.node_digest,
            label=c.platform if c.platform and c.platform != "unknown/unknown" else c.kind,
            status=c.status,
            since=c.changed_at,
            cause=change_cause(c.previous, c.status),
        )
        for c in reversed(changes)
    )


async def overview(request: Request) -> Response:
    settings: HttpSettings = request.app.state.http_settings
    if not may_read(request, settings):
        return _denied(settings)
    try:
        latest = await asyncio.to_thread(_latest, request)
    except AuditorError as exc:
        return _unavailable(exc)
    context = PageContext(
        next_audit=_next_audit(request),
        query=OverviewQuery.from_params(request.query_params),
    )
    return HTMLResponse(render_overview(latest.report, context), headers=_headers())


async def target(request: Request) -> Response:
    settings: HttpSettings = request.app.state.http_settings
    if not may_read(request, settings):
        return _denied(settings)
    tid = request.path_params["target_id"]
    if not _TARGET_ID.match(tid):
        return _not_found()

    def load() -> tuple[AuditReport, str, tuple[HistoryEntry, ...]] | None:
        latest = _latest(request)
        reference = next(
            (t.reference for t in latest.report.targets if target_id(t.reference) == tid), None
        )
        if reference is None:
            return None
        # "last audit" on a target's page is when that target was last audited
        report = AuditReport(latest.audited_at[reference], latest.report.targets)
        return report, reference, _history(request, reference)

    try:
        loaded = await asyncio.to_thread(load)
    except AuditorError as exc:
        return _unavailable(exc)
    if loaded is None:
        return _not_found()
    report, reference, history = loaded
    context = PageContext(next_audit=_next_audit(request), history={reference: history})
    text = render_target(report, tid, context)
    return HTMLResponse(text, headers=_headers()) if text is not None else _not_found()


def _not_found() -> Response:
    return PlainTextResponse("no such target (it may not have been audited yet)\n",
                             status_code=404)


def page_routes() -> list[BaseRoute]:
    return [
        Route("/", overview, methods=["GET"]),
        Route("/targets/{target_id}", target, methods=["GET"]),
    ]
