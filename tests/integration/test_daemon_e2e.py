"""``auditor serve`` end to end: the real registry, a real subprocess, its real /metrics.

A multi-platform image with only its index signed is noncompliant with every platform
unsigned; once the platforms get valid signatures a later run shows it compliant; a restarted
daemon serves the same metrics from its state before its first new run finishes (the registry
is held behind a proxy so that run cannot finish); SIGTERM ends it cleanly within the grace
period, also with a run still hanging (that run is recorded as abandoned).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from devkit.devregistry import free_port
from devkit.samples import PLATFORMS
from tests.support.daemon import (
    Daemon,
    Samples,
    SignedIndexImage,
    poll,
    select,
    start_daemon,
    write_config,
)
from tests.support.holding_proxy import holding_proxy
from tests.support.registry_server import RunningRegistry

pytestmark = pytest.mark.registry

REPOSITORY = "e2e/daemon"
GRACE = 10.0


def _target_state(daemon: Daemon, host: str, want: float) -> Samples | None:
    samples = daemon.metrics()
    found = select(samples, "auditor_target_compliant", registry=host, repository=REPOSITORY,
                   tag="v1")
    return samples if list(found.values()) == [want] else None


def _platforms(samples: Samples, host: str) -> dict[str, float]:
    found = select(samples, "auditor_node_signed", registry=host, repository=REPOSITORY,
                   tag="v1", kind="platform")
    return {dict(labels)["platform"]: value for labels, value in found.items()}


def test_serve_noncompliant_then_compliant_then_restart_from_state(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    upstream_host, upstream_port = registry.host.rsplit(":", 1)
    with holding_proxy(upstream_host, int(upstream_port)) as proxy:
        image = SignedIndexImage.create(tmp_path, registry.host, REPOSITORY)
        port = free_port()
        state = tmp_path / "state" / "auditor.db"
        state.parent.mkdir()
        config = write_config(
            tmp_path / "auditor.yaml", registries=[proxy.host], repository=REPOSITORY,
            image=image, port=port, state=state, interval="1s", grace_seconds=GRACE,
        )
        log = tmp_path / "serve.log"

        daemon = start_daemon(config, port, log)
        try:
            samples = poll("a noncompliant target",
                           lambda: _target_state(daemon, proxy.host, 0.0))
            assert _platforms(samples, proxy.host) == dict.fromkeys(PLATFORMS, 0.0)
            index = select(samples, "auditor_node_signed", registry=proxy.host, kind="index")
            assert list(index.values()) == [1.0]
            findings = select(samples, "auditor_findings", registry=proxy.host,
                              rule="unsigned-platform")
            assert list(findings.values()) == [3.0]

            image.sign_platforms()
            samples = poll("a compliant target", lambda: _target_state(daemon, proxy.host, 1.0))
            assert _platforms(samples, proxy.host) == dict.fromkeys(PLATFORMS, 1.0)
            expiry = select(samples, "auditor_signature_expiry_timestamp_seconds",
                            registry=proxy.host, kind="platform")
            assert len(expiry) == len(PLATFORMS)
            assert select(samples, "auditor_findings", registry=proxy.host) == {}
            assert select(samples, "auditor_registry_up", registry=proxy.host) != {}
            code, took = daemon.stop(timeout=GRACE + 10)
        finally:
            if daemon.process.poll() is None:
                daemon.process.kill()
        assert code == 0
        assert took < GRACE
        events = [e["event"] for e in daemon.events()]
        assert "audit.finished" in events
        assert events[-1] == "serve.stopped"

        # Restart with the registry held: the start-up run cannot finish, yet /metrics already
        # says what the state says.
        proxy.hold()
        again = start_daemon(config, port, log)
        try:
            samples = poll("metrics from state",
                           lambda: _target_state(again, proxy.host, 1.0), deadline=10)
            assert _platforms(samples, proxy.host) == dict.fromkeys(PLATFORMS, 1.0)
            finished = select(samples, "auditor_audits_total", registry=proxy.host)
            assert sum(finished.values()) == 0.0  # no run of this process has finished
            ready = again.get("/readyz")
            assert ready.status_code == 200, ready.text

            # SIGTERM with the run still hanging: abandoned after the grace period, exit 0.
            code, took = again.stop(timeout=GRACE + 15)
        finally:
            if again.process.poll() is None:
                again.process.kill()
            proxy.release()
        assert code == 0
        assert GRACE - 1 < took < GRACE + 6
        with sqlite3.connect(state) as db:
            results = [r[0] for r in db.execute("SELECT result FROM runs ORDER BY id")]
        assert results[-1] == "abandoned"
        assert "compliant" in results
        assert "noncompliant" in results
        stopping = [e for e in again.events() if e["event"] == "audit.abandoned"]
        assert stopping, again.log.read_text()
