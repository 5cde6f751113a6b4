"""``config check`` says what is valid but probably not meant, through the real binary."""

from __future__ import annotations

from pathlib import Path

from tests.support.binary import run_auditor, user_environment


def test_empty_file_and_no_trust_policy_are_warnings_not_ok(tmp_path: Path) -> None:
    (tmp_path / "auditor.yaml").write_text("\n", encoding="utf-8")
    env = user_environment(tmp_path / "home")
    run = run_auditor(["config", "check"], cwd=tmp_path, env=env)
    assert run.code == 0
    lines = run.stdout.splitlines()
    assert lines[0] == (
        "warning: auditor.yaml: the file is empty: nothing to audit unless TARGETs are given"
    )
    assert lines[1].startswith("warning: no trust policy: looked for --trust-policy, "
                               "trust.policy in the config, and ")
    assert f"{env['XDG_CONFIG_HOME']}/notation/trustpolicy.oci.json" in lines[1]
    assert lines[-1] == "configuration valid, with 2 warnings"
    assert "configuration OK" not in run.stdout


def test_notation_policy_found_means_no_warning(tmp_path: Path) -> None:
    env = user_environment(tmp_path / "home")
    notation = Path(env["XDG_CONFIG_HOME"]) / "notation"
    (notation / "truststore" / "x509" / "ca").mkdir(parents=True)
    (notation / "trustpolicy.json").write_text(
        '{"version": "1.0", "trustPolicies": [{"name": "all", "registryScopes": ["*"], '
        '"signatureVerification": {"level": "skip"}}]}',
        encoding="utf-8",
    )
    (tmp_path / "auditor.yaml").write_text("coverage: []\n", encoding="utf-8")
    run = run_auditor(["config", "check"], cwd=tmp_path, env=env)
    assert (run.code, run.stdout) == (0, "configuration OK\n"), run.stderr


def test_duplicate_keys_are_refused_with_their_lines(tmp_path: Path) -> None:
    config = tmp_path / "auditor.yaml"
    config.write_text(
        "coverage:\n  - scope: '*'\n    require: both\n    require: index\nlayouts: []\n",
        encoding="utf-8",
    )
    check = run_auditor(["config", "check"], cwd=tmp_path)
    assert check.code == 2
    assert "auditor.yaml: not valid YAML at line 4, column 5: duplicate key 'require' " \
           "(first at line 3)" in check.stdout
    audit = run_auditor(["audit", "now", "oci-layout:./nothing"], cwd=tmp_path)
    assert audit.code == 2
    assert "duplicate key 'require'" in audit.stderr


def test_expired_waiver_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "auditor.yaml").write_text(
        "waivers:\n"
        "  - image: 'r.example/a:*'\n    reason: known\n    owner: sec@example.com\n"
        "    expires: 2020-01-31\n",
        encoding="utf-8",
    )
    run = run_auditor(["config", "check"], cwd=tmp_path)
    assert run.code == 0
    assert (
        "warning: auditor.yaml: waivers[0] (r.example/a:*) expired 2020-02-01T00:00:00+00:00: "
        "its findings count again"
    ) in run.stdout.splitlines()


def test_a_repository_glob_that_can_match_nothing_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "auditor.yaml").write_text(
        "registries:\n"
        "  - url: http://127.0.0.1:5000\n"
        "    repositories: [\"Team/*\", \"team/*\", \"team/[A-Z]*\"]\n",
        encoding="utf-8",
    )
    env = user_environment(tmp_path / "home")
    run = run_auditor(["config", "check"], cwd=tmp_path, env=env)
    assert run.code == 0
    globs = [line for line in run.stdout.splitlines() if "registries[0]" in line]
    assert globs == [
        "warning: auditor.yaml: registries[0].repositories[0]: glob 'Team/*' can match no "
        "repository (names are lowercase letters, digits and . _ - /): nothing would be "
        "audited for it"
    ]
