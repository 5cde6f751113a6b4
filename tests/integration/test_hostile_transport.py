"""Hostile registries, end to end through ``auditor audit now`` (issue 7, transport half).

Each test scripts a registry on 127.0.0.1 (tests/support/hostile.py) to do what an attacker
or a broken registry would, and asserts four things: the verdict, the exit code, that no
secret reached an origin it does not belong to (every server records what it received), and
a time bound (a hang must end). A real registry cannot redirect, drip, compress, rate-limit or
serve unparseable URLs on demand; those answers are scripted, and said so per test.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli  # type: ignore[import-untyped]
import pytest
import yaml

from auditor.oci import mediatypes as mt
from tests.support.hostile import (
    HostileServer,
    Request,
    Response,
    ScriptedRegistry,
    hostile_server,
    manifest_bytes,
)
from tests.support.scenarios import CliRun, audit_json, isolate_environment, run_cli

PASSWORD = "hostile-s3cret-pw"
REFRESH = "hostile-s3cret-refresh"
TOKEN = "issued-token-s3cret"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("HOSTILE_PW", PASSWORD)
    monkeypatch.setenv("HOSTILE_REFRESH", REFRESH)


def write_config(
    path: Path,
    server: HostileServer,
    *,
    auth: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    verify_children_exist: bool = False,
) -> Path:
    registry: dict[str, Any] = {"url": server.url, "repositories": ["app"]}
    if auth is not None:
        registry["auth"] = auth
    doc: dict[str, Any] = {"registries": [registry], "limits": limits or {}}
    if verify_children_exist:
        doc["verify_children_exist"] = True
    path.write_text(yaml.safe_dump(doc))
    return path


def audit(config: Path, *targets: str) -> tuple[CliRun, float]:
    started = time.monotonic()
    run = audit_json(*targets, "--config", config)
    return run, time.monotonic() - started


def assert_clean_output(run: CliRun, *secrets: str) -> None:
    for text in (run.stdout, run.stderr):
        assert "Traceback" not in text
        for secret in secrets:
            assert secret not in text


def target_errors(run: CliRun) -> list[str]:
    return [t["error"] or "" for t in run.report["targets"]]


def basic_ok(request: Request) -> bool:
    expected = "Basic " + base64.b64encode(f"bot:{PASSWORD}".encode()).decode()
    return request.headers.get("authorization") == expected


BASIC_AUTH = {"username": "bot", "password_env": "HOSTILE_PW"}
FAST = {"timeout_seconds": 2, "request_deadline_seconds": 3, "retry_attempts": 2,
        "retry_budget_seconds": 2}


@pytest.fixture
def elsewhere() -> Iterator[HostileServer]:
    """Another origin: whatever it receives is recorded; it asks for credentials."""

    def handler(request: Request) -> Response:
        realm = f'Bearer realm="http://127.0.0.1:{server.port}/token",service="evil"'
        if request.path.startswith("/token"):
            return Response.json(200, {"token": "evil-token"})
        return Response.json(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                             [("WWW-Authenticate", realm)])

    with hostile_server(handler) as server:
        yield server


# --- 2. credentials stay with the registry they belong to ---------------------------------


def test_redirect_to_another_origin_gets_no_credentials(
    tmp_path: Path, elsewhere: HostileServer
) -> None:
    """Scripted: the registry redirects the manifest to another origin, which then asks for
    authentication (a 401 with its own realm). Neither the password nor a token goes there."""
    registry = ScriptedRegistry(tags={"v1": manifest_bytes("v1")})

    def override(request: Request) -> Response | None:
        if not basic_ok(request):
            return Response.json(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                                 [("WWW-Authenticate", 'Basic realm="hostile"')])
        if "/manifests/" in request.path:
            return Response(307, [("Location", f"{elsewhere.url}{request.path}")])
        return None

    registry.override = override
    with hostile_server(registry) as server:
        config = write_config(tmp_path / "a.yaml", server, auth=BASIC_AUTH)
        run, elapsed = audit(config, f"{server.host}/app:v1")
        assert server.received(PASSWORD), "the registry itself gets the credentials"
    assert run.code == 3
    [error] = target_errors(run)
    assert "reached by a redirect, asks for authentication" in error
    assert elsewhere.requests, "the redirect was followed (without credentials)"
    assert elsewhere.received(PASSWORD) == []
    assert not any(r.path.startswith("/token") for r in elsewhere.requests)
    assert_clean_output(run, PASSWORD)
    assert elapsed < 15


@pytest.mark.parametrize("grant", ["password", "refresh_token"])
def test_token_endpoint_redirect_is_not_followed_with_credentials(
    tmp_path: Path, elsewhere: HostileServer, grant: str
) -> None:
    """Scripted: the realm the registry names redirects (307, so a POST would be re-sent with
    its body) to another origin. The password (GET) and the refresh token (POST body) stay."""
    with hostile_server(lambda r: Response(307, [("Location", f"{elsewhere.url}/token")])) as (
        realm
    ):
        registry = ScriptedRegistry(tags={"v1": manifest_bytes("v1")})

        def override(request: Request) -> Response | None:
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                challenge = f'Bearer realm="{realm.url}/token",service="svc"'
                return Response.json(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                                     [("WWW-Authenticate", challenge)])
            return None

        registry.override = override
        auth = BASIC_AUTH if grant == "password" else {"identity_token_env": "HOSTILE_REFRESH"}
        secret = PASSWORD if grant == "password" else REFRESH
        with hostile_server(registry) as server:
            config = write_config(tmp_path / "t.yaml", server, auth=auth)
            run, elapsed = audit(config, f"{server.host}/app:v1")
            assert server.received(secret) == []  # never to the registry: only to its realm
        assert realm.received(secret), "the realm the registry named does get them"
        assert realm.requests[0].method == ("GET" if grant == "password" else "POST")
    assert run.code == 3
    [error] = target_errors(run)
    assert "redirected to 127.0.0.1" in error
    assert "not followed" in error
    assert elsewhere.requests == []
    assert_clean_output(run, secret)
    assert elapsed < 15


def test_realm_on_another_host_is_normal(tmp_path: Path) -> None:
    """Scripted: like Docker Hub and GHCR, the registry names a realm on another origin; the
    credentials go there (and only there), the token comes back to the registry."""
    with hostile_server(
        lambda r: Response.json(200, {"token": TOKEN, "expires_in": 300})
        if r.headers.get("authorization", "").startswith("Basic")
        else Response.json(401, {})
    ) as realm:
        registry = ScriptedRegistry(tags={"v1": manifest_bytes("v1")})

        def override(request: Request) -> Response | None:
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                challenge = f'Bearer realm="{realm.url}/token",service="svc"'
                return Response.json(401, {}, [("WWW-Authenticate", challenge)])
            return None

        registry.override = override
        with hostile_server(registry) as server:
            config = write_config(tmp_path / "r.yaml", server, auth=BASIC_AUTH)
            run, elapsed = audit(config, f"{server.host}/app:v1")
            assert server.received(PASSWORD) == []
            assert server.received(TOKEN)
        assert realm.received(PASSWORD)
    assert run.code == 1  # audited: a single unsigned manifest is a finding
    assert run.report["targets"][0]["status"] == "noncompliant"
    assert_clean_output(run, PASSWORD, TOKEN)
    assert elapsed < 15


def test_url_with_userinfo_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "u.yaml"
    config.write_text(yaml.safe_dump({"registries": [
        {"url": f"https://bot:{PASSWORD}@registry.example", "repositories": ["app"]}]}))
    started = time.monotonic()
    run = run_cli(["config", "check", "--config", str(config)])
    audit_run = audit_json("--config", config)
    cli_ref = audit_json(f"bot:{PASSWORD}@registry.example/app:v1")
    assert run.code == 2
    assert audit_run.code == 2
    assert cli_ref.code == 2
    assert "registries[0].url: must not carry credentials" in run.stdout
    assert "auth:" in run.stdout
    assert "auth:" in audit_run.stderr
    assert "auth:" in cli_ref.stderr
    for each in (run, audit_run, cli_ref):
        assert_clean_output(each, PASSWORD)
    assert time.monotonic() - started < 10


# --- 3. every run bounded in time ---------------------------------------------------------


def test_dripping_body_ends_at_the_request_deadline(tmp_path: Path) -> None:
    """Scripted: the manifest's body comes one byte every 0.3 s (inside the 2 s read timeout),
    so only a deadline on the whole exchange ends it."""
    body = manifest_bytes("drip")
    registry = ScriptedRegistry(tags={"v1": body})
    registry.override = lambda r: (
        Response(200, [("Content-Type", mt.OCI_MANIFEST)], body, drip=0.3)
        if "/manifests/" in r.path else None
    )
    with hostile_server(registry) as server:
        config = write_config(tmp_path / "d.yaml", server, limits=FAST)
        run, elapsed = audit(config, f"{server.host}/app:v1")
    assert run.code == 3
    [error] = target_errors(run)
    assert "3s request deadline" in error
    assert_clean_output(run)
    assert elapsed < 12


def test_target_deadline_and_earlier_targets_still_reported(tmp_path: Path) -> None:
    """Scripted: tag ``b-hang`` sends headers and then nothing; the per-target deadline ends
    it, and ``a-good`` (audited before it) is still in the report with its own verdict."""
    registry = ScriptedRegistry(tags={"a-good": manifest_bytes("a"), "b-hang": b"{}"})
    registry.override = lambda r: (
        Response(200, [("Content-Type", mt.OCI_MANIFEST)], b"{}" * 100, hang=True)
        if r.path.endswith("/manifests/b-hang") else None
    )
    limits = {"timeout_seconds": 60, "request_deadline_seconds": 60,
              "target_deadline_seconds": 2}
    with hostile_server(registry) as server:
        config = write_config(tmp_path / "h.yaml", server, limits=limits)
        run, elapsed = audit(config)
    targets = {t["reference"].rsplit(":", 1)[1]: t for t in run.report["targets"]}
    assert targets["a-good"]["status"] == "noncompliant"
    assert targets["a-good"]["nodes"]
    assert targets["b-hang"]["status"] == "error"
    assert "per-target deadline of 2s" in targets["b-hang"]["error"]
    assert run.code == 1
    assert_clean_output(run)
    assert elapsed < 15


def test_run_deadline_reports_what_was_done(tmp_path: Path) -> None:
    """Scripted: every tag after the first hangs; the run deadline ends the run, the first
    target keeps its verdict, and every other one is an error naming the run deadline."""
    tags = {f"t{i}": manifest_bytes(f"t{i}") for i in range(5)}
    registry = ScriptedRegistry(tags=tags)
    registry.override = lambda r: (
        Response(200, [("Content-Type", mt.OCI_MANIFEST)], b"x" * 100, hang=True)
        if "/manifests/t" in r.path and not r.path.endswith("/t0") else None
    )
    limits = {"timeout_seconds": 60, "request_deadline_seconds": 60,
              "target_deadline_seconds": 60, "run_deadline_seconds": 2}
    with hostile_server(registry) as server:
        config = write_config(tmp_path / "rd.yaml", server, limits=limits)
        run, elapsed = audit(config)
    statuses = [t["status"] for t in run.report["targets"]]
    assert statuses == ["noncompliant"] + ["error"] * 4
    assert all("run deadline passed" in e for e in target_errors(run)[1:])
    assert run.code == 1
    assert elapsed < 12


def test_retry_after_is_capped_and_odd_values_are_harmless(tmp_path: Path) -> None:
    """Scripted 429s: ``Retry-After: 3600`` is capped at 1 s; ``²`` (str.isdigit() is true
    for it) and an unparseable date are ignored, never a crash."""
    values = iter(["3600", "\u00b2", "Thu, 99 Foo 2026 99:99:99 GMT"] * 10)
    registry = ScriptedRegistry(tags={"v1": manifest_bytes("v1")})
    registry.override = lambda r: (
        Response.json(429, {"errors": [{"code": "TOOMANYREQUESTS"}]},
                      [("Retry-After", next(values))])
        if "/manifests/" in r.path else None
    )
    limits = {"retry_attempts": 4, "retry_after_max_seconds": 1, "retry_budget_seconds": 10}
    with hostile_server(registry) as server:
        config = write_config(tmp_path / "ra.yaml", server, limits=limits)
        run, elapsed = audit(config, f"{server.host}/app:v1")
        asked = [r for r in server.requests if "/manifests/" in r.path]
    assert run.code == 3
    assert "rate limited (HTTP 429)" in target_errors(run)[0]
    assert len(asked) == 4
    assert_clean_output(run)
    assert elapsed < 10


def test_retry_budget_bounds_one_request(tmp_path: Path) -> None:
    """Scripted 503s with a 1 s Retry-After: 20 attempts allowed, but a 2.5 s retry budget
    (attempts at 0, 1 and 2 s; a fourth would start past it)."""
    registry = ScriptedRegistry(tags={"v1": manifest_bytes("v1")})
    registry.override = lambda r: (
        Response(503, [("Retry-After", "1")], b"down") if "/manifests/" in r.path else None
    )
    limits = {"retry_attempts": 20, "retry_budget_seconds": 2.5}
    with hostile_server(registry) as server:
        config = write_config(tmp_path / "rb.yaml", server, limits=limits)
        run, elapsed = audit(config, f"{server.host}/app:v1")
        asked = [r for r in server.requests if "/manifests/" in r.path]
    assert run.code == 3
    assert "HTTP 503 after 3 attempt(s)" in target_errors(run)[0]
    assert len(asked) == 3
    assert elapsed < 8


# --- 4. every run bounded in memory --------------------------------------------------------

BOMB_SIZE = 64 * 1024 * 1024  # decoded; the limit is 4 MiB


def _gzip_bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1024 * 1024)
    parts = [compressor.compress(chunk) for _ in range(BOMB_SIZE // len(chunk))]
    return b"".join(parts) + compressor.flush()


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    once = _gzip_bomb()
    deflater = zlib.compressobj(9, zlib.DEFLATED, 15)
    deflate = b"".join(deflater.compress(b"\0" * (1024 * 1024)) for _ in range(64))
    return {
        "gzip": once,
        "gzip, gzip": gzip.compress(once, 9),
        "deflate": deflate + deflater.flush(),
        "br": brotli.compress(b"\0" * BOMB_SIZE, quality=5),
    }


@pytest.mark.parametrize("encoding", ["gzip", "gzip, gzip", "deflate", "br"])
def test_compressed_answer_cannot_grow_past_its_limit(
    tmp_path: Path, bombs: dict[str, bytes], encoding: str
) -> None:
    """Scripted: the manifest answer is a 64 MiB decompression bomb in a few hundred KB."""
    import tracemalloc

    bomb = bombs[encoding]
    registry = ScriptedRegistry(tags={"v1": manifest_bytes("v1")})
    registry.override = lambda r: (
        Response(200, [("Content-Type", mt.OCI_MANIFEST), ("Content-Encoding", encoding)], bomb)
        if "/manifests/" in r.path else None
    )
    with hostile_server(registry) as server:
        config = write_config(tmp_path / "b.yaml", server)
        tracemalloc.start()
        try:
            run, elapsed = audit(config, f"{server.host}/app:v1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert run.code == 3
    [error] = target_errors(run)
    expected = "unsupported Content-Encoding 'br'" if encoding == "br" else "byte limit"
    assert expected in error
    assert peak < 40 * 1024 * 1024, f"peak {peak} bytes"
    assert_clean_output(run)
    assert elapsed < 20


def test_token_answer_and_error_bodies_are_bounded(tmp_path: Path, bombs: dict[str, bytes]) -> None:
    """Scripted: the token service answers a gzip bomb; the registry's 401 body is one too."""
    bomb = bombs["gzip"]
    with hostile_server(
        lambda r: Response(200, [("Content-Type", "application/json"),
                                 ("Content-Encoding", "gzip")], bomb)
    ) as realm:
        registry = ScriptedRegistry(tags={"v1": manifest_bytes("v1")})
        challenge = f'Bearer realm="{realm.url}/token",service="svc"'
        registry.override = lambda r: Response(
            401, [("WWW-Authenticate", challenge), ("Content-Encoding", "gzip")], bomb
        )
        with hostile_server(registry) as server:
            config = write_config(tmp_path / "tb.yaml", server, auth=BASIC_AUTH)
            run, elapsed = audit(config, f"{server.host}/app:v1")
            assert server.received(PASSWORD) == []
        assert realm.received(PASSWORD)
    assert run.code == 3
    assert "token" in target_errors(run)[0]
    assert "byte limit" in target_errors(run)[0]
    assert_clean_output(run, PASSWORD)
    assert elapsed < 15


