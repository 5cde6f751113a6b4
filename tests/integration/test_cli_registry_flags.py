"""``audit now``'s registry flags through the real ``auditor`` binary against the real registry
(Debian's docker-registry on 127.0.0.1; htpasswd basic auth for the credential flags).

-u/--password-stdin and AUDITOR_USERNAME/AUDITOR_PASSWORD, their precedence, the password
never in any output, credentials never to another origin (a scripted registry redirecting to a
second server: what a real registry cannot be made to do), --insecure-registry, --timeout,
--platform, -v; every bad value refused before the audit with the flag named.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from auditor.registry.auth import AuthProvider
from auditor.registry.client import RegistryClient
from auditor.registry.push import push_layout
from tests.support.binary import run_auditor, user_environment
from tests.support.hostile import (
    Request,
    Response,
    ScriptedRegistry,
    hostile_server,
    manifest_bytes,
)
from tests.support.receiver import free_port
from tests.support.registry_server import RunningRegistry, registry_server
from tests.support.scenarios import CliRun, SignedSample, build_signed_sample, push
from tests.support.tls import ServerPki, make_server_pki

SECRET = "Flag-s3cret-pw-7731"
SIGNED_QUERY = "storage-signature-s3cret"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedSample:
    return build_signed_sample(tmp_path_factory.mktemp("flags"), name="flags")


@pytest.fixture(scope="module")
def private(basic_auth_registry: RunningRegistry, signed: SignedSample) -> str:
    """The signed sample in the basic-auth registry: ``host/repo``."""
    registry = basic_auth_registry
    assert registry.username is not None
    assert registry.password is not None
    repository = f"flags-{uuid.uuid4().hex[:8]}/app"
    push(registry.host, signed.path, repository,
         auth=AuthProvider.basic(registry.username, registry.password))
    return f"{registry.host}/{repository}"


@pytest.fixture(scope="module")
def public(registry: RunningRegistry, signed: SignedSample) -> str:
    repository = f"flags-{uuid.uuid4().hex[:8]}/app"
    push(registry.host, signed.path, repository)
    return f"{registry.host}/{repository}"


def trust(signed: SignedSample) -> list[str]:
    return ["--trust-policy", str(signed.trust_policy), "--trust-store", str(signed.trust_store)]


def encoded_forms(secret: str) -> list[str]:
    """``secret`` as it would appear inside any base64 text (an ``Authorization: Basic``
    header's ``user:password``, whatever the user's length): the part of its encoding that does
    not depend on the bytes around it, at each of base64's three alignments."""
    forms = []
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + secret.encode()).decode()
        # the first 4-character group mixes in the padding bytes, the last one what follows
        forms.append(encoded[4 if pad else 0 : -4])
    assert all(len(form) >= 8 for form in forms), "too short a secret to look for"
    return forms


def assert_secret_free(run: CliRun, *secrets: str) -> None:
    """No secret, raw or inside a Basic header, and no Authorization header in any output."""
    for text in (run.stdout, run.stderr):
        assert "Traceback" not in text
        assert "authorization:" not in text.lower()
        for secret in secrets:
            assert secret not in text
            for form in encoded_forms(secret):
                assert form not in text, f"{secret!r} base64-encoded in the output"


def test_encoded_forms_find_a_secret_in_any_basic_header() -> None:
    for user in ("a", "ab", "abc", "auditor"):
        header = base64.b64encode(f"{user}:{SECRET}".encode()).decode()
        assert any(form in header for form in encoded_forms(SECRET)), user


def statuses(run: CliRun) -> list[str]:
    return [t["status"] for t in run.report["targets"]]


# --- credentials --------------------------------------------------------------------------


def test_password_stdin_logs_in_and_is_never_printed(
    private: str, signed: SignedSample, basic_auth_registry: RunningRegistry, tmp_path: Path
) -> None:
    password = basic_auth_registry.password
    assert password is not None
    anonymous = run_auditor(["audit", "now", f"{private}:v1", *trust(signed), "--format", "json"],
                            cwd=tmp_path)
    assert anonymous.code == 3
    assert "requires basic" in anonymous.report["targets"][0]["error"]
    run = run_auditor(
        ["audit", "now", f"{private}:v1", *trust(signed), "--format", "json",
         "-u", "auditor", "--password-stdin", "-v"],
        cwd=tmp_path, stdin=f"{password}\n",
    )
    assert run.code == 1, run.stderr  # audited: the sample's v1 has unsigned platforms
    assert statuses(run) == ["noncompliant"]
    assert "registry.response" in run.stderr
    assert "status=200" in run.stderr
    assert "credentials=-u/--username" in run.stderr
    assert_secret_free(run, password)


