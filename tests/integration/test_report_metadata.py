"""Every report says what it was made with, and why a target could not be checked.

The real ``auditor`` binary runs against the real registry (and, for what a registry cannot be
made to do, the hostile harness: 429, a hang, a malformed manifest). Each kind of failure is
produced for real and read back from the JSON report (``error_category``), the SARIF file (the
notification's ``category``) and the table (``[category]`` after the target).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.runinfo import directory_sha256
from tests.support.binary import run_auditor
from tests.support.hostile import (
    Request,
    Response,
    ScriptedRegistry,
    hostile_server,
    manifest_bytes,
)
from tests.support.receiver import free_port
from tests.support.registry_server import RunningRegistry, registry_server
from tests.support.scenarios import build_signed_sample, push
from tests.support.tls import make_server_pki

FAST = {"retry_attempts": 1, "request_deadline_seconds": 2, "timeout_seconds": 2}


def _write_config(root: Path, doc: dict[str, Any]) -> Path:
    path = root / "auditor.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _audit(root: Path, fmt: str, *targets: str) -> tuple[int, str]:
    out = root / f"report.{fmt}"
    run = run_auditor(
        ["audit", "now", *targets, "--format", fmt, "-o", out], cwd=root, timeout=90
    )
    assert "Traceback" not in run.stderr, run.stderr
    return run.code, out.read_text(encoding="utf-8")


def _categories(root: Path, *targets: str) -> tuple[str, str, str]:
    """The one target's category as the JSON, SARIF and table reports give it."""
    code, text = _audit(root, "json", *targets)
    assert code == 3
    (target,) = json.loads(text)["targets"]
    assert target["status"] == "error"
    assert target["error"]
    from_json = target["error_category"]
    _, text = _audit(root, "sarif", *targets)
    (run,) = json.loads(text)["runs"]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    (from_sarif,) = {n["properties"]["category"] for n in notes if "category" in n["properties"]}
    _, text = _audit(root, "table", *targets)
    head = next(line for line in text.splitlines() if line.startswith("error "))
    from_table = head.rsplit("[", 1)[1].rstrip("]")
    return from_json, from_sarif, from_table


@pytest.fixture
def root(tmp_path: Path) -> Path:
    _write_config(tmp_path, {"limits": FAST})
    return tmp_path


def test_refused_connection_is_connect(root: Path) -> None:
    target = f"127.0.0.1:{free_port()}/team/app:1"
    assert _categories(root, target) == ("connect", "connect", "connect")


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """The real registry serving https with a certificate of a CA nobody trusts here."""
    pki = make_server_pki(tmp_path_factory.mktemp("untrusted-pki"))
    with registry_server(
        tmp_path_factory.mktemp("tls-registry"), tls=(pki.certificate, pki.key)
    ) as running:
        yield running


def test_an_untrusted_certificate_is_tls(root: Path, tls_registry: RunningRegistry) -> None:
    # (https to a loopback port that serves plain http is no failure any more: the auditor
    # reaches it over http, as Docker does for localhost; tests/integration/test_registry_tls.py)
    _write_config(
        root,
        {
            "limits": FAST,
            "registries": [{"url": tls_registry.url, "repositories": ["team/app"]}],
        },
    )
    assert _categories(root, f"{tls_registry.host}/team/app:1") == ("tls", "tls", "tls")


def test_refused_credentials_are_auth(root: Path, basic_auth_registry: RunningRegistry) -> None:
    target = f"{basic_auth_registry.host}/team/app:1"
    assert _categories(root, target) == ("auth", "auth", "auth")


def test_missing_repository_is_not_found(root: Path, registry: RunningRegistry) -> None:
    target = f"{registry.host}/missing-{uuid.uuid4().hex[:8]}/app:1"
    assert _categories(root, target) == ("not-found", "not-found", "not-found")


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedRegistry, str]]:
    script = ScriptedRegistry()
    with hostile_server(script) as server:
        yield script, server.host


def test_429_after_retries_is_rate_limited(
    root: Path, scripted: tuple[ScriptedRegistry, str]
) -> None:
    script, host = scripted
    script.override = lambda request: Response.json(
        429, {"errors": [{"code": "TOOMANYREQUESTS"}]}, [("Retry-After", "0")]
    )
    assert _categories(root, f"{host}/app:1") == ("rate-limited",) * 3


def test_a_registry_that_stops_answering_is_timeout(
    root: Path, scripted: tuple[ScriptedRegistry, str]
) -> None:
    script, host = scripted

    def hang(request: Request) -> Response | None:
        held = Response(200, [("Content-Length", "100")], hang=True)
        return held if "/manifests/" in request.path else None

    script.override = hang
    assert _categories(root, f"{host}/app:1") == ("timeout", "timeout", "timeout")


def test_a_malformed_manifest_is_invalid(
    root: Path, scripted: tuple[ScriptedRegistry, str]
) -> None:
    script, host = scripted
    script.tags["1"] = b'{"schemaVersion": 2, "mediaType": 7}'
    assert _categories(root, f"{host}/app:1") == ("invalid", "invalid", "invalid")


