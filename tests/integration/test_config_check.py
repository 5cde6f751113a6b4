"""``auditor config check``: config, trust policy and trust store, every problem with its place.

Through ``auditor.cli.main`` with real files: notation's own malformed trust policies from
../shared/fixtures/notation-e2e/config/trustpolicies/, a trust store laid out the way notation
lays it out, config files written here. Exit 0 with "configuration OK", or exit 2 with one line
per problem, each naming where it is (file and key, flag, or policy statement).
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditor.app import check_configuration
from auditor.cli import main as cli_main
from tests.support.cosign_fixtures import TRUSTED_ROOT
from tests.support.notation_cases import E2E

POLICIES = E2E / "config" / "trustpolicies"
E2E_CERT = E2E / "config" / "localkeys" / "e2e.crt"


@dataclass(frozen=True)
class Check:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def check(*argv: str) -> Check:
    out, err = io.StringIO(), io.StringIO()
    code = cli_main(["config", "check", *argv], stdout=out, stderr=err)
    return Check(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ./auditor.yaml and no notation config of the machine's user."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A notation trust store with the e2e certificate in ``ca:e2e``."""
    root = tmp_path / "truststore"
    folder = root / "x509" / "ca" / "e2e"
    folder.mkdir(parents=True)
    shutil.copyfile(E2E_CERT, folder / E2E_CERT.name)
    return root


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_valid_configuration_is_ok(tmp_path: Path, store: Path) -> None:
    config = _write(
        tmp_path / "auditor.yaml",
        "registries:\n"
        "  - url: http://127.0.0.1:5000\n"
        "    repositories: [acme/app]\n"
        "trust:\n"
        f"  policy: {POLICIES / 'trustpolicy.json'}\n"
        "  store: truststore\n"  # relative to the config file
        "coverage:\n"
        '  - scope: "127.0.0.1:5000/acme/*"\n'
        "    require: either\n"
        '    platforms: ["linux/amd64", "linux/arm64"]\n'
        "    attestations: require\n",
    )
    result = check("--config", str(config))
    assert (result.code, result.stdout, result.stderr) == (0, "configuration OK\n", "")


def test_flags_give_policy_and_store(store: Path) -> None:
    result = check("--trust-policy", str(POLICIES / "trustpolicy.json"),
                   "--trust-store", str(store))
    assert (result.code, result.stdout) == (0, "configuration OK\n")


def test_a_policy_that_only_scopes_another_repository_is_not_malformed(store: Path) -> None:
    """invalid_registry_scope_trustpolicy.json is well formed: notation refuses the *artifact*
    it is asked about (no applicable statement), not the policy, so config check accepts it."""
    policy = POLICIES / "invalid_registry_scope_trustpolicy.json"
    result = check("--trust-policy", str(policy), "--trust-store", str(store))
    assert (result.code, result.stdout) == (0, "configuration OK\n")


def test_every_problem_is_printed_with_its_location(tmp_path: Path) -> None:
    """Bad key, bad require, malformed trust policy, missing trust store: four lines, none
    hiding another (a broken config still has its trust section checked)."""
    policy = POLICIES / "malformed_registry_scope_trustpolicy.json"
    config = _write(
        tmp_path / "broken.yaml",
        "registries:\n"
        "  - url: http://127.0.0.1:5000\n"
        "    repositories: [acme/app]\n"
        "    colour: blue\n"
        "trust:\n"
        f"  policy: {policy}\n"
        "  store: no-such-store\n"
        "coverage:\n"
        '  - scope: "*"\n'
        "    require: all\n",
    )
    result = check("--config", str(config))
    assert result.code == 2
    assert result.stderr == ""
    lines = result.lines
    assert len(lines) == 4, lines
    assert any(
        line.startswith(f"{config}: registries[0].colour: ") and "not permitted" in line
        for line in lines
    ), lines
    assert any(
        line.startswith(f"{config}: coverage[0].require: ") and "'either'" in line
        for line in lines
    ), lines
    assert any(
        str(policy) in line
        and 'statement "e2e"' in line
        and 'registry scope "localhost:5000\\\\test-repo" is not valid' in line
        for line in lines
    ), lines
    missing = tmp_path / "no-such-store"
    assert any(
        line.startswith(f"{config}: trust.store: ") and f"{missing} does not exist" in line
        for line in lines
    ), lines