def test_credential_helper_output_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real (scripted) docker-credential helper that writes without end."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-flood"
    helper.write_text("#!/bin/sh\ncat >/dev/null\nexec yes '{\"Username\": \"x\"}'\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    docker = tmp_path / "docker-config.json"
    with hostile_server(ScriptedRegistry(tags={"v1": manifest_bytes("v1")})) as server:
        docker.write_text(json.dumps({"credHelpers": {server.host: "flood"}}))
        config = write_config(tmp_path / "c.yaml", server, auth={"docker_config": str(docker)})
        run, elapsed = audit(config, f"{server.host}/app:v1")
    assert run.code == 3
    assert "credential helper docker-credential-flood wrote more than" in run.stderr
    assert_clean_output(run)
    assert elapsed < 15


def _wide_tree(fanout: int) -> tuple[bytes, dict[str, bytes]]:
    """A root index of ``fanout`` indexes of ``fanout`` children each (children are never
    served: the budget must stop the crawl long before they are asked for)."""
    leaves = json.dumps([
        {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + hashlib.sha256(str(j).encode())
         .hexdigest(), "size": 100}
        for j in range(fanout)
    ])
    children: dict[str, bytes] = {}
    for i in range(fanout):
        body = (
            f'{{"schemaVersion": 2, "mediaType": "{mt.OCI_INDEX}", "annotations": {{"i": "{i}"}}, '
            f'"manifests": {leaves}}}'
        ).encode()
        children["sha256:" + hashlib.sha256(body).hexdigest()] = body
    root = json.dumps({
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [{"mediaType": mt.OCI_INDEX, "digest": d, "size": len(b)}
                      for d, b in children.items()],
    }).encode()
    return root, children


def test_index_of_a_thousand_by_a_thousand_stops_early(tmp_path: Path) -> None:
    """Scripted: 1,000 x 1,000 (10^6 nodes). The node budget stops it after a few children."""
    root, children = _wide_tree(1000)

    def override(request: Request) -> Response | None:
        ref = request.path.rsplit("/", 1)[1]
        body = root if ref == "v1" else children.get(ref)
        if body is None:
            return None
        return Response(200, [("Content-Type", mt.OCI_INDEX)], body)

    registry = ScriptedRegistry(tags={"v1": root}, override=override)
    with hostile_server(registry) as server:
        config = write_config(tmp_path / "w.yaml", server)
        run, elapsed = audit(config, f"{server.host}/app:v1")
        fetched = [r for r in server.requests if r.path.rsplit("/", 1)[1] in children]
    assert run.code == 3
    [error] = target_errors(run)
    assert "more than 50000 nodes (limits.max_nodes_per_target)" in error
    assert len(fetched) < 100, len(fetched)
    assert elapsed < 30


# --- 5. no traceback, ever -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("non-ascii token", "not printable ASCII"),
        ("realm does not parse", "token realm in the registry's challenge does not parse"),
        ("location does not parse", "URL that does not parse"),
        ("link does not parse", "URL that does not parse"),
    ],
)
def test_transport_parsers_fail_inside_the_error_family(
    tmp_path: Path, case: str, expected: str
) -> None:
    """Scripted answers whose tokens and URLs are malformed: a named error, no traceback."""
    with hostile_server(lambda r: Response.json(200, {"token": "t\u00f6k\u00e9n"})) as realm:
        registry = ScriptedRegistry(tags={"v1": manifest_bytes("v1")})

        def override(request: Request) -> Response | None:
            if case == "location does not parse" and "/manifests/" in request.path:
                return Response(307, [("Location", "http://[::1")])
            if case == "link does not parse" and "/tags/list" in request.path:
                return Response.json(200, {"name": "app", "tags": ["v1"]},
                                     [("Link", '<http://[::1/v2/app/tags/list?n=1>; rel="next"')])
            if case in ("location does not parse", "link does not parse"):
                return None
            challenge = {
                "non-ascii token": f'Bearer realm="{realm.url}/token"',
                "realm does not parse": 'Bearer realm="http://[::1"',
            }[case]
            return Response.json(401, {}, [("WWW-Authenticate", challenge)])

        registry.override = override
        with hostile_server(registry) as server:
            config = write_config(tmp_path / "p.yaml", server, auth=BASIC_AUTH)
            target = f"{server.host}/app" if case == "link does not parse" else (
                f"{server.host}/app:v1")
            run, elapsed = audit(config, target)
    assert run.code == 3
    assert expected in target_errors(run)[0]
    assert realm.received(TOKEN) == []
    assert_clean_output(run, PASSWORD)
    assert elapsed < 15


