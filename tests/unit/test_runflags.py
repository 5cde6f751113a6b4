"""audit now's registry flags, read and merged without a registry: the password read from stdin
(bounded, one newline dropped, never echoed), the precedence flag > environment > config, and
what run_config writes into the config model."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from auditor.app import run_config
from auditor.config import AuditorConfig, parse_config
from auditor.errors import UsageError
from auditor.registry.secret import Secret
from auditor.runflags import MAX_PASSWORD_BYTES, RunFlags, add_arguments, read_flags, read_password

SECRET = "unit-s3cret-pw"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"pw\n", "pw"),
        (b"pw\r\n", "pw"),
        (b"pw", "pw"),
        (b"pw\n\n", "pw\n"),  # one newline dropped, as docker login does
        (b" spaced pw ", " spaced pw "),
        ("p\u00e4ss".encode(), "p\u00e4ss"),
    ],
)
def test_password_from_stdin(data: bytes, expected: str) -> None:
    assert read_password(io.BytesIO(data)).reveal() == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "--password-stdin: stdin is empty (pipe the password in)"),
        (b"\r\n", "--password-stdin: stdin is empty (pipe the password in)"),
        (b"\xff\xfe" + SECRET.encode(), "--password-stdin: stdin is not UTF-8 text"),
        (SECRET.encode() * (MAX_PASSWORD_BYTES // len(SECRET) + 1),
         f"--password-stdin: more than {MAX_PASSWORD_BYTES} bytes on stdin"),
    ],
)
def test_bad_stdin_is_refused_without_echo(data: bytes, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        read_password(io.BytesIO(data))
    assert str(caught.value) == message


def test_stdin_is_read_only_up_to_the_bound() -> None:
    stream = io.BytesIO(b"x" * (10 * MAX_PASSWORD_BYTES))
    with pytest.raises(UsageError):
        read_password(stream)
    assert stream.tell() == MAX_PASSWORD_BYTES + 1


def test_precedence_flag_then_environment() -> None:
    env = {"AUDITOR_USERNAME": "env-user", "AUDITOR_PASSWORD": "env-pw"}
    both = read_flags(_args("-u", "flag-user", "--password-stdin"), io.BytesIO(b"flag-pw"), env)
    assert (both.username, both.password, both.credentials_from) == (
        "flag-user", Secret("flag-pw"), "-u/--username")
    mixed = read_flags(_args("-u", "flag-user"), None, env)
    assert (mixed.username, mixed.password) == ("flag-user", Secret("env-pw"))
    from_env = read_flags(_args(), None, env)
    assert (from_env.username, from_env.credentials_from) == ("env-user", "AUDITOR_USERNAME")
    assert read_flags(_args(), None, {}).has_credentials is False
    assert SECRET not in repr(both)


def test_flags_are_merged_into_the_config_model(tmp_path: Path) -> None:
    config = parse_config(
        {"registries": [{"url": "https://reg.example", "repositories": ["team/*"],
                         "auth": {"username": "cfg", "password_env": "CFG_PW"}}],
         "limits": {"timeout_seconds": 30, "request_deadline_seconds": 120}},
        "test.yaml",
    )
    ca = tmp_path / "ca.pem"
    flags = RunFlags(username="bot", password=Secret(SECRET), credentials_from="-u/--username",
                     insecure_registries=("reg.example",), ca_file=ca, timeout=5.0)
    merged = run_config(config, flags, ["reg.example/team/app:v1"])
    [registry] = merged.registries
    assert registry.url == "http://reg.example"
    assert registry.insecure is True
    assert registry.ca_file == ca
    assert registry.repositories == ["team/*"]  # the file's own settings stay
    assert registry.auth is not None
    assert registry.auth.username == "bot"
    assert registry.auth.password is not None
    assert registry.auth.password.get_secret_value() == SECRET
    assert SECRET not in repr(merged)
    assert merged.limits.request_deadline_seconds == 5.0
    assert merged.limits.timeout_seconds == 5.0
    assert config.registries[0].auth is not None  # the loaded config itself is untouched
    assert config.registries[0].auth.username == "cfg"


def test_a_target_host_outside_the_config_gets_its_own_entry() -> None:
    flags = RunFlags(username="bot", password=Secret(SECRET), credentials_from="AUDITOR_USERNAME")
    merged = run_config(AuditorConfig(), flags, ["reg.lan:5000/*"])
    [registry] = merged.registries
    assert registry.host == "reg.lan:5000"
    assert registry.url == "https://reg.lan:5000"
    assert run_config(AuditorConfig(), RunFlags(), ["reg.lan:5000/app"]).registries == []


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (["a.example/app", "b.example/app"], "this run reads 2 registries (a.example, b.example)"),
        (["oci-layout:./x"], "this run reads no registry"),
    ],
)
def test_command_line_credentials_need_exactly_one_registry(
    targets: list[str], message: str
) -> None:
    flags = RunFlags(username="bot", password=Secret(SECRET), credentials_from="-u/--username")
    with pytest.raises(UsageError) as caught:
        run_config(AuditorConfig(), flags, targets)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


def test_insecure_registry_given_as_https_is_refused_not_downgraded() -> None:
    """--insecure-registry means plain http. Written as https://HOST the user asked for TLS
    (probably without verification, as docker's flag reads): silently sending the credentials
    over plain http instead would be a downgrade they did not ask for."""
    with pytest.raises(UsageError, match=r"--insecure-registry 'https://reg.example': .*--ca-file"):
        read_flags(_args("--insecure-registry", "https://reg.example"), None, {})
    flags = read_flags(_args("--insecure-registry", "http://reg.example,other:5000"), None, {})
    assert flags.insecure_registries == ("reg.example", "other:5000")
