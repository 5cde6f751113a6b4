"""``auditor serve``: wire config, state store, App, service, scheduler and HTTP; run until
SIGTERM or SIGINT; then stop scheduling, give running audits ``server.grace_seconds``, record
what was abandoned and exit 0.

Metrics are served from the stored results from the first second: a restarted daemon answers
``/metrics`` with what it knew before its first new run finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import structlog
import uvicorn
from pydantic import ValidationError

from auditor import logs
from auditor.app import App
from auditor.config import (
    AuditorConfig,
    ServerConfig,
    StateConfig,
    environment,
    load_config,
    parse_duration,
)
from auditor.daemon import alerting
from auditor.daemon.http import HttpSettings, build_http_app
from auditor.daemon.metrics import DaemonMetrics, SeriesLimits
from auditor.daemon.pages import page_routes
from auditor.daemon.receiver import EventMetrics, EventReceiver
from auditor.daemon.scheduler import Scheduler
from auditor.daemon.service import AuditService
from auditor.daemon.units import Unit, units
from auditor.errors import ConfigError, UsageError
from auditor.state.store import Store

log = structlog.get_logger("auditor.daemon")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _env_secret(name: str | None, key: str) -> str | None:
    if name is None:
        return None
    value = environment().get(name)
    if not value:
        raise ConfigError(f"server.{key}: environment variable {name} is not set")
    return value


def _token(config: AuditorConfig) -> str | None:
    return _env_secret(config.server.token_env, "token_env")


def _bind(listen: str, host: str, port: int) -> socket.socket:
    """Bind the listener ourselves, so an address in use is a one-line error, not a crash."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise UsageError(f"server.listen {listen}: cannot listen: {reason}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def serve(config: AuditorConfig) -> int:
    token = _token(config)
    scheduled: list[Unit] = units(config)
    if not scheduled:
        raise UsageError("auditor serve: nothing to audit: the config has no registries or layouts")
    state = config.state or StateConfig()
    limits = SeriesLimits(config.metrics.per_node, config.metrics.max_series)
    metrics = DaemonMetrics(limits)
    metrics.declare(unit.label for unit in scheduled)
    store = await asyncio.to_thread(Store.open, state.path)
    sock = _bind(config.server.listen, config.server.host, config.server.port)

    def on_response(response: httpx.Response) -> None:
        metrics.count_response(
            response.request.url.netloc.decode("ascii", "replace"), response.status_code
        )

    events_token = _env_secret(config.server.events_token_env, "events_token_env")
    try:
        async with (
            App(config, store=store, on_response=on_response) as app,
            httpx.AsyncClient(timeout=10.0, trust_env=False) as alert_client,
        ):
            service = AuditService(app, store, metrics, keep_runs=state.keep_runs)
            alerts = alerting.from_config(
                config, store, alert_client, metrics.registry, environment()
            )
            service.listeners.append(alerts.on_run)
            events = EventReceiver(
                service,
                config.registries,
                [events_token] if events_token else [],
                EventMetrics(metrics.registry),
                debounce=parse_duration(config.server.events_debounce),
            )
            await service.refresh_metrics()  # what we knew before: served at once
            alerts.deliver_soon()  # messages a previous run could not deliver
            http_app = build_http_app(
                service,
                HttpSettings(token=token, units=scheduled, public_read=config.server.public_read),
                extra_routes=[events.route(), *page_routes()],
            )
            server = _Server(
                uvicorn.Config(
                    http_app,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                    timeout_graceful_shutdown=5,
                )
            )
            scheduler = Scheduler(config.schedule, scheduled, service.scheduled)
            http_app.state.scheduler = scheduler  # the pages show the next audit
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            scheduler.start()
            log.info(
                "serve.started",
                listen=config.server.listen,
                state=str(state.path),
                units=[u.label for u in scheduled],
                interval_seconds=None if config.schedule.cron else config.schedule.interval_seconds,
                cron=config.schedule.cron,
            )
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({stopped, serving}, return_when=asyncio.FIRST_COMPLETED)
            log.info("serve.stopping", grace_seconds=config.server.grace_seconds)
            scheduler.shutdown()
            events.close()
            finished = await service.drain(config.server.grace_seconds)
            await alerts.drain(5.0)
            server.should_exit = True
            await serving
            stopped.cancel()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            log.info("serve.stopped", clean=finished)
    finally:
        sock.close()
        store.close()
    return 0


def apply_overrides(
    config: AuditorConfig, *, state: Path | None, listen: str | None, env: Mapping[str, str]
) -> AuditorConfig:
    """``--state`` and ``--listen`` win over the config; ``$AUDITOR_LISTEN`` (the container
    image sets it) only fills in a listener the config does not name."""
    update: dict[str, object] = {}
    if state is not None:
        update["state"] = (config.state or StateConfig()).model_copy(update={"path": state})
    chosen = listen
    if chosen is None and "listen" not in config.server.model_fields_set:
        chosen = env.get("AUDITOR_LISTEN") or None
    if chosen is not None:
        try:
            server = ServerConfig.model_validate(
                {**config.server.model_dump(exclude_unset=True), "listen": chosen}
            )
        except ValidationError:
            raise UsageError(f"--listen {chosen!r} is not HOST:PORT") from None
        update["server"] = server
    return config.model_copy(update=update) if update else config


def run_serve(config_path: Path | None, *, state: Path | None, listen: str | None) -> int:
    config, _ = load_config(config_path)
    config = apply_overrides(config, state=state, listen=listen, env=environment())
    logs.configure(json=True)
    return asyncio.run(serve(config))
