"""Start Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1 with throw-away storage.

Used by the demo and by the tests: a real registry, not a fake, bound to loopback only.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from auditor.errors import AuditorError

BINARY = "docker-registry"
START_TIMEOUT_SECONDS = 15.0


class RegistryStartError(AuditorError):
    """The local registry could not be started."""


@dataclass(frozen=True)
class LocalRegistry:
    """A running registry: ``url`` is ``http://127.0.0.1:PORT``, ``host`` is ``127.0.0.1:PORT``."""

    url: str
    host: str
    workdir: Path


def binary_path() -> str | None:
    return shutil.which(BINARY)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def registry_config(
    workdir: Path,
    port: int,
    auth: Mapping[str, Any] | None = None,
    notifications: Mapping[str, Any] | None = None,
    *,
    access_log: bool = False,
    tls: tuple[Path, Path] | None = None,
) -> str:
    """distribution's config (JSON is YAML): filesystem storage in ``workdir``, deletes on;
    ``notifications`` is its ``notifications:`` section (where it posts push events).
    ``access_log`` turns on one combined-log line per request in ``registry.log``: the
    benchmarks count requests there, from any process, without hooking a client."""
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": not access_log}},
        "storage": {
            "filesystem": {"rootdirectory": str(workdir / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex},
    }
    if tls is not None:
        # (certificate, key) PEM files: the registry serves https only on its port.
        config["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    if auth:
        config["auth"] = dict(auth)
    if notifications:
        config["notifications"] = dict(notifications)
    return json.dumps(config)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RegistryStartError(f"docker-registry exited early: {tail}")
        try:
            # Readiness of the process we just started on loopback: its certificate is the
            # test's to check, not this probe's.
            httpx.get(f"{url}/v2/", timeout=1.0, verify=False)  # noqa: S501
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        return
    raise RegistryStartError(f"docker-registry did not answer on {url} in {START_TIMEOUT_SECONDS}s")


@contextlib.contextmanager
def local_registry(
    workdir: Path,
    auth: Mapping[str, Any] | None = None,
    notifications: Mapping[str, Any] | None = None,
    *,
    access_log: bool = False,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[LocalRegistry]:
    """Run a registry whose config, storage and log live in ``workdir``; stop it on exit."""
    binary = binary_path()
    if binary is None:
        raise RegistryStartError(
            "docker-registry is not installed (Debian package docker-registry; ./dev installs it)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = workdir / "config.yml"
    config_path.write_text(
        registry_config(workdir, port, auth, notifications, access_log=access_log, tls=tls)
    )
    log_path = workdir / "registry.log"
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_ready(url, process, log_path)
        yield LocalRegistry(url=url, host=f"127.0.0.1:{port}", workdir=workdir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
