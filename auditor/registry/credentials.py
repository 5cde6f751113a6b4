"""Stored logins: docker's ``config.json`` and notation's, each with ``auths``, ``credHelpers``
and ``credsStore``.

Lookup in one file follows docker's order: a per-registry ``credHelpers`` entry, else the
global ``credsStore``, else the ``auths`` entry. Helpers are run as
``docker-credential-<name> get`` with the server address on stdin. Values are wrapped in
:class:`Secret` straight away.

Which file, as ``notation`` chooses (its ``internal/auth`` credentials store): notation's own
``config.json`` (in notation's config directory; written by ``notation login``) when it has any
login configured (a ``credsStore``, a ``credHelpers`` entry or an ``auths`` entry), else
docker's (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from auditor.errors import AuthError, ConfigError
from auditor.notary.trustconfig import notation_config_dir
from auditor.registry.auth import Credentials
from auditor.registry.secret import Secret

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
HELPER_TIMEOUT = 10.0
HELPER_OUTPUT_LIMIT = 64 * 1024  # a helper answers a few hundred bytes of JSON
# docker marks an identity token by this literal username; not a password.
_IDENTITY_TOKEN_USER = "<token>"  # noqa: S105
_NOT_FOUND = "credentials not found"


def default_docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def notation_login_path() -> Path:
    """``config.json`` in notation's config directory (where ``notation login`` records its
    credential store, or plain ``auths``)."""
    return notation_config_dir() / "config.json"


def has_logins(doc: dict[str, Any]) -> bool:
    """Whether a config file configures any login, as notation decides which file to use: a
    non-empty ``credsStore``, ``credHelpers`` or ``auths``."""
    return any(bool(doc.get(key)) for key in ("credsStore", "credHelpers", "auths"))


def stored_logins_path() -> Path | None:
    """The file whose logins count, as notation picks it: notation's ``config.json`` when it
    configures a login, else docker's when it exists; None when neither does."""
    notation = notation_login_path()
    if notation.is_file() and has_logins(load_docker_config(notation)):
        return notation
    docker = default_docker_config_path()
    return docker if docker.is_file() else None


def normalize_key(key: str) -> str:
    """An ``auths`` key as a bare host (docker accepts ``https://host/v1/`` and ``host``)."""
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return key.split("/", 1)[0].lower()


def server_address(host: str) -> str:
    """What docker calls the server for ``host``: Docker Hub's legacy URL, else the host."""
    return DOCKER_HUB_KEY if host.lower() in DOCKER_HUB_HOSTS else host


_MAX_CONFIG_BYTES = 4 * 1024 * 1024