def test_a_root_read_whose_referrers_fail_carries_their_category(
    root: Path, scripted: tuple[ScriptedRegistry, str]
) -> None:
    """The root manifest is read; its signature lookup then hits 429 after retries: the
    target's error is the root node's, and so is its category."""
    script, host = scripted
    script.tags["1"] = manifest_bytes("root-read")

    def limited(request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if "/referrers/" in path or "/manifests/sha256-" in path:
            return Response.json(429, {"errors": [{"code": "TOOMANYREQUESTS"}]},
                                 [("Retry-After", "0")])
        return None

    script.override = limited
    code, text = _audit(root, "json", f"{host}/app:1")
    assert code == 3
    (target,) = json.loads(text)["targets"]
    assert target["digest"] is not None  # the root was read
    assert "rate limited" in target["error"]
    assert target["error_category"] == "rate-limited"


# --- what the report was made with ------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_report_records_version_config_trust_files_and_rules(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    signed = build_signed_sample(tmp_path / "build", name="meta")
    repository = f"meta-{uuid.uuid4().hex[:8]}/app"
    push(registry.host, signed.path, repository)
    config = _write_config(
        tmp_path,
        {
            "registries": [{"url": f"http://{registry.host}", "repositories": [repository]}],
            "trust": {"policy": "build/trustpolicy.oci.json", "store": "build/truststore"},
            "coverage": [
                {"scope": f"{registry.host}/meta-*", "require": "index",
                 "platforms": ["linux/amd64"]}
            ],
        },
    )
    policy, store = tmp_path / "build/trustpolicy.oci.json", tmp_path / "build/truststore"
    named = store / "x509" / "ca"
    (store_name,) = [p.name for p in named.iterdir()]

    _, text = _audit(tmp_path, "json")
    report = json.loads(text)
    run = report["run"]
    from auditor import __version__

    assert run["tool"] == {"name": "registry-auditor", "version": __version__}
    assert run["config"] == {"path": str(config), "sha256": _sha256(config)}
    # config paths are resolved against the config file's directory
    assert run["trust"]["policy"] == {"path": str(policy), "sha256": _sha256(policy)}
    assert run["trust"]["store"] == {"path": str(store), "sha256": directory_sha256(store)}
    assert run["trust"]["stores"] == [
        {
            "name": f"ca:{store_name}",
            "path": str(named / store_name),
            "sha256": directory_sha256(named / store_name),
        }
    ]
    target = report["targets"][0]
    assert target["policy"] == {
        "scope": f"{registry.host}/meta-*",
        "require": "index",
        "platforms": ["linux/amd64"],
        "attestations": "ignore",
        "formats": None,
        "name": None,
    }
    assert "BEGIN CERTIFICATE" not in text  # hashes and paths, never contents

    _, text = _audit(tmp_path, "sarif", "--require", "both")
    (sarif_run,) = json.loads(text)["runs"]
    assert sarif_run["tool"]["driver"]["version"] == __version__
    properties = sarif_run["invocations"][0]["properties"]
    assert properties["config"] == {"path": "auditor.yaml", "sha256": _sha256(config)}
    assert properties["trust"]["policy"] == {
        "path": "build/trustpolicy.oci.json",
        "sha256": _sha256(policy),
    }
    assert str(tmp_path) not in text  # no runner path: relative to the workspace
    rules = {json.dumps(r["properties"]["rule"], sort_keys=True) for r in sarif_run["results"]}
    assert [json.loads(r)["require"] for r in rules] == ["both"]  # --require shows in the data

    _, text = _audit(tmp_path, "table")
    store_hash, named_hash = directory_sha256(store), directory_sha256(named / store_name)
    assert store_hash is not None
    assert named_hash is not None
    footer = [line for line in text.splitlines() if line.startswith("run: ")]
    assert footer == [
        f"run: auditor {__version__}; config {config} (sha256:{_sha256(config)[:12]}); "
        f"trust policy {policy} (sha256:{_sha256(policy)[:12]}); "
        f"trust store {store} (sha256:{store_hash[:12]}); "
        f"stores ca:{store_name} sha256:{named_hash[:12]}"
    ]


def test_a_config_holding_a_password_is_recorded_without_its_hash(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    """The sha256 of a committed config whose only unknown is an inline password is an offline
    oracle for that password: such a file is recorded by path only, in every format."""
    signed = build_signed_sample(tmp_path / "build", name="meta")
    repository = f"meta-{uuid.uuid4().hex[:8]}/app"
    push(registry.host, signed.path, repository)
    password = "hunter2-" + uuid.uuid4().hex
    config = _write_config(
        tmp_path,
        {
            "registries": [{"url": f"http://{registry.host}", "repositories": [repository],
                            "auth": {"username": "ci", "password": password}}],
            "trust": {"policy": "build/trustpolicy.oci.json", "store": "build/truststore"},
        },
    )
    digest = _sha256(config)
    _, text = _audit(tmp_path, "json")
    assert json.loads(text)["run"]["config"] == {"path": str(config), "sha256": None}
    for fmt in ("json", "sarif", "table"):
        _, text = _audit(tmp_path, fmt)
        assert digest[:12] not in text, fmt
        assert password not in text, fmt
    assert f"config {config} (not hashed)" in text