def test_flag_problems_are_named_by_flag(tmp_path: Path) -> None:
    """A missing store does not hide a malformed policy; each names where it came from."""
    policy = POLICIES / "wildcard_trust_store_trustpolicy.json"
    missing = tmp_path / "nowhere"
    result = check("--trust-policy", str(policy), "--trust-store", str(missing))
    assert result.code == 2
    store_lines = [line for line in result.lines if "does not exist" in line]
    policy_lines = [line for line in result.lines if "does not exist" not in line]
    assert (len(store_lines), len(policy_lines)) == (1, 1), result.lines
    (store_line,), (policy_line,) = store_lines, policy_lines
    assert store_line.startswith("--trust-store: ")
    assert str(missing) in store_line
    assert str(policy) in policy_line
    assert 'trust policy statement "e2e" has malformed trust store value "*"' in policy_line


@pytest.mark.parametrize(
    ("policy_name", "wording"),
    [
        ("invalid_format_trustpolicy.json", "JSON"),
        ("invalid_trust_store_trustpolicy.json",
         'the trust store "invalid_store" of type "ca" does not exist'),
        ("multi_statements_with_the_same_registry_scope_trustpolicy.json",
         "localhost:5000/test-repo8"),
        ("empty_trusted_identity_trustpolicy.json",
         'trust policy statement "e2e" has an empty trusted identity'),
    ],
)
def test_notation_policies_it_refuses(store: Path, policy_name: str, wording: str) -> None:
    """Malformed policies (and a policy naming a store that is not there) from notation's e2e
    suite: exit 2, the problem in notation's words, the file named."""
    policy = POLICIES / policy_name
    result = check("--trust-policy", str(policy), "--trust-store", str(store))
    assert result.code == 2, result.stdout
    assert result.lines, "exit 2 without saying why"
    assert any(wording in line for line in result.lines), result.lines
    assert all(policy.name in line or "invalid_store" in line for line in result.lines)


def test_an_unreadable_config_is_one_located_problem(tmp_path: Path) -> None:
    config = _write(tmp_path / "auditor.yaml", "coverage:\n  - scope: [unclosed\n")
    result = check("--config", str(config))
    assert result.code == 2
    (line,) = result.lines
    assert line.startswith(f"{config}: not valid YAML at line ")


def test_cosign_section_keys_regexps_and_trusted_root_are_checked(tmp_path: Path) -> None:
    (tmp_path / "bad.pub").write_text("not a key")
    (tmp_path / "root.json").write_text("{}")
    config = tmp_path / "auditor.yaml"
    config.write_text(
        "cosign:\n"
        "  trusted_root: root.json\n"
        "  rules:\n"
        "    - {scopes: ['*'], key: bad.pub}\n"
    )
    result = check("--config", str(config))
    assert result.code == 2
    text = result.stdout + result.stderr
    assert f"{config}: cosign.rules[0].key: bad.pub: not a PEM public key" in text
    config.write_text(
        "cosign:\n"
        "  trusted_root: root.json\n"
        "  rules:\n"
        "    - scopes: ['*']\n"
        "      keyless: {identity_regexp: '(', issuer: x}\n"
    )
    result = check("--config", str(config))
    assert result.code == 2
    assert "cosign.rules[0].keyless: identity_regexp '(' does not compile" in (
        result.stdout + result.stderr
    )
    config.write_text(
        "cosign:\n"
        "  trusted_root: root.json\n"
        "  rules:\n"
        "    - {scopes: ['*'], keyless: {identity: a, issuer: b}}\n"
    )
    result = check("--config", str(config))
    assert result.code == 2
    assert "root.json: not a Sigstore trusted root" in result.stdout + result.stderr
    (tmp_path / "root.json").write_bytes(TRUSTED_ROOT.read_bytes())
    result = check("--config", str(config))
    assert result.code == 0, result.stdout + result.stderr


def test_config_check_names_missing_daemon_secrets(tmp_path: Path) -> None:
    config = tmp_path / "auditor.yaml"
    config.write_text(
        "registries: []\n"
        "server: {token_env: CHECK_NO_TOKEN, events_token_env: CHECK_NO_EVENTS}\n"
        "alerts:\n"
        "  slack: {webhook_url_env: CHECK_NO_SLACK}\n"
        "  webhooks: [{url: 'https://hooks.example/x', secret_env: CHECK_NO_SECRET}]\n"
    )
    problems = check_configuration(config, None, None)
    assert "server.token_env: environment variable CHECK_NO_TOKEN is not set" in problems
    assert (
        "server.events_token_env: environment variable CHECK_NO_EVENTS is not set" in problems
    )
    assert (
        "alerts.slack.webhook_url_env: environment variable CHECK_NO_SLACK is not set"
        in problems
    )