def load_docker_config(path: Path) -> dict[str, Any]:
    """A docker-format config file (docker's, or notation's own ``config.json``), bounded."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_CONFIG_BYTES + 1)
        if len(raw) > _MAX_CONFIG_BYTES:
            raise ConfigError(f"docker config {path}: larger than {_MAX_CONFIG_BYTES} bytes")
        doc = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"docker config {path} does not exist") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(
            f"docker config {path} is not readable JSON ({type(exc).__name__})"
        ) from None
    if not isinstance(doc, dict):
        raise ConfigError(f"docker config {path}: top level is not an object")
    return doc


def _find_entry(table: Any, host: str) -> Any:
    """The value keyed by ``host`` in a docker config table, keys compared as docker does."""
    if not isinstance(table, dict):
        return None
    wanted = normalize_key(server_address(host))
    hub = host.lower() in DOCKER_HUB_HOSTS
    for key, value in table.items():
        if not isinstance(key, str):
            continue
        normalized = normalize_key(key)
        if normalized == wanted or (hub and normalized in DOCKER_HUB_HOSTS):
            return value
    return None


def credentials_from_auths(doc: dict[str, Any], host: str, path: Path) -> Credentials | None:
    entry = _find_entry(doc.get("auths"), host)
    if not isinstance(entry, dict):
        return None
    where = f"docker config {path}: auths entry for {host}"
    identity = entry.get("identitytoken")
    username, password = entry.get("username"), entry.get("password")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigError(f"{where}: 'auth' is not base64 of user:password") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise ConfigError(f"{where}: 'auth' is not base64 of user:password")
    if isinstance(identity, str) and identity:
        return Credentials(
            username=username if isinstance(username, str) else None,
            identity_token=Secret(identity),
        )
    if isinstance(username, str) and username and isinstance(password, str):
        return Credentials(username=username, password=Secret(password))
    return None


async def run_helper(
    name: str, host: str, time_limit: float = HELPER_TIMEOUT
) -> Credentials | None:
    """Ask ``docker-credential-<name>``; None when it has nothing for this host."""
    program = f"docker-credential-{name}"
    executable = shutil.which(program)
    if executable is None:
        raise AuthError(f"{host}: credential helper {program} is not on PATH")
    process = await asyncio.create_subprocess_exec(
        executable,
        "get",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, so a timeout can end its children too
    )
    try:
        out, err = await asyncio.wait_for(
            _communicate_bounded(process, server_address(host).encode()), time_limit
        )
    except TimeoutError:
        await _end(process)
        raise AuthError(
            f"{host}: credential helper {program} timed out after {time_limit}s"
        ) from None
    except _TooMuchOutput:
        await _end(process)
        raise AuthError(
            f"{host}: credential helper {program} wrote more than {HELPER_OUTPUT_LIMIT} bytes"
        ) from None
    if process.returncode != 0:
        if _NOT_FOUND in (out + err).decode("utf-8", "replace").lower():
            return None
        raise AuthError(f"{host}: credential helper {program} failed (exit {process.returncode})")
    try:
        doc = json.loads(out)
    except (ValueError, RecursionError):
        raise AuthError(f"{host}: credential helper {program} did not answer JSON") from None
    username = doc.get("Username") if isinstance(doc, dict) else None
    secret = doc.get("Secret") if isinstance(doc, dict) else None
    if not isinstance(username, str) or not isinstance(secret, str) or not secret:
        raise AuthError(f"{host}: credential helper {program} answered without Username/Secret")
    if username == _IDENTITY_TOKEN_USER:
        return Credentials(identity_token=Secret(secret))
    return Credentials(username=username, password=Secret(secret))


class _TooMuchOutput(Exception):
    pass


async def _end(process: asyncio.subprocess.Process) -> None:
    """Kill the helper's process group and reap it.

    asyncio's ``wait()`` only returns once the pipes are closed too, and a pipe whose reader
    stopped (past the output limit) stays open with data in it: drain both to their end
    (the writers are dead, so that end comes), within a bound in case a grandchild that left
    the group keeps one open.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)

    async def drain(stream: asyncio.StreamReader | None) -> None:
        while stream is not None and await stream.read(64 * 1024):
            pass

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(HELPER_TIMEOUT):
            await asyncio.gather(drain(process.stdout), drain(process.stderr))
            await process.wait()


async def _read_bounded(stream: asyncio.StreamReader | None) -> bytes:
    """A pipe read to its end, but never more than HELPER_OUTPUT_LIMIT bytes into memory."""
    if stream is None:
        return b""
    chunks: list[bytes] = []
    total = 0
    while chunk := await stream.read(16 * 1024):
        total += len(chunk)
        if total > HELPER_OUTPUT_LIMIT:
            raise _TooMuchOutput
        chunks.append(chunk)
    return b"".join(chunks)


async def _communicate_bounded(
    process: asyncio.subprocess.Process, data: bytes
) -> tuple[bytes, bytes]:
    """``communicate`` with the output limit checked as it is read (not after)."""
    if process.stdin is not None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.write(data)
            await process.stdin.drain()
        process.stdin.close()
    readers = [
        asyncio.ensure_future(_read_bounded(process.stdout)),
        asyncio.ensure_future(_read_bounded(process.stderr)),
    ]
    try:
        out, err = await asyncio.gather(*readers)
    finally:
        # One reader failing (too much output) or a timeout must not leave the other
        # reading: the pipes are drained by _end() next, with no reader in the way.
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    await process.wait()
    return out, err


async def docker_credentials(
    host: str, path: Path | None = None, *, helper_timeout: float = HELPER_TIMEOUT
) -> Credentials | None:
    """Credentials docker would use for ``host`` (``host[:port]``), or None for anonymous."""
    path = path or default_docker_config_path()
    doc = load_docker_config(path)
    helper = _find_entry(doc.get("credHelpers"), host)
    if not isinstance(helper, str) or not helper:
        store = doc.get("credsStore")
        helper = store if isinstance(store, str) and store else None
    if helper is not None:
        found = await run_helper(helper, host, helper_timeout)
        if found is not None:
            return found
    return credentials_from_auths(doc, host, path)
