"""The README's examples work as written: its "Quick start" and "Using it" blocks are run, line
by line, through the real ``auditor`` binary against a registry this module starts (Debian's
docker-registry on 127.0.0.1, behind htpasswd basic auth), and the shipped example config
passes ``auditor config check``.

``REGISTRY`` is set to that registry. ``docker login`` / ``notation login`` cannot run here (no
docker or notation binary): the test writes what ``docker login`` writes (an ``auths`` entry in
``$DOCKER_CONFIG/config.json``) and, for "an existing notation trust policy", puts a trust
policy and trust store in notation's directory. Every other line is executed as written.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from auditor.registry.auth import AuthProvider
from tests.support.binary import AUDITOR, run_auditor, user_environment
from tests.support.daemon import poll
from tests.support.receiver import free_port, receiver
from tests.support.registry_server import RunningRegistry, registry_binary, registry_server
from tests.support.scenarios import CliRun, SignedSample, build_signed_sample, push

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
USER, PASSWORD = "readme-user", "readme-s3cret-pw"


def readme_block(name: str) -> list[str]:
    """The command lines of the ``sh`` block after ``<!-- test: NAME ... -->``."""
    text = README.read_text(encoding="utf-8")
    marker = re.search(rf"<!-- test: {name}\b[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    assert marker is not None, f"README has no block marked 'test: {name}'"
    return [line for line in marker.group(1).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedSample:
    return build_signed_sample(tmp_path_factory.mktemp("readme"), name="readme")


@pytest.fixture(scope="module")
def own_registry(
    tmp_path_factory: pytest.TempPathFactory, signed: SignedSample
) -> Iterator[RunningRegistry]:
    if registry_binary() is None:
        pytest.skip("docker-registry is not on PATH")
    with registry_server(tmp_path_factory.mktemp("readme-registry"),
                         basic_auth=(USER, PASSWORD)) as running:
        for repository in ("team/app", "team/web"):
            push(running.host, signed.path, repository, auth=AuthProvider.basic(USER, PASSWORD))
        yield running


class Shell:
    """Just enough of sh for the README's lines: ``VAR=value``, ``"$VAR"``, comments, and
    ``printf '%s\\n' "$VAR" | auditor ...``."""

    def __init__(self, cwd: Path, env: dict[str, str], variables: dict[str, str]) -> None:
        self.cwd, self.env, self.variables = cwd, env, variables
        self.runs: list[tuple[str, CliRun]] = []
        self.logins = 0

    def expand(self, text: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: self.variables[m.group(1)], text)

    def run(self, line: str) -> None:
        words = shlex.split(line, comments=True)
        if not words or re.fullmatch(r"\w+=.*", words[0]):
            return  # the REGISTRY=... line: the test sets it
        if words[:2] in (["docker", "login"], ["notation", "login"]):
            _docker_login(self.env, self.variables["REGISTRY"])
            self.logins += 1
            return
        stdin = None
        if "|" in words:
            pipe = words.index("|")
            assert words[:2] == ["printf", "%s\\n"], line
            stdin = self.expand(words[2]) + "\n"
            words = words[pipe + 1:]
        assert words[0] == "auditor", line
        run = run_auditor([self.expand(w) for w in words[1:]], cwd=self.cwd, env=self.env,
                          stdin=stdin)
        self.runs.append((line, run))


def _docker_login(env: dict[str, str], host: str) -> None:
    """What ``docker login HOST`` leaves behind."""
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    path = Path(env["DOCKER_CONFIG"]) / "config.json"
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))


def _notation_trust(env: dict[str, str], signed: SignedSample) -> None:
    """An existing notation set-up: trust policy and trust store in notation's directory."""
    notation = Path(env["XDG_CONFIG_HOME"]) / "notation"
    notation.mkdir(parents=True, exist_ok=True)
    shutil.copy(signed.trust_policy, notation / "trustpolicy.oci.json")
    shutil.copytree(signed.trust_store, notation / "truststore")


