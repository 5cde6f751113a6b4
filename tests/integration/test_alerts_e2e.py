"""Alerts end to end: the real registry, ``auditor serve`` as a subprocess, real HTTP receivers
standing in for Slack and a generic webhook.

One story per test, each step polled with a deadline: an index signed with unsigned platforms
raises exactly one alert over several runs; signing the platforms sends ``resolved``; a
restart sends nothing new; deleting a platform's signature raises a new alert; a receiver that
was down gets every pending message, in order, once it is up; a certificate that expires
during the test raises ``expiring`` and then a finding; a push, with the registry's
notifications pointed at the daemon, brings the alert within the latency target.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditor.oci import mediatypes as mt
from auditor.oci.digest import fallback_tag
from auditor.registry.client import RegistryClient
from auditor.registry.push import fallback_index, push_manifest
from devkit.devregistry import free_port
from devkit.samples import PLATFORMS
from tests.support.daemon import Daemon, SignedIndexImage, poll, select, start_daemon, write_config
from tests.support.receiver import Receiver, receiver
from tests.support.registry_server import RunningRegistry, registry_server

pytestmark = pytest.mark.registry

SECRET = "hook-secret-e2e"
EVENTS_TOKEN = "events-token-e2e"
EVENTS_SERVER = ", events_token_env: E2E_EVENTS_TOKEN"


def _alerts_config(slack: Receiver, hook: Receiver, *, extra: str = "") -> str:
    return (
        "alerts:\n"
        "  slack: {webhook_url_env: E2E_SLACK_URL}\n"
        f"  webhooks: [{{url: '{hook.url}', secret_env: E2E_HOOK_SECRET, name: ops}}]\n"
        "  error_after: 1h\n" + extra
    )


def _env(slack: Receiver) -> dict[str, str]:
    return {"E2E_SLACK_URL": slack.url, "E2E_HOOK_SECRET": SECRET}


def _transitions(r: Receiver) -> list[str]:
    return [m.json()["transition"] for m in r.received]


def _slack_headlines(r: Receiver) -> list[str]:
    return [m.json()["blocks"][0]["text"]["text"].split(":")[0] for m in r.received]


def _runs_finished(daemon: Daemon) -> float:
    return sum(select(daemon.metrics(), "auditor_audits_total").values())


def _wait_runs(daemon: Daemon, more: int) -> None:
    start = _runs_finished(daemon)
    poll(f"{more} more runs", lambda: True if _runs_finished(daemon) >= start + more else None)


def _ignored(daemon: Daemon) -> float:
    return sum(select(daemon.metrics(), "auditor_events_total", result="ignored").values())


def _event_audits(daemon: Daemon) -> float:
    return sum(select(daemon.metrics(), "auditor_event_audits_total").values())


def _delete_signatures(registry_host: str, repository: str, digest: str) -> None:
    """Drop every signature of ``digest``: its fallback tag becomes an empty index (what a
    registry without the referrers API shows once the signature is deleted)."""

    async def run() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            client = RegistryClient(registry_host, http)
            await push_manifest(
                client, repository, fallback_tag(digest), fallback_index([]), mt.OCI_INDEX
            )

    asyncio.run(run())


def _daemon_config(
    tmp_path: Path,
    registry_host: str,
    image: SignedIndexImage,
    receivers: tuple[Receiver, Receiver],
    *,
    interval: str,
    events: bool = False,
) -> tuple[Path, int]:
    """A daemon config auditing ``image``'s repository, alerting both receivers; its port."""
    slack, hook = receivers
    port = free_port()
    config = write_config(
        tmp_path / "auditor.yaml",
        registries=[registry_host],
        repository=image.repository,
        image=image,
        port=port,
        state=tmp_path / "auditor.db",
        interval=interval,
        extra=_alerts_config(slack, hook),
        server_extra=EVENTS_SERVER if events else "",
    )
    return config, port


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    with receiver() as slack, receiver() as hook:
        yield slack, hook


