"""The daemon's HTTP surface on one listener: ``/metrics``, ``/healthz``, ``/readyz``,
``POST /audit`` and ``GET /audit/<id>``.

A Starlette app served by uvicorn in the scheduler's event loop. ``build_http_app`` takes extra
routes (the event receiver and the pages, ``daemon/pages.py``, plug in there) and the objects they
need travel on ``app.state`` (``service``, ``store``).

``/audit`` runs audits, so it is guarded: with ``server.token_env`` set, every call needs
``Authorization: Bearer <token>``; without a token, only loopback clients may call it.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from auditor.daemon.service import AuditService
from auditor.daemon.units import Unit
from auditor.errors import AuditorError, InvalidReference, StateError
from auditor.formats.json import to_dict
from auditor.model import AuditReport
from auditor.oci.reference import LayoutReference, parse_reference
from auditor.state.naming import source_key

MAX_REFERENCE_LENGTH = 2048
MAX_RUN_ID = 2**63 - 1  # a database integer; larger ids cannot exist


@dataclass(frozen=True)
class HttpSettings:
    token: str | None
    units: Sequence[Unit]
    public_read: bool = False  # server.public_read: the read-only pages open to any client


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def authorized(request: Request, token: str | None) -> bool:
    """Bearer token when one is configured (compared in constant time), else loopback only."""
    if token is None:
        return is_loopback(request.client.host if request.client else None)
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _problem(code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=code)


def _denied(token: str | None) -> JSONResponse:
    if token is None:
        return _problem(403, "/audit is open to loopback clients only (no server.token_env set)")
    return JSONResponse(
        {"error": "a valid bearer token is required"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="auditor"'},
    )


async def metrics(request: Request) -> Response:
    service: AuditService = request.app.state.service
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def readyz(request: Request) -> Response:
    service: AuditService = request.app.state.service
    problems: dict[str, str] = {}
    state = await service.check_state()
    if state is not None:
        problems["state"] = state
    if service.runs_finished == 0 and not service.metrics.state.snapshot.last_runs:
        problems["audit"] = "no audit has finished yet"
    body = {"ready": not problems, "config": "loaded", "problems": problems}
    return JSONResponse(body, status_code=503 if problems else 200)


async def post_audit(request: Request) -> Response:
    settings: HttpSettings = request.app.state.http_settings
    service: AuditService = request.app.state.service
    if not authorized(request, settings.token):
        return _denied(settings.token)
    target = request.query_params.get("target")
    try:
        if target is not None:
            if not target or len(target) > MAX_REFERENCE_LENGTH:
                return _problem(400, f"target must be 1 to {MAX_REFERENCE_LENGTH} characters")
            reference = parse_reference(target)
            unit_key = source_key(target, "")
            if unit_key not in {u.key for u in settings.units}:
                # Only what the daemon is configured to watch: a caller must not make it read
                # arbitrary paths on its disk or send requests to arbitrary hosts.
                where = "layout" if isinstance(reference, LayoutReference) else "registry"
                return _problem(400, f"target: {where} of {target!r} is not in the config")
            run_id = await service.submit_reference(target)
            return JSONResponse(
                {"id": run_id, "status_url": f"/audit/{run_id}"}, status_code=202
            )
        ids = await service.submit_units(settings.units)
    except InvalidReference as exc:
        return _problem(400, f"target: {exc}")
    except StateError as exc:
        return _problem(503, f"cannot record the run: {exc}")
    if not ids:
        return _problem(400, "nothing configured to audit: give ?target=REF")
    return JSONResponse(
        {"id": ids[0], "ids": ids, "status_url": f"/audit/{ids[0]}"}, status_code=202
    )


async def get_audit(request: Request) -> Response:
    settings: HttpSettings = request.app.state.http_settings
    service: AuditService = request.app.state.service
    if not authorized(request, settings.token):
        return _denied(settings.token)
    run_id = request.path_params["run_id"]
    if run_id > MAX_RUN_ID:
        return _problem(404, f"no run {run_id}")
    try:
        record = await asyncio.to_thread(service.store.run, run_id)
    except StateError as exc:
        return _problem(503, str(exc))
    except AuditorError as exc:
        return _problem(500, str(exc))
    if record is None:
        return _problem(404, f"no run {run_id}")
    if record.result == "running":
        return JSONResponse({"id": run_id, "status": "running"}, status_code=202)
    if record.report is None or record.finished_at is None:
        return _problem(410, f"run {run_id} did not finish: {record.message or record.result}",
                        id=run_id, status=record.result)
    report = AuditReport(generated_at=record.finished_at, targets=record.report)
    return JSONResponse(to_dict(report))


def core_routes() -> list[BaseRoute]:
    return [
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/audit", post_audit, methods=["POST"]),
        Route("/audit/{run_id:int}", get_audit, methods=["GET"]),
    ]


def build_http_app(
    service: AuditService,
    settings: HttpSettings,
    *,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    app = Starlette(routes=[*core_routes(), *extra_routes])
    app.state.service = service
    app.state.store = service.store
    app.state.http_settings = settings
    return app