def test_a_bug_is_exit_code_4_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that escapes (forced here) never reads as exit 1, and shows no traceback unless
    --debug asks for it."""
    from auditor import app

    async def broken(self: object, references: object = (), sink: object = None) -> object:
        raise ZeroDivisionError("secret-looking detail")

    # Both ways a CLI audit reaches the App: collected (table, page, --state) and streamed.
    monkeypatch.setattr(app.App, "audit", broken)
    monkeypatch.setattr(app.App, "audit_into", broken)
    started = time.monotonic()
    run = run_cli(["audit", "now", "127.0.0.1:9/app:v1"])
    assert run.code == 4
    lines = run.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("internal error: ZeroDivisionError at ")
    assert "--debug" in lines[0]
    assert "secret-looking detail" not in run.stderr
    assert_clean_output(run)
    debug = run_cli(["audit", "now", "127.0.0.1:9/app:v1", "--debug"])
    assert debug.code == 4
    assert "Traceback" in debug.stderr
    assert time.monotonic() - started < 10


# --- the fault-injecting proxy in front of the real registry -------------------------------


def _push_tags(registry_url: str, repository: str, tags: list[str]) -> None:
    """One small manifest under many tags, straight through the distribution API."""
    import httpx

    config = b"{}"
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    with httpx.Client(base_url=registry_url, timeout=30) as client:
        started = client.post(f"/v2/{repository}/blobs/uploads/")
        upload = httpx.URL(registry_url).join(started.headers["location"])
        client.put(upload.copy_merge_params({"digest": digest}), content=config).raise_for_status()
        body = json.dumps({
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": digest, "size": len(config)},
            "layers": [],
        }).encode()
        for tag in tags:
            client.put(f"/v2/{repository}/manifests/{tag}", content=body,
                       headers={"Content-Type": mt.OCI_MANIFEST}).raise_for_status()


@pytest.mark.registry
def test_registry_that_keeps_failing_is_marked_down(tmp_path: Path, registry: Any) -> None:
    """Real registry, 30 real tags; the proxy injects a 503 on every manifest (a real registry
    does not fail on demand). After 3 failed requests the registry is down for the run: the
    other tags fail at once instead of each paying its retries."""
    from tests.support.hostile import FaultProxy

    repository = f"down-{time.time_ns()}"
    _push_tags(registry.url, repository, [f"t{i:02d}" for i in range(30)])

    def fail_manifests(request: Request, answer: Response) -> Response | None:
        return Response(503, [], b"injected") if "/manifests/" in request.path else None

    with FaultProxy(registry.url, [fail_manifests]) as proxy:
        (tmp_path / "m.yaml").write_text(yaml.safe_dump({
            "registries": [{"url": proxy.url, "repositories": [repository]}],
            "limits": {"registry_down_after": 3, "retry_attempts": 2,
                       "retry_budget_seconds": 5},
        }))
        run, elapsed = audit(tmp_path / "m.yaml")
        asked = [r for r in proxy.requests if "/manifests/" in r.path]
    errors = target_errors(run)
    assert run.code == 3
    assert len(errors) == 30
    assert all(errors)
    assert sum("marked down for this run" in e for e in errors) >= 26
    assert len(asked) <= 8, len(asked)
    assert elapsed < 20


@pytest.mark.parametrize("verify_children", [True, False])
def test_a_thousand_failing_children_fail_fast(tmp_path: Path, verify_children: bool) -> None:
    """Scripted: an index of 1,000 children, every request about a child (its manifest, its
    referrers, its fallback tag) answers 503 (with retries allowed). After a few failures in a
    row the registry is down for the run: the target is an error in seconds, not 1,000 x
    retries. (With ``verify_children_exist`` off the children's manifests are not fetched:
    their referrer lookups are what fails.)"""
    children = {f"sha256:{hashlib.sha256(str(i).encode()).hexdigest()}": i for i in range(1000)}
    about_children = set(children) | {"sha256-" + d.split(":", 1)[1] for d in children}
    root = json.dumps({
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": d, "size": 100,
                       "platform": {"os": "linux", "architecture": f"arch{i}"}}
                      for d, i in children.items()],
    }).encode()

    def override(request: Request) -> Response | None:
        ref = request.path.rsplit("/", 1)[1]
        if ref == "v1":
            return Response(200, [("Content-Type", mt.OCI_INDEX)], root)
        if ref in about_children:
            return Response(503, [("Retry-After", "1")], b"injected")
        return None

    registry = ScriptedRegistry(tags={"v1": root}, override=override)
    limits = {"registry_down_after": 5, "retry_attempts": 3, "retry_budget_seconds": 3}
    with hostile_server(registry) as server:
        config = write_config(
            tmp_path / "f.yaml", server, limits=limits, verify_children_exist=verify_children
        )
        run, elapsed = audit(config, f"{server.host}/app:v1")
        asked = [r for r in server.requests if r.path.rsplit("/", 1)[1] in about_children]
    assert run.code == 1  # the index itself is unsigned: a finding whatever the children are
    [target] = run.report["targets"]
    assert target["status"] == "noncompliant"
    reasons = [n["reason"] or "" for n in target["nodes"] if n["status"] == "error"]
    assert sum("marked down for this run" in r for r in reasons) > 900
    assert len(asked) < 60, len(asked)
    assert elapsed < 20


async def test_down_lasts_one_run_when_the_app_is_reused() -> None:
    """Scripted: the registry fails every manifest in the first run and recovers; the same App
    (as the daemon keeps it) asks it again in the second run."""
    from auditor.app import App
    from auditor.config import parse_config

    failing = True
    registry = ScriptedRegistry(tags={f"t{i}": manifest_bytes(f"t{i}") for i in range(6)})
    registry.override = lambda r: (
        Response(503, [], b"down") if failing and "/manifests/" in r.path else None
    )
    with hostile_server(registry) as server:
        config = parse_config({
            "registries": [{"url": server.url, "repositories": ["app"]}],
            "limits": {"registry_down_after": 2, "retry_attempts": 1},
        }, "test")
        started = time.monotonic()
        async with App(config) as app:
            first = await app.audit()
            failing = False
            second = await app.audit()
    assert [t.status.value for t in first.targets] == ["error"] * 6
    assert any("marked down" in (t.error or "") for t in first.targets)
    assert [t.status.value for t in second.targets] == ["noncompliant"] * 6
    assert time.monotonic() - started < 15
