"""What a new user meets first, through the real ``auditor`` binary: help texts, ``-o`` mistakes
caught before the audit runs, the summary on stderr, the table on the real registry."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support.binary import run_auditor
from tests.support.receiver import free_port
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import (
    SignedSample,
    assert_finished_lines,
    build_signed_sample,
    push,
)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedSample:
    return build_signed_sample(tmp_path_factory.mktemp("ux"), name="ux")


@pytest.fixture(scope="module")
def image(registry: RunningRegistry, signed: SignedSample) -> str:
    repository = f"ux-{uuid.uuid4().hex[:8]}/app"
    push(registry.host, signed.path, repository)
    return f"{registry.host}/{repository}"


def test_help_is_written_for_users(tmp_path: Path) -> None:
    top = run_auditor(["--help"], cwd=tmp_path)
    assert top.code == 0
    assert "verified Notary Project or cosign signatures" in top.stdout
    assert "main(argv)" not in top.stdout
    assert "exit codes:" in top.stdout
    now = run_auditor(["audit", "now", "--help"], cwd=tmp_path)
    assert now.code == 0
    assert "examples:" in now.stdout
    assert "terminal" not in now.stdout.split("--format")[1].split("\n  -")[0]
    missing = run_auditor(["audit"], cwd=tmp_path)
    assert missing.code == 2
    assert "audit_command" not in missing.stderr
    assert "now" in missing.stderr


@pytest.mark.parametrize("name", ["json", "sarif", "table", "html"])
def test_dash_o_with_a_format_name_is_refused_with_a_hint(name: str, tmp_path: Path) -> None:
    # an unreachable target: had the audit run, the exit code would be 3, not 2
    target = f"127.0.0.1:{free_port()}/team/app:v1"
    run = run_auditor(["audit", "now", target, "-o", name], cwd=tmp_path)
    assert run.code == 2
    assert run.stderr == (
        f"error: -o writes a file; did you mean --format {name}? "
        f"(for a file named {name}, write -o ./{name})\n"
    )
    assert not (tmp_path / name).exists()


def test_dash_o_dot_slash_name_writes_that_file(image: str, tmp_path: Path) -> None:
    run = run_auditor(["audit", "now", f"{image}:v1-single", "-o", "./json"], cwd=tmp_path)
    assert (tmp_path / "json").is_file()
    assert run.code == 3  # no trust policy given: signatures exist but are unverified


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("missing-dir/report.json", "directory missing-dir does not exist"),
        (".", "is a directory"),
    ],
)
def test_unwritable_output_is_refused_before_the_audit(
    output: str, message: str, tmp_path: Path
) -> None:
    target = f"127.0.0.1:{free_port()}/team/app:v1"
    run = run_auditor(["audit", "now", target, "-o", output], cwd=tmp_path)
    assert run.code == 2, run.stderr
    assert message in run.stderr


def test_table_on_the_registry_with_summary_on_stderr_when_written_to_a_file(
    image: str, signed: SignedSample, tmp_path: Path
) -> None:
    trust = ["--trust-policy", str(signed.trust_policy), "--trust-store", str(signed.trust_store)]
    run = run_auditor(["audit", "now", image, *trust], cwd=tmp_path)
    assert run.code == 1
    lines = run.stdout.splitlines()
    assert sum(line.split()[:1] == ["PLATFORM"] for line in lines) == 1
    heads = [line.split()[1] for line in lines if line.startswith(("compliant", "noncompliant"))]
    assert heads == [f"{image}:v1", f"{image}:v1-nested", f"{image}:v1-single"]
    assert "repositories:" in lines
    assert f"  {image}: 3 targets: 1 compliant, 2 noncompliant" in lines
    ppc = [line for line in lines if "linux/ppc64le" in line and "platform " in line]
    assert ppc
    assert all("covered by" not in line for line in ppc)  # unsigned and required
    assert any(line.startswith("  signed by: CN=ux-release") for line in lines)
    out = tmp_path / "report.txt"
    to_file = run_auditor(["audit", "now", image, *trust, "-o", out], cwd=tmp_path)
    assert to_file.stdout == ""
    # Not a terminal (as in CI): one line per target as it finishes, then the summary.
    *finished, summary = to_file.stderr.splitlines()
    verdicts = [(line.split()[0], line.split()[1]) for line in lines
                if line.startswith(("compliant", "noncompliant"))]
    assert_finished_lines("\n".join(finished), verdicts)
    assert [line.endswith((" findings)", " finding)")) for line in finished] == [
        v[0] == "noncompliant" for v in verdicts
    ]
    assert summary == (
        "3 targets: 1 compliant, 2 noncompliant, 0 error; 12 nodes: 5 signed, 5 unsigned, "
        f"2 invalid (report in {out})"
    )
    # --no-progress leaves the summary alone; --quiet leaves out the per-target lines too.
    for flag in ("--no-progress", "--quiet"):
        other = tmp_path / f"report{flag}.txt"
        quiet = run_auditor(["audit", "now", image, *trust, "-o", other, flag], cwd=tmp_path)
        assert quiet.stderr == f"{summary.replace(str(out), str(other))}\n"
    assert out.read_text(encoding="utf-8") == run.stdout
