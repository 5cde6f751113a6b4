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
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.registry.auth import AuthProvider
from tests.support.binary import run_auditor, user_environment
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