def test_one_alert_resolved_restart_quiet_drift_and_a_receiver_that_was_down(
    registry: RunningRegistry, tmp_path: Path, receivers: tuple[Receiver, Receiver]
) -> None:
    slack, hook = receivers
    repository = "e2e/alerts"
    image = SignedIndexImage.create(tmp_path, registry.host, repository)
    config, port = _daemon_config(
        tmp_path, registry.host, image, receivers, interval="1s"
    )
    log = tmp_path / "serve.log"
    daemon = start_daemon(config, port, log, env=_env(slack))
    try:
        hook.wait_for(lambda got: len(got) >= 1)
        _wait_runs(daemon, 4)
        # Exactly one message per sink over several runs.
        assert _transitions(hook) == ["opened"]
        assert _slack_headlines(slack) == ["Unsigned or invalid images"]
        opened = hook.received[0].json()
        platforms = {f["platform"] for f in opened["findings"]["opened"]}
        assert platforms == set(PLATFORMS)
        assert {f["node"] for f in opened["findings"]["opened"]} == {
            image.sample.platforms[p].digest for p in PLATFORMS
        }
        assert all(f["rule"] for f in opened["findings"]["opened"])
        body = hook.received[0].body
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hook.received[0].headers["X-Auditor-Signature"] == expected
        assert opened["report"]["status"] == "noncompliant"

        # Fixed: one "resolved".
        image.sign_platforms()
        hook.wait_for(lambda got: len(got) >= 2)
        slack.wait_for(lambda got: len(got) >= 2)
        assert _transitions(hook) == ["opened", "resolved"]
        code, _ = daemon.stop(timeout=30)
        assert code == 0
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()

    # Restarted: several runs, nothing new.
    daemon = start_daemon(config, port, log, env=_env(slack))
    try:
        _wait_runs(daemon, 3)
        assert _transitions(hook) == ["opened", "resolved"]
        assert len(slack.received) == 2

        # The webhook receiver goes down; a signature is deleted (drift), then fixed again.
        hook.stop()
        arm = image.sample.platforms[PLATFORMS[-1]].digest
        _delete_signatures(registry.host, repository, arm)
        slack.wait_for(lambda got: len(got) >= 3)
        drift = slack.received[2].json()
        assert "Unsigned or invalid images" in drift["text"]
        assert arm in str(drift["blocks"])
        image.sign_platforms((PLATFORMS[-1],))
        slack.wait_for(lambda got: len(got) >= 4)
        poll(
            "two messages pending for the webhook",
            lambda: (
                list(
                    select(daemon.metrics(), "auditor_alerts_pending", sink="webhook:ops").values()
                )
                == [2.0]
                or None
            ),
        )

        # Back up: both pending messages, in the order they were decided, once each.
        hook.start()
        hook.wait_for(lambda got: len(got) >= 4)
        _wait_runs(daemon, 2)
        assert _transitions(hook) == ["opened", "resolved", "opened", "resolved"]
        ids = [m.json()["delivery_id"] for m in hook.received]
        assert len(set(ids)) == len(ids)
        drifted = hook.received[2].json()
        assert [f["node"] for f in drifted["findings"]["opened"]] == [arm]
        assert [(c["node"], c["before"], c["after"]) for c in drifted["node_changes"]] == [
            (arm, "signed", "unsigned")
        ]
        sent = select(
            daemon.metrics(), "auditor_alerts_sent_total", sink="webhook:ops", result="sent"
        )
        assert list(sent.values()) == [2.0]
        code, _ = daemon.stop(timeout=30)
        assert code == 0
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
    for line in log.read_text().splitlines():
        assert SECRET not in line
        assert slack.url not in line


def test_certificate_expiring_during_the_test_warns_then_becomes_a_finding(
    registry: RunningRegistry, tmp_path: Path, receivers: tuple[Receiver, Receiver]
) -> None:
    slack, hook = receivers
    repository = "e2e/expiring"
    # A signer whose certificates expire a few seconds from now; everything signed by it.
    image = SignedIndexImage.create(
        tmp_path, registry.host, repository, leaf_expires_in=timedelta(seconds=15)
    )
    image.sign_platforms()
    config, port = _daemon_config(
        tmp_path, registry.host, image, receivers, interval="1s"
    )
    daemon = start_daemon(config, port, tmp_path / "serve.log", env=_env(slack))
    try:
        hook.wait_for(lambda got: len(got) >= 1)
        warned = hook.received[0].json()
        assert warned["transition"] == "expiring"
        assert len(warned["expiring"]) == 1 + len(PLATFORMS)
        hook.wait_for(lambda got: len(got) >= 2, timeout=40)
        expired = hook.received[1].json()
        assert expired["transition"] == "opened"
        assert {f["kind"] for f in expired["findings"]["opened"]} == {"invalid-signature"}
        assert _transitions(hook) == ["expiring", "opened"]
    finally:
        daemon.stop(timeout=30)