def _assert_ran_cleanly(shell: Shell) -> None:
    for line, run in shell.runs:
        assert "Traceback" not in run.stderr, line
        assert PASSWORD not in run.stdout + run.stderr, line
        if " config check" in f" {line}":
            assert run.code == 0, (line, run.stdout, run.stderr)
            assert run.stdout.splitlines()[-1] == "configuration OK", (line, run.stdout)
        else:
            # 1: the sample images have findings; never a usage (2), unreachable or
            # unauthorized (3) or internal (4) error.
            assert run.code == 1, (line, run.code, run.stdout[-2000:], run.stderr[-2000:])


def test_quick_start_runs_as_written(
    own_registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    env = user_environment(tmp_path / "home")
    shell = Shell(tmp_path, env, {"REGISTRY": own_registry.host, "REGISTRY_USER": USER,
                                  "REGISTRY_PASSWORD": PASSWORD})
    _notation_trust(env, signed)
    for line in readme_block("quickstart"):
        shell.run(line)
    assert shell.logins == 1, "the quick start logs in"
    assert len(shell.runs) >= 5
    _assert_ran_cleanly(shell)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "team/web" in html  # the whole-registry audit listed the catalog
    # the last line logged in with -u/--password-stdin, without the stored login
    (Path(env["DOCKER_CONFIG"]) / "config.json").unlink()
    shell.runs.clear()
    shell.run(readme_block("quickstart")[-1])
    _assert_ran_cleanly(shell)


def test_usage_examples_run_as_written(
    own_registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    env = user_environment(tmp_path / "home")
    _docker_login(env, own_registry.host)
    _notation_trust(env, signed)
    shutil.copytree(signed.path, tmp_path / "image-layout")
    (tmp_path / "auditor.yaml").write_text(
        f"registries:\n  - url: http://{own_registry.host}\n    repositories: [team/*]\n"
        "layouts:\n  - path: ./image-layout\n"
    )
    shell = Shell(tmp_path, env, {"REGISTRY": own_registry.host})
    for line in readme_block("usage"):
        shell.run(line)
    assert len(shell.runs) == 6
    _assert_ran_cleanly(shell)
    sarif = json.loads((tmp_path / "audit.sarif").read_text(encoding="utf-8"))
    assert sarif["runs"][0]["results"]


def test_the_example_config_passes_config_check(tmp_path: Path) -> None:
    run = run_auditor(["config", "check", "--config", ROOT / "config" / "auditor.example.yaml"],
                      cwd=tmp_path)
    assert run.code == 0, run.stdout
    lines = run.stdout.splitlines()
    # Only an example waiver past its date may ever be warned about.
    assert all("waivers[" in line for line in lines if line.startswith("warning:")), lines
    assert lines[-1] == "configuration OK" or lines[-1].startswith("configuration valid")


# -- The other sections' blocks ------------------------------------------------------------

BLOCK = re.compile(r"(?:<!-- (test|illustration): ([^>]*?)-->\s*)?```(sh|yaml)\n(.*?)```", re.S)


def marked_block(name: str, language: str = "sh") -> str:
    """The body of the ``language`` block after ``<!-- test: NAME ... -->``."""
    for kind, label, lang, body in BLOCK.findall(README.read_text(encoding="utf-8")):
        words = label.split()
        if kind == "test" and (words[:1] == [name] or words[:2] == ["config-fragment", name]):
            assert lang == language, (name, lang)
            return str(body)
    raise AssertionError(f"README has no {language} block marked 'test: {name}'")


def test_every_command_and_config_block_is_tested_or_marked_an_illustration() -> None:
    """A README block nobody runs goes stale: each ``sh``/``yaml`` block names the test that
    runs it, or says why it is an illustration only (what the tests cannot have)."""
    blocks = BLOCK.findall(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 12
    unmarked = [body.splitlines()[0] for kind, _, _, body in blocks if not kind]
    assert not unmarked, f"README blocks neither tested nor marked illustration: {unmarked}"
    for kind, label, _, _ in blocks:
        if kind == "test":
            (where,) = re.findall(r"\((tests/[\w/]+\.py)", label)
            assert (ROOT / where).is_file(), label


def run_sh(body: str, *, cwd: Path, env: dict[str, str], skip: tuple[str, ...] = ()
           ) -> list[tuple[str, CliRun]]:
    """Run a README block in a real ``sh`` (its own quoting, ``$VAR`` and word splitting),
    one line at a time in one shell; each line's exit code, stdout and stderr. Lines whose
    command is in ``skip`` are not run."""
    out_dir = cwd / ".sh"
    out_dir.mkdir(exist_ok=True)
    lines = [line for line in body.splitlines() if line.strip()]
    script = []
    for number, line in enumerate(lines):
        if line.split()[0] in skip:
            continue
        script.append(f"{{ {line}\n}} >{out_dir}/{number}.out 2>{out_dir}/{number}.err\n"
                      f"echo $? >{out_dir}/{number}.rc")
    env = {**env, "PATH": f"{AUDITOR.parent}:{env['PATH']}"}
    subprocess.run(["sh", "-c", "\n".join(script)], cwd=cwd, env=env, check=True, timeout=600)
    runs = []
    for number, line in enumerate(lines):
        if line.startswith("auditor "):
            runs.append((line, CliRun(
                int((out_dir / f"{number}.rc").read_text()),
                (out_dir / f"{number}.out").read_text(),
                (out_dir / f"{number}.err").read_text(),
            )))
    return runs


def test_signing_examples_run_as_written_in_sh(
    own_registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    """Every line of "Signing" in ``sh``: a test key in notation's directory (on Linux,
    ``$HOME/.config/notation``), then each ``auditor sign`` on the real registry and on a
    layout; afterwards the registry image and the layout are compliant under that key."""
    home = tmp_path / "home"
    env = user_environment(home, {"REGISTRY": own_registry.host})
    del env["XDG_CONFIG_HOME"]  # notation's default directory, as on a user's machine
    _docker_login(env, own_registry.host)
    shutil.copytree(signed.path, tmp_path / "build" / "layout")
    # Its own repository: the other tests audit team/app as the sample pushed it.
    push(own_registry.host, signed.path, "team/app-signing",
         auth=AuthProvider.basic(USER, PASSWORD))
    body = marked_block("signing").replace("team/app", "team/app-signing")
    runs = run_sh(body, cwd=tmp_path, env=env)
    assert len(runs) == 9
    for line, run in runs:
        assert "Traceback" not in run.stderr, line
        assert run.code == 0, (line, run.stdout, run.stderr)
    (dry_run,) = [run.stdout for line, run in runs if "--dry-run" in line]
    assert "would sign" not in dry_run, dry_run  # everything was signed by then
    assert "signed" in runs[1][1].stdout
    # What the block signed passes the audit under the generated policy.
    for target, scope in ((f"{own_registry.host}/team/app-signing:v1", []),
                          ("oci-layout:./build/layout:v1", ["--scope", "local/app"])):
        audit = run_auditor(["audit", "now", target, *scope, "--format", "json"],
                            cwd=tmp_path, env=env)
        assert audit.code == 0, (target, audit.stdout[-2000:], audit.stderr)
        assert audit.report["targets"][0]["status"] == "compliant"


def test_page_example_writes_the_page(
    own_registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    env = user_environment(tmp_path / "home", {"REGISTRY": own_registry.host})
    _docker_login(env, own_registry.host)
    _notation_trust(env, signed)
    (run,) = run_sh(marked_block("page"), cwd=tmp_path, env=env, skip=("xdg-open",))
    assert run[1].code == 1, run  # the sample has findings
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")
    assert f"{own_registry.host}/team/app" in html


def test_config_fragments_pass_config_check(signed: SignedSample, tmp_path: Path) -> None:
    """Each YAML fragment (Config file, cosign, Waivers) is checked by the real config model,
    with the files it names in place (notation's trust files, a cosign key and root)."""
    env = user_environment(tmp_path / "home", {"REG_PASSWORD": "not-used"})
    _notation_trust(env, signed)
    shutil.copy(signed.trust_policy, tmp_path / "trustpolicy.oci.json")
    shutil.copytree(signed.trust_store, tmp_path / "truststore")
    cosign = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "cosign"
    shutil.copy(cosign / "sigstore-trusted-root" / "trusted_root.json", tmp_path)
    shutil.copy(cosign / "containers-image" / "cosign.pub", tmp_path)
    for name in ("config-file", "cosign", "waivers"):
        config = tmp_path / f"{name}.yaml"
        config.write_text(marked_block(name, "yaml"), encoding="utf-8")
        run = run_auditor(["config", "check", "--config", config], cwd=tmp_path, env=env)
        assert run.code == 0, (name, run.stdout, run.stderr)
        assert run.stdout.splitlines()[-1] == "configuration OK", (name, run.stdout)
        # The check can fail: a key of the fragment misspelt is refused by the same model.
        broken = config.with_name(f"{name}-broken.yaml")
        text = config.read_text()
        first = re.search(r"^(\s*-?\s*)(\w+):", text, re.M)
        assert first is not None
        broken.write_text(text[: first.start(2)] + "x_" + text[first.start(2):])
        refused = run_auditor(["config", "check", "--config", broken], cwd=tmp_path, env=env)
        assert refused.code == 2, (name, refused.stdout)


def test_serve_example_starts_and_answers_healthz(
    own_registry: RunningRegistry, signed: SignedSample, tmp_path: Path
) -> None:
    """``auditor serve --config auditor.yaml`` as written: it starts, answers ``/healthz``
    and ``/readyz`` once an audit finished, serves every metric of the README's Metrics table
    (and no other), and exits 0 on SIGTERM."""
    env = user_environment(tmp_path / "home")
    _docker_login(env, own_registry.host)
    _notation_trust(env, signed)
    port = free_port()
    (tmp_path / "auditor.yaml").write_text(
        f"registries:\n  - url: http://{own_registry.host}\n    repositories: [team/app]\n"
        f"server: {{listen: '127.0.0.1:{port}'}}\nschedule: {{interval: 1h}}\n"
    )
    (line,) = [x for x in marked_block("serve").splitlines() if x.strip()]
    words = shlex.split(line, comments=True)
    assert words[0] == "auditor"
    process = subprocess.Popen([str(AUDITOR), *words[1:]], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def ready() -> bool | None:
            if process.poll() is not None:
                raise AssertionError(f"auditor serve exited {process.returncode}")
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200 \
                or None
        assert poll("auditor serve /readyz", ready, deadline=60)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        # The Metrics table is what /metrics serves: every name, with its type.
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        exposed = {name: kind for name, kind in
                   re.findall(r"^# TYPE (auditor_\w+) (\w+)$", metrics, re.M)
                   if not name.endswith("_created")}  # prometheus_client's creation times
        assert exposed == readme_metrics()
        assert (tmp_path / "auditor.db").is_file()  # state.path's default
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=40)
        stderr = process.stderr.read().decode() if process.stderr else ""
    assert code == 0, stderr[-2000:]
    assert PASSWORD not in stderr


def readme_metrics() -> dict[str, str]:
    """The README's Metrics table: metric name -> type."""
    section = README.read_text(encoding="utf-8").split("### Metrics", 1)[1].split("\n### ", 1)[0]
    return dict(re.findall(r"^\| `(auditor_\w+)` \| (\w+) \|", section, re.M))


def test_audit_on_push_notifications_snippet_is_a_working_registry_config(
    signed: SignedSample, tmp_path: Path
) -> None:
    """The "Audit on push" section's distribution ``notifications:`` snippet, as written
    (``AUDITOR:9464`` and ``TOKEN`` filled in), configures a real docker-registry that then
    POSTs a push to ``/events`` with the bearer header (a real receiver stands in for the
    daemon; tests/integration/test_alerts_e2e.py runs the daemon's side)."""
    if registry_binary() is None:
        pytest.skip("docker-registry is not on PATH")
    section = README.read_text(encoding="utf-8").split("### Audit on push", 1)[1]
    snippet = re.search(r"`(notifications: \{.*?\]\})`", section, re.S)
    assert snippet is not None, "the notifications snippet moved"
    with receiver() as events:
        text = snippet.group(1).replace("AUDITOR:9464", f"127.0.0.1:{events.port}")
        config = yaml.safe_load(text.replace("TOKEN", "readme-events-token"))
        with registry_server(tmp_path / "registry", notifications=config["notifications"]
                             ) as notifying:
            push(notifying.host, signed.path, "team/pushed")
            events.wait_for(lambda got: any(
                r.path == "/events"
                and r.headers.get("Authorization") == "Bearer readme-events-token"
                and any(e.get("action") == "push" for e in r.json().get("events", []))
                for r in got), timeout=30)
