"""The daemon's service, scheduler and HTTP API on the real registry (held behind a proxy when
a run must last), a real state file, and the ASGI app through httpx."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from auditor.app import App
from auditor.config import parse_config
from auditor.daemon.http import HttpSettings, build_http_app
from auditor.daemon.metrics import DaemonMetrics, SeriesLimits
from auditor.daemon.scheduler import Scheduler
from auditor.daemon.service import AuditService
from auditor.daemon.units import units
from auditor.state.store import Store
from tests.support.daemon import SignedIndexImage
from tests.support.holding_proxy import HoldingProxy, holding_proxy
from tests.support.registry_server import RunningRegistry

pytestmark = pytest.mark.registry

TOKEN = "t0ken-for-tests"


async def _until(what: str, check: object, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@asynccontextmanager
async def _service(
    tmp_path: Path, image: SignedIndexImage, proxy: HoldingProxy, repository: str
) -> AsyncIterator[AuditService]:
    config = parse_config(
        {
            "registries": [{"url": f"http://{proxy.host}", "repositories": [repository],
                            "tags": {"include": ["v1"]}}],
            "trust": {"policy": str(image.policy), "store": str(image.store)},
            "schedule": {"interval": "1s", "jitter": "0s"},
        },
        "test",
    )
    store = Store.open(tmp_path / "state.db")
    metrics = DaemonMetrics(SeriesLimits())
    try:
        async with App(config, store=store) as app:
            yield AuditService(app, store, metrics)
    finally:
        store.close()


@pytest.fixture
def image(registry: RunningRegistry, tmp_path: Path) -> SignedIndexImage:
    return SignedIndexImage.create(tmp_path / "image", registry.host, "daemon/service")


def _proxy_for(registry: RunningRegistry) -> tuple[str, int]:
    host, port = registry.host.rsplit(":", 1)
    return host, int(port)


async def test_scheduled_runs_never_overlap_and_busy_fires_coalesce(
    registry: RunningRegistry, image: SignedIndexImage, tmp_path: Path
) -> None:
    with holding_proxy(*_proxy_for(registry)) as proxy:
        async with _service(tmp_path, image, proxy, image.repository) as service:
            unit = units(service.app.config)[0]
            proxy.hold()
            scheduler = Scheduler(service.app.config.schedule, [unit], service.scheduled)
            scheduler.start()
            try:
                await _until("the start-up run", lambda: service.busy(unit) is not None)
                first = service.busy(unit)
                # Three more fires come and go while the registry is held: none starts a run.
                await asyncio.sleep(3.2)
                assert service.busy(unit) == first
                assert [r.id for r in service.store.runs()] == [first]
                # An API request for the same registry joins the running run.
                assert await service.submit_units([unit]) == [first]
                proxy.release()
                await _until("three finished runs", lambda: service.runs_finished >= 3)
            finally:
                scheduler.shutdown()
                await service.drain(10)
            runs = sorted(service.store.runs(), key=lambda r: r.id)
    finished = [r for r in runs if r.finished_at is not None]
    assert len(finished) >= 3
    for before, after in itertools.pairwise(finished):
        assert before.finished_at is not None
        assert before.finished_at <= after.started_at, "two runs of one registry overlapped"


async def test_audit_endpoint_runs_and_reports_with_auth(
    registry: RunningRegistry, image: SignedIndexImage, tmp_path: Path
) -> None:
    with holding_proxy(*_proxy_for(registry)) as proxy:
        async with _service(tmp_path, image, proxy, image.repository) as service:
            scheduled = units(service.app.config)
            reference = f"{proxy.host}/{image.repository}:v1"
            guarded = build_http_app(service, HttpSettings(token=TOKEN, units=scheduled))
            open_local = build_http_app(service, HttpSettings(token=None, units=scheduled))

            def client(app: object, ip: str) -> httpx.AsyncClient:
                transport = httpx.ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
                return httpx.AsyncClient(transport=transport, base_url="http://auditor")

            async with client(guarded, "10.1.2.3") as remote:
                refused = await remote.post("/audit", params={"target": reference})
                assert refused.status_code == 401
                assert refused.headers["www-authenticate"].startswith("Bearer")
                wrong = await remote.post(
                    "/audit", params={"target": reference},
                    headers={"Authorization": "Bearer not-the-token"},
                )
                assert wrong.status_code == 401
                assert TOKEN not in wrong.text
                assert (await remote.get("/audit/1")).status_code == 401
                auth = {"Authorization": f"Bearer {TOKEN}"}
                for hostile in ("not a reference!", "x" * 3000, "oci-layout:/etc:v1",
                                "169.254.169.254/latest/meta:v1", ""):
                    bad = await remote.post("/audit", params={"target": hostile}, headers=auth)
                    assert bad.status_code == 400, (hostile, bad.text)
                    assert "error" in bad.json()
                huge = await remote.get("/audit/" + "9" * 40, headers=auth)
                assert huge.status_code == 404
                assert (await remote.get("/audit/abc", headers=auth)).status_code == 404
                started = await remote.post(
                    "/audit", params={"target": reference},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                assert started.status_code == 202, started.text
                run_id = started.json()["id"]

                async def report() -> httpx.Response:
                    return await remote.get(
                        f"/audit/{run_id}", headers={"Authorization": f"Bearer {TOKEN}"}
                    )

                end = time.monotonic() + 30
                answer = await report()
                while answer.status_code == 202 and time.monotonic() < end:
                    await asyncio.sleep(0.1)
                    answer = await report()
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert body["schema_version"] == 1
                assert [t["reference"] for t in body["targets"]] == [reference]
                assert body["targets"][0]["status"] == "noncompliant"
                missing = await remote.get(
                    "/audit/999999", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                assert missing.status_code == 404

            async with client(open_local, "10.1.2.3") as remote:
                assert (await remote.post("/audit")).status_code == 403
            async with client(open_local, "127.0.0.1") as local:
                everything = await local.post("/audit")
                assert everything.status_code == 202
                assert len(everything.json()["ids"]) == 1
                assert (await local.get("/healthz")).status_code == 200
                await _until("the run to finish", lambda: service.busy(scheduled[0]) is None)
                ready = await local.get("/readyz")
                assert ready.status_code == 200, ready.text
                metrics = await local.get("/metrics")
                assert "auditor_target_compliant{" in metrics.text
            await service.drain(10)


async def test_a_locked_state_fails_readiness_and_the_last_metrics_stay(
    registry: RunningRegistry, image: SignedIndexImage, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sqlite3

    import auditor.state.store as store_module

    monkeypatch.setattr(store_module, "LOCK_TIMEOUT_SECONDS", 0.3)
    with holding_proxy(*_proxy_for(registry)) as proxy:
        async with _service(tmp_path, image, proxy, image.repository) as service:
            unit = units(service.app.config)[0]
            assert await service.run_unit(unit, "test") is not None
            app = build_http_app(service, HttpSettings(token=None, units=[unit]))
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://a") as local:
                before = (await local.get("/metrics")).text
                assert "auditor_target_compliant{" in before
                assert (await local.get("/readyz")).status_code == 200
                holder = sqlite3.connect(tmp_path / "state.db")
                holder.execute("BEGIN EXCLUSIVE")
                try:
                    ready = await local.get("/readyz")
                    assert ready.status_code == 503
                    assert "database is locked" in ready.json()["problems"]["state"]
                    # A run cannot be recorded now: it is refused cleanly, nothing crashes.
                    assert await service.run_unit(unit, "test") is None
                    after = (await local.get("/metrics")).text
                    assert "auditor_state_writable 0.0" in after
                    assert 'auditor_target_compliant{registry="' in after
                finally:
                    holder.rollback()
                    holder.close()
                assert (await local.get("/readyz")).status_code == 200
                assert "auditor_state_writable 1.0" in (await local.get("/metrics")).text


async def test_a_daemon_run_ends_at_the_run_deadline(
    registry: RunningRegistry, image: SignedIndexImage, tmp_path: Path
) -> None:
    with holding_proxy(*_proxy_for(registry)) as proxy:
        config = parse_config(
            {
                "registries": [
                    {"url": f"http://{proxy.host}", "repositories": [image.repository]}
                ],
                "trust": {"policy": str(image.policy), "store": str(image.store)},
                "limits": {"run_deadline_seconds": 1.5},
            },
            "test",
        )
        proxy.hold()
        store = Store.open(tmp_path / "state.db")
        try:
            async with App(config, store=store) as app:
                service = AuditService(app, store, DaemonMetrics(SeriesLimits()))
                began = time.monotonic()
                run_id = await service.run_unit(units(config)[0], "test")
                took = time.monotonic() - began
                assert run_id is not None
                record = store.run(run_id)
        finally:
            store.close()
            proxy.release()
    assert took < 10
    assert record is not None
    assert record.result == "error"
    assert record.report is not None
    assert "run deadline passed" in (record.report[0].error or "")