def test_push_is_audited_and_alerted_within_seconds(
    tmp_path: Path, receivers: tuple[Receiver, Receiver]
) -> None:
    slack, hook = receivers
    port = free_port()
    notifications: dict[str, Any] = {
        "endpoints": [
            {
                "name": "auditor",
                "url": f"http://127.0.0.1:{port}/events",
                "headers": {"Authorization": [f"Bearer {EVENTS_TOKEN}"]},
                "timeout": "2s",
                "threshold": 3,
                "backoff": "1s",
            }
        ]
    }
    with registry_server(tmp_path / "registry", notifications=notifications) as notifying:
        repository = "e2e/push"
        image = SignedIndexImage.create(tmp_path, notifying.host, repository, push=False)
        config = write_config(
            tmp_path / "auditor.yaml",
            registries=[notifying.host],
            repository=repository,
            image=image,
            port=port,
            state=tmp_path / "auditor.db",
            interval="6h",
            extra=_alerts_config(slack, hook),
            server_extra=EVENTS_SERVER,
        )
        env = {**_env(slack), "E2E_EVENTS_TOKEN": EVENTS_TOKEN}
        daemon = start_daemon(config, port, tmp_path / "serve.log", env=env)
        try:
            # The start-up audit sees an empty repository (no alert for "nothing there").
            poll("the start-up run", lambda: _runs_finished(daemon) >= 1 or None)
            assert hook.received == []
            pushed = time.monotonic()
            image.push()
            hook.wait_for(lambda got: len(got) >= 1, timeout=20)
            latency = time.monotonic() - pushed
            print(f"push-to-alert latency: {latency:.2f} s")
            assert _transitions(hook) == ["opened"]
            assert latency < 5.0
            events = select(daemon.metrics(), "auditor_events_total", result="accepted")
            assert sum(events.values()) >= 1
            # The daemon's own reads are notified too ("pull"): seen, ignored, never audited.
            poll("pull events from the daemon's own reads", lambda: _ignored(daemon) or None)
            audits = _event_audits(daemon)
            time.sleep(2.5)  # two debounce periods: long enough for a wrongly counted pull
            assert _event_audits(daemon) == audits
        finally:
            daemon.stop(timeout=30)


def test_events_need_the_token(
    registry: RunningRegistry, tmp_path: Path, receivers: tuple[Receiver, Receiver]
) -> None:
    slack, _ = receivers
    repository = "e2e/events-auth"
    image = SignedIndexImage.create(tmp_path, registry.host, repository)
    config, port = _daemon_config(
        tmp_path, registry.host, image, receivers, interval="6h", events=True
    )
    env = {**_env(slack), "E2E_EVENTS_TOKEN": EVENTS_TOKEN}
    daemon = start_daemon(config, port, tmp_path / "serve.log", env=env)
    try:
        body = {"reference": f"{registry.host}/{repository}:v1"}
        assert httpx.post(f"{daemon.url}/events", json=body).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.post(f"{daemon.url}/events", json=body, headers=wrong).status_code == 401
        good = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
        other = {"reference": "127.0.0.9:1/not/watched:v1"}
        answer = httpx.post(f"{daemon.url}/events", json=other, headers=good)
        assert answer.status_code == 202
        assert answer.json()["accepted"] == 0
        bad = httpx.post(f"{daemon.url}/events", content=b"[" * 200_000, headers=good)
        assert bad.status_code == 400
        huge = httpx.post(f"{daemon.url}/events", content=b" " * (2 * 1024 * 1024), headers=good)
        assert huge.status_code == 413
        harbor = {"Authorization": EVENTS_TOKEN}
        answer = httpx.post(f"{daemon.url}/events", json=body, headers=harbor)
        assert answer.status_code == 202
        assert answer.json()["accepted"] == 1
        samples = daemon.metrics()
        assert list(select(samples, "auditor_events_total", result="unauthorized").values()) == [
            2.0
        ]
        assert list(
            select(samples, "auditor_events_total", result="unknown_registry").values()
        ) == [1.0]
        assert EVENTS_TOKEN not in (tmp_path / "serve.log").read_text()
    finally:
        daemon.stop(timeout=30)
