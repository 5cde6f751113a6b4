"""``auditor audit now``'s registry flags: what a notation or cosign user reaches for.

``-u/--username`` with ``--password-stdin`` (or ``AUDITOR_USERNAME`` / ``AUDITOR_PASSWORD``),
``--insecure-registry HOST``, ``--ca-file``, ``--timeout``, ``--platform``, ``-v/--verbose``.
This module only reads them (argv, stdin, environment) into :class:`RunFlags`, checking each
and naming the flag at fault; the composition root (:func:`auditor.app.run_config`) merges
them into the config model. The password is wrapped in :class:`Secret` as soon as it is read
and never appears in a message.
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from auditor.config import parse_duration
from auditor.errors import UsageError
from auditor.model import Platform
from auditor.oci.reference import is_valid_host
from auditor.registry.secret import Secret

USERNAME_ENV = "AUDITOR_USERNAME"
PASSWORD_ENV = "AUDITOR_PASSWORD"  # noqa: S105 - the variable's name, not a password
# docker login reads stdin to its end; a password, token or key file is a few KiB at most.
MAX_PASSWORD_BYTES = 64 * 1024


@dataclass(frozen=True)
class RunFlags:
    """The command line's registry overrides for one run (None / empty: not given)."""

    username: str | None = None
    password: Secret | None = None
    # Where the credentials came from, for messages: "-u/--username", "AUDITOR_USERNAME".
    credentials_from: str | None = None
    insecure_registries: tuple[str, ...] = ()
    ca_file: Path | None = None
    timeout: float | None = None
    platforms: tuple[Platform, ...] | None = None

    @property
    def has_credentials(self) -> bool:
        return self.username is not None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags, on ``audit now``."""
    group = parser.add_argument_group("registry")
    group.add_argument(
        "-u", "--username",
        help=f"registry username (else ${USERNAME_ENV}); the password comes from "
             f"--password-stdin or ${PASSWORD_ENV}, never from the command line. Sent only "
             "to the registry of the TARGETs (one registry per run)",
    )
    group.add_argument("--password-stdin", action="store_true",
                       help="read the password (or token) from stdin, as docker login does")
    group.add_argument(
        "--insecure-registry", action="append", metavar="HOST[:PORT]",
        help="use plain http for this registry (repeat or comma-separate); loopback hosts "
             "use http anyway",
    )
    group.add_argument("--ca-file", type=Path, metavar="FILE",
                       help="PEM CA certificates trusted for the TARGETs' registries' TLS, "
                            "besides the system's (a private CA)")
    group.add_argument(
        "--timeout", metavar="DURATION",
        help="bound on each HTTP request to a registry, headers and body (30s, 2m; "
             "default: the config's limits, 120s)",
    )
    group.add_argument(
        "--platform", action="append", metavar="OS/ARCH[/VARIANT]",
        help="only these platforms are required in this run (repeat or comma-separate; "
             "arm64 = arm64/v8); overrides every coverage rule's platforms",
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="progress as structured lines on stderr (targets, registry "
                             "requests, results)")


def read_password(stdin: BinaryIO) -> Secret:
    """The password from stdin: at most MAX_PASSWORD_BYTES, one trailing newline dropped."""
    data = stdin.read(MAX_PASSWORD_BYTES + 1)
    if len(data) > MAX_PASSWORD_BYTES:
        raise UsageError(f"--password-stdin: more than {MAX_PASSWORD_BYTES} bytes on stdin")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("--password-stdin: stdin is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise UsageError("--password-stdin: stdin is empty (pipe the password in)")
    return Secret(text)


def parse_platforms(
    items: list[str] | None, flag: str = "--platform"
) -> tuple[Platform, ...] | None:
    """``--platform`` values: repeated and/or comma-separated ``os/arch[/variant]``."""
    if not items:
        return None
    out: list[Platform] = []
    for item in items:
        for text in item.split(","):
            try:
                platform = Platform.parse(text)
            except ValueError as exc:
                raise UsageError(f"{flag}: {exc}") from None
            if platform.is_unknown:
                raise UsageError(f"{flag}: unknown/unknown is an attestation, not a platform")
            out.append(platform)
    return tuple(dict.fromkeys(out))


def _hosts(items: list[str] | None) -> tuple[str, ...]:
    hosts: list[str] = []
    for item in items or []:
        for text in item.split(","):
            if text.strip().lower().startswith("https://"):
                # Plain http is what the flag means: never a silent downgrade of an https URL.
                raise UsageError(
                    f"--insecure-registry {text!r}: this flag means plain http; for an https "
                    "registry with a private CA give --ca-file FILE"
                )
            host = text.strip().removeprefix("http://").rstrip("/")
            if "/" in host:
                raise UsageError(
                    f"--insecure-registry {text!r}: give a registry host (HOST[:PORT]), not an "
                    f"image reference: --insecure-registry {host.split('/')[0]} TARGET"
                )
            if not host or "@" in host or not is_valid_host(host):
                raise UsageError(f"--insecure-registry {text!r}: not a registry HOST[:PORT]")
            hosts.append(host)
    return tuple(dict.fromkeys(hosts))


def _check_ca_file(path: Path) -> None:
    """Refused here, naming the flag, rather than as the config key it becomes."""
    if not path.is_file():
        raise UsageError(f"--ca-file {path}: no such file")
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except (OSError, ssl.SSLError, ValueError):
        raise UsageError(f"--ca-file {path}: not PEM CA certificates") from None


def _timeout(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    ceiling = 3600.0
    if seconds > ceiling:
        raise UsageError(f"--timeout {text}: at most {ceiling:g}s (1h) per request")
    return seconds


def read_flags(
    args: argparse.Namespace, stdin: BinaryIO | None, env: Mapping[str, str]
) -> RunFlags:
    """Every flag checked, credentials resolved by precedence: flag, then environment."""
    username: str | None = args.username
    credentials_from = "-u/--username" if username is not None else None
    if username is None and env.get(USERNAME_ENV):
        username, credentials_from = env[USERNAME_ENV], USERNAME_ENV
    password: Secret | None = None
    if args.password_stdin:
        if stdin is None:
            raise UsageError("--password-stdin: no stdin to read")
        password = read_password(stdin)
    elif env.get(PASSWORD_ENV):
        password = Secret(env[PASSWORD_ENV])
    if username is not None and not username.strip():
        raise UsageError(f"{credentials_from}: the username is empty")
    if username is not None and password is None:
        raise UsageError(
            f"{credentials_from}: a username needs a password: pipe it to --password-stdin "
            f"or set {PASSWORD_ENV}"
        )
    if password is not None and username is None:
        source = "--password-stdin" if args.password_stdin else PASSWORD_ENV
        raise UsageError(f"{source}: a password needs a username: -u NAME or {USERNAME_ENV}")
    if args.ca_file is not None:
        _check_ca_file(args.ca_file)
    return RunFlags(
        username=username,
        password=password,
        credentials_from=credentials_from,
        insecure_registries=_hosts(args.insecure_registry),
        ca_file=args.ca_file,
        timeout=_timeout(args.timeout),
        platforms=parse_platforms(args.platform),
    )
