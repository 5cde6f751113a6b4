"""``auditor serve`` as a real subprocess, a signed-index image on the real registry, and
polls with deadlines over its ``/metrics`` (no fixed sleeps).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from auditor.registry.client import RegistryClient
from auditor.registry.push import push_layout
from devkit.samples import PLATFORMS, SampleLayout, write_sample_layout
from devkit.signing import sign_in_layout
from devkit.testpki import TestPKI, make_pki

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    """``{(name, sorted labels): value}`` for every sample of an exposition."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def select(samples: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of ``name`` whose labels include ``labels``."""
    return {
        key: value
        for (metric, key), value in samples.items()
        if metric == name and all((k, v) in key for k, v in labels.items())
    }


def poll(what: str, probe: Callable[[], T | None], *, deadline: float = 60.0) -> T:
    """Call ``probe`` until it returns something (not None) or ``deadline`` seconds pass."""
    end = time.monotonic() + deadline
    last_error: Exception | None = None
    while time.monotonic() < end:
        try:
            value = probe()
        except (httpx.HTTPError, OSError) as exc:
            last_error, value = exc, None
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {deadline}s waiting for {what} (last: {last_error})")


@dataclass
class SignedIndexImage:
    """The sample multi-platform image with only its index signed, and the trust files that
    accept the signer; ``sign_platforms`` adds valid signatures to every platform."""

    workdir: Path
    registry_host: str
    repository: str
    sample: SampleLayout
    pki: TestPKI
    policy: Path
    store: Path

    @classmethod
    def create(
        cls,
        workdir: Path,
        registry_host: str,
        repository: str,
        *,
        validity_days: int = 30,
        leaf_expires_in: timedelta | None = None,
        push: bool = True,
    ) -> SignedIndexImage:
        """``leaf_expires_in``: the signing certificate expires that long from now (the CA
        certificates stay valid), to watch a signature stop counting during a test."""
        sample = write_sample_layout(workdir / "layout", name=repository.replace("/", "-"))
        if leaf_expires_in is None:
            pki = make_pki(name=f"{repository} release", validity=timedelta(days=validity_days))
        else:
            hour_ago = datetime.now(UTC) - timedelta(hours=1)
            pki = make_pki(
                name=f"{repository} release",
                not_before=hour_ago,
                leaf_validity=timedelta(hours=1) + leaf_expires_in,
            )
        sign_in_layout(sample.path, sample.index, pki.leaf.key, pki.chain, signing_time=_now())
        store = workdir / "truststore"
        pki.write_trust_store(store, "release")
        policy = workdir / "trustpolicy.oci.json"
        policy.write_text(
            json.dumps(
                {
                    "version": "1.0",
                    "trustPolicies": [
                        {
                            "name": "release",
                            "registryScopes": ["*"],
                            "signatureVerification": {"level": "strict", "override": {
                                "revocation": "skip"}},
                            "trustStores": ["ca:release"],
                            "trustedIdentities": ["*"],
                        }
                    ],
                }
            )
        )
        image = cls(workdir, registry_host, repository, sample, pki, policy, store)
        if push:
            image.push()
        return image

    def push(self) -> None:
        import asyncio

        async def run() -> None:
            async with httpx.AsyncClient(timeout=30) as http:
                client = RegistryClient(self.registry_host, http)
                await push_layout(client, self.sample.path, self.repository,
                                  update_fallback_tags=True)

        asyncio.run(run())

    def sign_platforms(self, platforms: tuple[str, ...] = PLATFORMS) -> None:
        for platform in platforms:
            sign_in_layout(
                self.sample.path, self.sample.platforms[platform], self.pki.leaf.key,
                self.pki.chain, signing_time=_now(),
            )
        self.push()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def write_config(
    path: Path,
    *,
    registries: list[str],
    repository: str,
    image: SignedIndexImage,
    port: int,
    state: Path,
    interval: str = "2s",
    grace_seconds: float = 10,
    timeout_seconds: float = 30,
    extra: str = "",
    server_extra: str = "",
) -> Path:
    lines = ["registries:"]
    for host in registries:
        lines += [f"  - url: http://{host}", f"    repositories: [{repository}]",
                  '    tags: {include: ["v1"]}']
    lines += [
        "trust:",
        f"  policy: {image.policy}",
        f"  store: {image.store}",
        f"schedule: {{interval: {interval}, jitter: 0s}}",
        f'server: {{listen: "127.0.0.1:{port}", grace_seconds: {grace_seconds}{server_extra}}}',
        f"state: {{path: {state}}}",
        f"limits: {{timeout_seconds: {timeout_seconds}}}",
    ]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@dataclass
class Daemon:
    """A running ``auditor serve``; its JSON log lines are kept in ``log``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5, **kwargs)  # type: ignore[arg-type]

    def metrics(self) -> Samples:
        response = self.get("/metrics")
        response.raise_for_status()
        return parse_metrics(response.text)

    def events(self) -> list[dict[str, object]]:
        out = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "<not json>", "line": line})
        return out

    def stop(self, timeout: float) -> tuple[int, float]:
        """SIGTERM; the exit code and how long the exit took."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - began


def start_daemon(
    config: Path, port: int, log: Path, env: Mapping[str, str] | None = None
) -> Daemon:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "XDG_CONFIG"))
    }
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment["XDG_CONFIG_HOME"] = str(config.parent / "xdg")
    environment.update(env or {})
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "auditor", "serve", "--config", str(config)],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=environment,
        cwd=config.parent,
    )
    handle.close()
    daemon = Daemon(process, port, log)
    poll("the daemon's /healthz", lambda: _healthy(daemon), deadline=30)
    return daemon


def _healthy(daemon: Daemon) -> bool | None:
    if daemon.process.poll() is not None:
        raise AssertionError(
            f"auditor serve exited with {daemon.process.returncode}: {daemon.log.read_text()}"
        )
    return True if daemon.get("/healthz").status_code == 200 else None
