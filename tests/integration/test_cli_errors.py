"""The CLI's error paths and outputs, end to end: exit codes, one-line errors, no tracebacks,
``--output``, the table, and registry credentials that never leak into any output."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from auditor.registry.auth import AuthProvider
from devkit.samples import SampleLayout, write_sample_layout
from tests.support.receiver import free_port
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import (
    CliRun,
    assert_finished_lines,
    assert_report_lines,
    audit_json,
    isolate_environment,
    push,
    run_cli,
)

WRONG_PASSWORD = "not-the-s3cret-basic"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleLayout:
    return write_sample_layout(tmp_path_factory.mktemp("cli-sample") / "layout", name="cli")


@pytest.fixture(scope="module")
def sample_repo(registry: RunningRegistry, sample: SampleLayout) -> str:
    repository = f"cli-{uuid.uuid4().hex[:8]}/app"
    push(registry.host, sample.path, repository)
    return f"{registry.host}/{repository}"


@pytest.fixture(scope="module")
def basic_repo(basic_auth_registry: RunningRegistry, sample: SampleLayout) -> str:
    assert basic_auth_registry.username
    assert basic_auth_registry.password
    auth = AuthProvider.basic(basic_auth_registry.username, basic_auth_registry.password)
    repository = f"cli-{uuid.uuid4().hex[:8]}/private"
    push(basic_auth_registry.host, sample.path, repository, auth=auth)
    return repository


def _assert_no_traceback(run: CliRun) -> None:
    for text in (run.stdout, run.stderr):
        assert "Traceback" not in text
        assert 'File "' not in text


def _assert_one_line_usage_error(run: CliRun) -> str:
    """Exit 2, nothing on stdout, exactly one ``error: ...`` line on stderr; returns it."""
    assert run.code == 2
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ")
    _assert_no_traceback(run)
    return lines[0]


# -- usage and config errors: exit 2 ----------------------------------------------------------


def test_bad_reference_is_a_one_line_usage_error() -> None:
    line = _assert_one_line_usage_error(audit_json("127.0.0.1:5000/UPPER/app:v1"))
    assert "127.0.0.1:5000/UPPER/app:v1" in line
    assert "repository name" in line


def test_missing_config_file_is_a_one_line_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist.yaml"
    line = _assert_one_line_usage_error(audit_json("--config", missing))
    assert str(missing) in line


def test_unset_password_env_names_the_key(
    basic_auth_registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REG_PASSWORD", raising=False)
    config = _basic_config(tmp_path, basic_auth_registry, "any/repo")
    line = _assert_one_line_usage_error(audit_json("--config", config))
    assert "password_env" in line
    assert "REG_PASSWORD" in line


# -- registry errors: exit 3 with an error target ---------------------------------------------


def test_unreachable_registry_is_an_error_target_not_a_crash() -> None:
    reference = f"127.0.0.1:{free_port()}/team/app:v1"
    run = audit_json(reference)
    assert run.code == 3
    assert_report_lines(run)  # its one finished line, with the error, and nothing else
    assert run.stderr.startswith(f"[1/1] error {reference}: ConnectError after ")
    _assert_no_traceback(run)
    (target,) = run.report["targets"]
    assert target["reference"] == reference
    assert target["status"] == "error"
    assert target["digest"] is None
    assert target["nodes"] == []
    error = target["error"]
    assert "\n" not in error
    assert error.startswith(f"{reference}:")
    assert "Connect" in error
    assert run.report["summary"]["targets"]["error"] == 1


def test_missing_repository_is_not_found(sample_repo: str) -> None:
    host = sample_repo.split("/", 1)[0]
    for reference, expected in (
        (f"{host}/cli-missing/nothing:v1", "not found"),
        (f"{host}/cli-missing/nothing", "repository not found"),
        (f"{sample_repo}:no-such-tag", "not found"),
    ):
        run = audit_json(reference)
        assert run.code == 3, reference
        _assert_no_traceback(run)
        (target,) = run.report["targets"]
        assert target["reference"] == reference
        assert target["status"] == "error"
        assert "\n" not in target["error"]
        assert target["error"].startswith(reference)
        assert expected in target["error"]


# -- outputs -----------------------------------------------------------------------------------


def test_output_file_gets_the_report(
    sample_repo: str, sample: SampleLayout, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    run = audit_json(f"{sample_repo}:v1", "--output", out)
    assert run.code == 1  # nothing in the sample is signed
    assert run.stdout == ""
    # the target's finished line, then the summary line still reaches the person watching
    finished, summary = run.stderr.splitlines()
    assert finished.startswith(f"[1/1] noncompliant {sample_repo}:v1 (")
    assert summary.startswith("1 target: 0 compliant, 1 noncompliant, 0 error")
    assert summary.endswith(f"(report in {out})")
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["schema_version"] == 1
    (target,) = report["targets"]
    assert target["digest"] == sample.index.digest
    assert [n["digest"] for n in target["nodes"]] == [
        sample.index.digest,
        *(d.digest for d in sample.platforms.values()),
        sample.attestation.digest,
    ]


def test_output_to_an_unwritable_place_is_a_usage_error(sample_repo: str, tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "report.json"
    line = _assert_one_line_usage_error(audit_json(f"{sample_repo}:v1", "--output", out))
    assert str(out) in line


def test_table_has_a_row_per_node(sample_repo: str, sample: SampleLayout) -> None:
    run = run_cli(["audit", "now", f"{sample_repo}:v1", "--format", "table"])
    assert run.code == 1
    # not a terminal: no progress line rewritten in place, one line for the finished target
    assert_finished_lines(run.stderr, [("noncompliant", f"{sample_repo}:v1")])
    assert "\r" not in run.stderr
    lines = run.stdout.splitlines()
    assert any(f"{sample_repo}:v1" in line for line in lines)

    def row(digest: str) -> list[str]:
        """The node row's cells: PLATFORM KIND DIGEST STATUS SIGS ... (short digest)."""
        short = f"sha256:{digest.split(':', 1)[1][:12]}"
        kinds = ("index", "platform", "attestation", "manifest")
        rows = [line.split() for line in lines]
        (found,) = [
            c
            for c in rows
            if len(c) > 4 and not c[0].endswith(":") and c[1] in kinds and c[2] == short
        ]
        return found

    for platform, descriptor in sample.platforms.items():
        cells = row(descriptor.digest)
        assert cells[:5] == [platform, "platform", cells[2], "unsigned", "0"]
    assert row(sample.index.digest)[:2] == ["-", "index"]
    assert row(sample.attestation.digest)[:2] == ["-", "attestation"]


