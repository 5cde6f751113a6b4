"""docker config.json lookup, with real credential-helper programs written to a temp PATH."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from auditor.errors import AuthError, ConfigError
from auditor.registry.credentials import (
    DOCKER_HUB_KEY,
    docker_credentials,
    normalize_key,
    server_address,
)


def _config(tmp_path: Path, doc: dict[str, object]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, script: str) -> Path:
    """Install ``docker-credential-<name>`` (a real executable) on PATH; it logs its stdin."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    program = bindir / f"docker-credential-{name}"
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    return bindir


def test_key_normalisation() -> None:
    assert normalize_key("https://index.docker.io/v1/") == "index.docker.io"
    assert normalize_key("http://127.0.0.1:5000") == "127.0.0.1:5000"
    assert normalize_key("Registry.Example:443/") == "registry.example:443"
    assert server_address("docker.io") == DOCKER_HUB_KEY
    assert server_address("ghcr.io") == "ghcr.io"


async def test_auths_forms(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": _auth("hubuser", "hub:pw")},
                "ghcr.io": {"username": "gh", "password": "ghpw"},
                "https://acr.example/": {"identitytoken": "refresh-me"},
            }
        },
    )
    hub = await docker_credentials("docker.io", path)
    assert hub is not None
    assert hub.username == "hubuser"
    assert hub.password is not None
    assert hub.password.reveal() == "hub:pw"  # only the first colon splits
    gh = await docker_credentials("ghcr.io", path)
    assert gh is not None
    assert (gh.username, gh.password.reveal() if gh.password else None) == ("gh", "ghpw")
    acr = await docker_credentials("acr.example", path)
    assert acr is not None
    assert acr.identity_token is not None
    assert acr.identity_token.reveal() == "refresh-me"
    assert await docker_credentials("quay.io", path) is None
    assert "ghpw" not in repr(gh)


async def test_bad_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        await docker_credentials("x", tmp_path / "missing.json")
    bad = _config(tmp_path, {"auths": {"x.io": {"auth": "!!!not base64"}}})
    with pytest.raises(ConfigError, match=r"auths entry for x.io: 'auth' is not base64"):
        await docker_credentials("x.io", bad)


async def test_cred_helper_gets_host_on_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "stdin.log"
    _helper(
        tmp_path,
        monkeypatch,
        "fake",
        f'[ "$1" = get ] || exit 3\ncat > {log}\n'
        'echo \'{"ServerURL":"x","Username":"robot","Secret":"helper-secret"}\'\n',
    )
    path = _config(tmp_path, {"credHelpers": {"reg.example:5000": "fake"}})
    creds = await docker_credentials("reg.example:5000", path)
    assert creds is not None
    assert creds.username == "robot"
    assert creds.password is not None
    assert creds.password.reveal() == "helper-secret"
    assert log.read_text() == "reg.example:5000"
    # Docker Hub is asked for by its legacy server URL.
    hub = _config(tmp_path, {"credsStore": "fake"})
    await docker_credentials("docker.io", hub)
    assert log.read_text() == DOCKER_HUB_KEY


async def test_cred_helper_identity_token_and_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _helper(
        tmp_path,
        monkeypatch,
        "tok",
        'read host\nif [ "$host" = known.io ]; then\n'
        '  echo \'{"Username":"<token>","Secret":"idtok"}\'\n'
        "else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
    )
    path = _config(
        tmp_path,
        {"credsStore": "tok", "auths": {"other.io": {"auth": _auth("fileuser", "filepw")}}},
    )
    known = await docker_credentials("known.io", path)
    assert known is not None
    assert known.identity_token is not None
    assert known.identity_token.reveal() == "idtok"
    # Nothing in the store: fall back to the auths entry, else anonymous.
    other = await docker_credentials("other.io", path)
    assert other is not None
    assert other.username == "fileuser"
    assert await docker_credentials("nowhere.io", path) is None


async def test_missing_failing_and_slow_helpers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _helper(tmp_path, monkeypatch, "broken", "echo 'boom' >&2\nexit 2\n")
    _helper(tmp_path, monkeypatch, "slow", "sleep 5\n")
    missing = _config(tmp_path, {"credHelpers": {"a.io": "absent"}})
    with pytest.raises(
        AuthError, match=r"^a\.io: credential helper docker-credential-absent is not"
    ):
        await docker_credentials("a.io", missing)
    broken = _config(tmp_path, {"credsStore": "broken"})
    with pytest.raises(AuthError, match=r"docker-credential-broken failed \(exit 2\)"):
        await docker_credentials("a.io", broken)
    slow = _config(tmp_path, {"credsStore": "slow"})
    with pytest.raises(AuthError, match="docker-credential-slow timed out"):
        await docker_credentials("a.io", slow, helper_timeout=0.2)