def test_environment_credentials_and_flag_precedence(
    private: str, signed: SignedSample, basic_auth_registry: RunningRegistry, tmp_path: Path
) -> None:
    password = basic_auth_registry.password
    assert password is not None
    home = tmp_path / ".home"
    from_env = run_auditor(
        ["audit", "now", f"{private}:v1-single", *trust(signed), "--format", "json"],
        cwd=tmp_path,
        env=user_environment(home, {"AUDITOR_USERNAME": "auditor", "AUDITOR_PASSWORD": password}),
    )
    assert from_env.code == 0, from_env.stderr
    assert statuses(from_env) == ["compliant"]
    # The flag wins over the environment, which wins over the config's auth:.
    config = tmp_path / "auditor.yaml"
    config.write_text(
        f"registries:\n  - url: http://{basic_auth_registry.host}\n    repositories: [x]\n"
        "    auth: {username: auditor, password_env: CONFIG_PW}\n"
    )
    env = user_environment(home, {"AUDITOR_USERNAME": "auditor", "AUDITOR_PASSWORD": SECRET,
                                  "CONFIG_PW": "wrong-config-pw"})
    flag_wins = run_auditor(
        ["audit", "now", f"{private}:v1-single", *trust(signed), "--format", "json",
         "-c", config, "--password-stdin"],
        cwd=tmp_path, env=env, stdin=password,
    )
    assert flag_wins.code == 0, flag_wins.stderr
    env_wins = run_auditor(
        ["audit", "now", f"{private}:v1-single", *trust(signed), "--format", "json",
         "-c", config],
        cwd=tmp_path, env=env,
    )
    assert env_wins.code == 3  # AUDITOR_PASSWORD (wrong here) beat the config's auth
    assert "access denied" in env_wins.report["targets"][0]["error"]
    assert_secret_free(env_wins, SECRET, "wrong-config-pw", password)