# -- registry credentials ----------------------------------------------------------------------


def _basic_config(path: Path, registry: RunningRegistry, repository: str) -> Path:
    config = path / "auditor.yaml"
    config.write_text(
        "registries:\n"
        f"  - url: {registry.url}\n"
        f"    repositories: [{repository}]\n"
        f"    auth: {{username: {registry.username}, password_env: REG_PASSWORD}}\n"
    )
    return config


def _assert_no_secret(run: CliRun, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in run.stdout
        assert secret not in run.stderr


def test_basic_auth_from_config_and_environment(
    basic_auth_registry: RunningRegistry,
    basic_repo: str,
    sample: SampleLayout,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    assert basic_auth_registry.password
    monkeypatch.setenv("REG_PASSWORD", basic_auth_registry.password)
    config = _basic_config(tmp_path, basic_auth_registry, basic_repo)
    host = basic_auth_registry.host

    from_config = audit_json("--config", config)
    assert from_config.code == 1, from_config.stdout  # unsigned, but checked
    references = [t["reference"] for t in from_config.report["targets"]]
    assert references == [f"{host}/{basic_repo}:{t}" for t in ("v1", "v1-nested", "v1-single")]
    assert {t["status"] for t in from_config.report["targets"]} == {"noncompliant"}

    # A TARGET on a configured host uses that registry's credentials too.
    named = audit_json(f"{host}/{basic_repo}:v1", "--config", config)
    assert named.code == 1
    (target,) = named.report["targets"]
    assert target["digest"] == sample.index.digest
    assert len(target["nodes"]) == 5
    for run in (from_config, named):
        _assert_no_secret(run, basic_auth_registry.password)


def test_basic_auth_wrong_password_is_an_error_that_hides_the_password(
    basic_auth_registry: RunningRegistry,
    basic_repo: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    assert basic_auth_registry.password
    monkeypatch.setenv("REG_PASSWORD", WRONG_PASSWORD)
    config = _basic_config(tmp_path, basic_auth_registry, basic_repo)
    host = basic_auth_registry.host
    runs = [
        audit_json("--config", config),
        audit_json(f"{host}/{basic_repo}:v1", "--config", config),
        run_cli(["audit", "now", "--config", str(config), "--format", "table"]),
    ]
    for run in runs:
        assert run.code == 3
        _assert_no_traceback(run)
        _assert_no_secret(run, WRONG_PASSWORD, basic_auth_registry.password)
    for run in runs[:2]:
        (target,) = run.report["targets"]
        assert target["status"] == "error"
        assert target["reference"].startswith(f"{host}/{basic_repo}")
        assert "authentication" in target["error"]
        assert "\n" not in target["error"]
    assert "authentication" in runs[2].stdout


def test_basic_auth_registry_without_credentials_says_so(
    basic_auth_registry: RunningRegistry, basic_repo: str
) -> None:
    reference = f"{basic_auth_registry.host}/{basic_repo}:v1"
    run = audit_json(reference)
    assert run.code == 3
    (target,) = run.report["targets"]
    assert target["reference"] == reference
    assert "auth" in target["error"]
    assert "no credentials" in target["error"]