def test_verbose_catalog_run_over_a_token_service_prints_no_token(
    token_registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    """-v over the token flow (basic credentials to the realm, bearer tokens to the registry)
    and a catalog-driven target (the catalog needs the credentials): no token, password or
    Authorization header reaches stdout, stderr or the report."""
    registry, server = token_registry, token_registry.token_server
    assert registry.username is not None
    assert registry.password is not None
    assert server is not None
    assert server.refresh_token is not None
    team = f"tok{uuid.uuid4().hex[:8]}"
    push(registry.host, signed.path, f"{team}/app",
         auth=AuthProvider.basic(registry.username, registry.password))
    server.requests.clear()
    run = run_auditor(
        ["audit", "now", f"{registry.host}/{team}/*", *trust(signed), "--format", "json",
         "-u", registry.username, "--password-stdin", "-v"],
        cwd=tmp_path, stdin=f"{registry.password}\n",
    )
    assert run.code == 1, run.stderr  # audited: the sample's v1 has unsigned platforms
    assert {t["reference"].rsplit(":", 1)[0] for t in run.report["targets"]} == {
        f"{registry.host}/{team}/app"
    }
    assert any(r["authenticated"] for r in server.requests), "the realm got the credentials"
    assert "/token" in run.stderr
    assert "status=200" in run.stderr
    for text in (run.stdout, run.stderr):
        assert "eyJ" not in text  # a JWT (the issued tokens) starts with base64 of '{"'
    assert_secret_free(run, registry.password, server.refresh_token)


def test_a_registry_echoing_the_authorization_header_does_not_put_it_in_the_report(
    tmp_path: Path,
) -> None:
    """Registry error messages go into reports (SARIF is uploaded, published): one that quotes
    the Authorization header it got (a proxy or a hostile registry does) must not carry our
    credentials there. Scripted: a real registry does not echo headers."""

    def answer(request: Request) -> Response:
        sent = request.headers.get("authorization")
        if sent is None:
            return Response.json(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                                 [("WWW-Authenticate", 'Basic realm="registry"')])
        return Response.json(
            403, {"errors": [{"code": "DENIED", "message": f"not allowed: {sent}"}]}
        )

    with hostile_server(answer) as server:
        run = run_auditor(
            ["audit", "now", f"{server.host}/team/app:v1", "--format", "json",
             "-u", "ci", "--password-stdin"],
            cwd=tmp_path, stdin=SECRET,
        )
        assert server.received(SECRET), "the registry itself got the credentials"
    assert run.code == 3, run.stderr
    (target,) = run.report["targets"]
    assert "access denied" in target["error"]
    assert "DENIED: not allowed: Basic ***" in target["error"]
    assert_secret_free(run, SECRET)


def test_wrong_password_is_an_auth_error_without_the_password(
    private: str, signed: SignedSample, tmp_path: Path
) -> None:
    run = run_auditor(
        ["audit", "now", f"{private}:v1", *trust(signed), "-u", "auditor", "--password-stdin",
         "-v"],
        cwd=tmp_path, stdin=SECRET,
    )
    assert run.code == 3
    assert "access denied" in run.stdout
    assert_secret_free(run, SECRET)


def test_flag_credentials_never_follow_a_redirect_to_another_origin(tmp_path: Path) -> None:
    """Scripted (a real registry cannot redirect on demand): the registry asks for basic auth,
    then redirects the manifest to a second server that asks for credentials too."""
    with hostile_server(
        lambda r: Response.json(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                                [("WWW-Authenticate", 'Basic realm="elsewhere"')])
    ) as elsewhere:
        expected = "Basic " + base64.b64encode(f"bot:{SECRET}".encode()).decode()
        scripted = ScriptedRegistry(tags={"v1": manifest_bytes("v1")})

        def override(request: Request) -> Response | None:
            if request.headers.get("authorization") != expected:
                return Response.json(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                                     [("WWW-Authenticate", 'Basic realm="registry"')])
            if "/manifests/" in request.path:
                # a signed storage URL, as registries redirect to: -v must not print its query
                location = f"{elsewhere.url}{request.path}?X-Amz-Signature={SIGNED_QUERY}"
                return Response(307, [("Location", location)])
            return None

        scripted.override = override
        with hostile_server(scripted) as server:
            started = time.monotonic()
            run = run_auditor(
                ["audit", "now", f"{server.host}/app:v1", "-u", "bot", "--password-stdin",
                 "--format", "json", "-v"],
                cwd=tmp_path, stdin=SECRET, timeout=60,
            )
            assert server.received(SECRET), "the registry itself gets the credentials"
        assert elsewhere.requests, "the redirect was followed, without credentials"
        elsewhere_host = elsewhere.host
        assert elsewhere.received(SECRET) == []
    assert run.code == 3
    assert "redirect" in run.report["targets"][0]["error"]
    assert f"url=http://{elsewhere_host}/v2/app/manifests/v1\n" in run.stderr  # -v saw it
    assert_secret_free(run, SECRET, SIGNED_QUERY)
    assert time.monotonic() - started < 30


# --- bad input: refused before anything is audited, the flag named -----------------------


def _unreachable() -> str:
    return f"127.0.0.1:{free_port()}/team/app:v1"


@pytest.mark.parametrize(
    ("extra", "stdin", "message"),
    [
        (["-u", "bob"], None, "-u/--username: a username needs a password"),
        (["-u", "bob", "--password-stdin"], "", "--password-stdin: stdin is empty"),
        (["-u", "bob", "--password-stdin"], "\n", "--password-stdin: stdin is empty"),
        (["-u", "bob", "--password-stdin"], SECRET * 5000,
         "--password-stdin: more than 65536 bytes on stdin"),
        (["--password-stdin"], SECRET, "--password-stdin: a password needs a username"),
        (["-u", "", "--password-stdin"], SECRET, "-u/--username: the username is empty"),
        (["--insecure-registry", "reg.example:5000/team/app"], None,
         "--insecure-registry 'reg.example:5000/team/app': give a registry host"),
        (["--insecure-registry", "reg.example:5000"], None,
         "--insecure-registry reg.example:5000: no TARGET (or configured registry) is on"),
        (["--insecure-registry", "not a host"], None, "not a registry HOST[:PORT]"),
        (["--timeout", "0"], None, "--timeout: '0': a duration must be positive"),
        (["--timeout", "soon"], None, "--timeout: 'soon' is not a duration"),
        (["--timeout", "2h"], None, "--timeout 2h: at most 3600s"),
        (["--platform", "linux"], None, "--platform: platform 'linux' is not os/architecture"),
        (["--platform", "linux/amd64,unknown/unknown"], None, "--platform: unknown/unknown"),
        (["--ca-file", "missing.pem"], None, "--ca-file missing.pem: no such file"),
    ],
)
def test_bad_flag_values_are_refused_naming_the_flag(
    extra: list[str], stdin: str | None, message: str, tmp_path: Path
) -> None:
    # An unreachable target: had the audit run, the exit code would be 3, not 2.
    run = run_auditor(["audit", "now", _unreachable(), *extra], cwd=tmp_path, stdin=stdin)
    assert run.code == 2, run.stderr
    assert run.stderr.startswith("error: ")
    assert message in run.stderr
    assert run.stdout == ""
    assert_secret_free(run, SECRET)


def test_command_line_credentials_go_to_one_registry_only(tmp_path: Path) -> None:
    run = run_auditor(
        ["audit", "now", _unreachable(), _unreachable(), "-u", "bob", "--password-stdin"],
        cwd=tmp_path, stdin=SECRET,
    )
    assert run.code == 2
    assert "-u/--username: credentials from the command line or environment go to one " \
           "registry, and this run reads 2 registries" in run.stderr
    env = user_environment(tmp_path / ".home",
                           {"AUDITOR_USERNAME": "bob", "AUDITOR_PASSWORD": SECRET})
    layout_only = run_auditor(["audit", "now", "oci-layout:./nowhere"], cwd=tmp_path, env=env)
    assert layout_only.code == 2
    assert "AUDITOR_USERNAME: credentials" in layout_only.stderr
    assert "reads no registry" in layout_only.stderr
    assert_secret_free(run, SECRET)
    assert_secret_free(layout_only, SECRET)


# --- transport and selection flags ------------------------------------------------------------


def test_insecure_registry_means_plain_http_for_that_host(
    public: str, signed: SignedSample, tmp_path: Path
) -> None:
    # 127.1 is 127.0.0.1 to the resolver but not a name the auditor treats as loopback, so
    # without the flag it speaks https to the plain-http registry and fails.
    host = public.split("/", 1)[0].replace("127.0.0.1", "127.1")
    target = f"{host}/{public.split('/', 1)[1]}:v1-single"
    https = run_auditor(["audit", "now", target, *trust(signed), "--format", "json",
                         "--timeout", "5s"], cwd=tmp_path)
    assert https.code == 3
    plain = run_auditor(["audit", "now", target, *trust(signed), "--format", "json",
                         "--insecure-registry", host], cwd=tmp_path)
    assert plain.code == 0, plain.stdout
    assert statuses(plain) == ["compliant"]


def test_timeout_bounds_each_request(tmp_path: Path) -> None:
    """Scripted: a registry that sends headers and then nothing (a real one cannot hang)."""
    scripted = ScriptedRegistry(tags={"v1": manifest_bytes("v1")})
    scripted.override = lambda r: Response(200, hang=True) if "/manifests/" in r.path else None
    with hostile_server(scripted) as server:
        started = time.monotonic()
        run = run_auditor(["audit", "now", f"{server.host}/app:v1", "--timeout", "1s",
                           "--format", "json"], cwd=tmp_path, timeout=90)
        elapsed = time.monotonic() - started
    assert run.code == 3
    assert statuses(run) == ["error"]
    assert elapsed < 45  # 4 attempts of at most 1s each, plus backoff; default would be 120s each


def test_platform_selects_the_platforms_for_this_run(
    public: str, signed: SignedSample, tmp_path: Path
) -> None:
    # v1: a signed index; linux/amd64 signed, linux/arm64 invalid, linux/ppc64le unsigned.
    base = ["audit", "now", f"{public}:v1", *trust(signed), "--format", "json"]
    every = run_auditor(base, cwd=tmp_path)
    assert every.code == 1
    amd64 = run_auditor([*base, "--platform", "linux/amd64"], cwd=tmp_path)
    assert amd64.code == 0, amd64.stdout
    assert "linux/amd64" in amd64.report["targets"][0]["rule"]
    assert amd64.report["targets"][0]["policy"]["platforms"] == ["linux/amd64"]
    missing = run_auditor([*base, "--platform", "linux/amd64,linux/s390x"], cwd=tmp_path)
    assert missing.code == 1
    kinds = {f["kind"] for f in missing.report["targets"][0]["findings"]}
    assert kinds == {"missing-platform"}


# --- stored logins: notation's config.json, then docker's ------------------------------------


def _auths(host: str, username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": token}}})


def _helper(directory: Path, name: str, username: str, password: str) -> None:
    """A docker-credential-NAME helper on PATH that knows one login (``get`` only)."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / f"docker-credential-{name}"
    answer = json.dumps({"Username": username, "Secret": password})
    script.write_text(f"#!/bin/sh\ncat > /dev/null\nprintf '%s' '{answer}'\n")
    script.chmod(0o755)


def test_notation_login_store_is_read_as_notation_reads_it(
    private: str, signed: SignedSample, basic_auth_registry: RunningRegistry, tmp_path: Path
) -> None:
    registry = basic_auth_registry
    assert registry.username is not None
    assert registry.password is not None
    home = tmp_path / ".home"
    env = user_environment(home)
    notation = home / "xdg" / "notation"
    notation.mkdir(parents=True)
    docker = home / "docker" / "config.json"
    args = ["audit", "now", f"{private}:v1-single", *trust(signed), "--format", "json"]

    # notation's plain auths entry
    (notation / "config.json").write_text(_auths(registry.host, registry.username,
                                                registry.password))
    assert run_auditor(args, cwd=tmp_path, env=env).code == 0

    # notation login with a credential store (credsStore), the way notation login writes it
    bin_dir = tmp_path / "bin"
    _helper(bin_dir, "fake", registry.username, registry.password)
    helper_env = {**env, "PATH": f"{bin_dir}:{env['PATH']}"}
    (notation / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    via_helper = run_auditor(args, cwd=tmp_path, env=helper_env)
    assert via_helper.code == 0, via_helper.stdout
    assert_secret_free(via_helper, registry.password)

    # notation's file has logins, none for this registry: notation uses it alone, so docker's
    # login is not consulted (as `notation verify` would not)
    (notation / "config.json").write_text(_auths("other.example", "x", "y"))
    docker.write_text(_auths(registry.host, registry.username, registry.password))
    only_notation = run_auditor(args, cwd=tmp_path, env=env)
    assert only_notation.code == 3
    assert "requires basic" in only_notation.report["targets"][0]["error"]

    # notation's file without any login (insecureRegistries only): docker's is used
    (notation / "config.json").write_text(json.dumps({"insecureRegistries": []}))
    assert run_auditor(args, cwd=tmp_path, env=env).code == 0

    # the command line still wins over both
    wrong = run_auditor([*args, "-u", "auditor", "--password-stdin"], cwd=tmp_path, env=env,
                        stdin=SECRET)
    assert wrong.code == 3
    assert_secret_free(wrong, SECRET, registry.password)


def test_docker_config_from_DOCKER_CONFIG(
    private: str, signed: SignedSample, basic_auth_registry: RunningRegistry, tmp_path: Path
) -> None:
    registry = basic_auth_registry
    assert registry.username is not None
    assert registry.password is not None
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text(
        _auths(f"http://{registry.host}", registry.username, registry.password)
    )
    env = user_environment(tmp_path / ".home", {"DOCKER_CONFIG": str(elsewhere)})
    run = run_auditor(["audit", "now", f"{private}:v1-single", *trust(signed)], cwd=tmp_path,
                      env=env)
    assert run.code == 0, run.stdout


@pytest.fixture(scope="module")
def tls_image(
    tmp_path_factory: pytest.TempPathFactory, signed: SignedSample
) -> Iterator[tuple[str, ServerPki]]:
    """The signed sample in a registry serving https only, its certificate from a throw-away
    CA: ``host/repo`` and that PKI."""
    pki = make_server_pki(tmp_path_factory.mktemp("flags-pki"))
    with registry_server(
        tmp_path_factory.mktemp("flags-tls"), tls=(pki.certificate, pki.key)
    ) as running:

        async def upload() -> None:
            context = ssl.create_default_context(cafile=str(pki.ca_file))
            async with httpx.AsyncClient(verify=context, timeout=30.0) as http:
                client = RegistryClient(running.host, http, scheme="https")
                await push_layout(client, signed.path, "tls/app")

        asyncio.run(upload())
        yield f"{running.host}/tls/app", pki


def test_ca_file_verifies_the_registrys_tls(
    tls_image: tuple[str, ServerPki], signed: SignedSample, tmp_path: Path
) -> None:
    """No config: the TARGET alone, the CA from the flag."""
    image, pki = tls_image
    base: list[str | Path] = ["audit", "now", f"{image}:v1-single", *trust(signed),
                              "--format", "json"]
    untrusted = run_auditor(base, cwd=tmp_path)
    assert untrusted.code == 3
    assert untrusted.report["targets"][0]["error_category"] == "tls"
    assert "--ca-file" in untrusted.report["targets"][0]["error"]
    trusted = run_auditor([*base, "--ca-file", pki.ca_file], cwd=tmp_path)
    assert trusted.code == 0, trusted.stdout
    assert statuses(trusted) == ["compliant"]
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    refused = run_auditor([*base, "--ca-file", bogus], cwd=tmp_path)
    assert refused.code == 2
    assert refused.stderr == f"error: --ca-file {bogus}: not PEM CA certificates\n"
