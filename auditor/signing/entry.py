"""The ``sign`` and ``keys`` subcommands' arguments and runners; ``auditor/cli.py`` wires them.

Exit codes of ``auditor sign``: 0 every selected node signed (or already signed, or the plan
printed), 1 some selected node failed, 2 usage or configuration error (the CLI's own mapping).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from auditor.config import load_config
from auditor.errors import UsageError
from auditor.model import Platform
from auditor.notary.trustconfig import notation_config_dir
from auditor.signing.keys import load_signing_key
from auditor.signing.plan import Selection
from auditor.signing.testkey import KEY_TYPES, generate_test_key

_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_METADATA_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")


SIGN_EXAMPLES = """examples:
  auditor keys generate-test release                  a throw-away identity (notation's layout)
  auditor sign REF --key K --cert C                   the digest REF names, as notation sign
  auditor sign REF --key K --cert C -r                index, nested indexes, every platform
  auditor sign REF --key K --cert C -r --platform linux/arm64 --no-index
  auditor sign REF --key K --cert C --missing         exactly what `audit now` finds unsigned
  auditor sign REF --key K --cert C -r --dry-run      the plan, nothing signed
  auditor sign oci-layout:DIR:v1 --key K --cert C --missing --scope local/NAME

exit codes: 0 every selected node signed (or already), 1 a selected node failed,
  2 usage or configuration error, 3 an error before any node, 4 internal error (a bug)"""


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise UsageError(f"--expiry: {text!r} is not a duration like 30d, 12h, 90m or 2w")
    value = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if value <= timedelta(0):
        raise UsageError("--expiry must be positive")
    return value


def parse_metadata(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not _METADATA_KEY.match(key):
            raise UsageError(f"--user-metadata: {item!r} is not KEY=VALUE")
        if key.startswith("io.cncf.notary"):
            raise UsageError(f"--user-metadata: {key!r}: the io.cncf.notary prefix is reserved")
        if key in out:
            raise UsageError(f"--user-metadata: {key!r} given twice")
        out[key] = value
    return out


def parse_platforms(items: list[str] | None) -> tuple[Platform, ...] | None:
    if not items:
        return None
    try:
        return tuple(Platform.parse(p) for item in items for p in item.split(","))
    except ValueError as exc:
        raise UsageError(f"--platform: {exc}") from None


def add_parsers(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``sign`` and ``keys`` to the CLI's subparsers (made with ``parser_class``)."""
    sign = sub.add_parser(
        "sign",
        help="sign an image (and, recursively, its platform images)",
        epilog=SIGN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sign.add_argument("reference", metavar="REFERENCE",
                      help="host/repo:tag|@digest or oci-layout:DIR:tag|@digest")
    sign.add_argument("--key", type=Path, required=True, help="PEM private key (RSA or EC)")
    sign.add_argument("--cert", type=Path, required=True,
                      help="PEM certificate chain, the key's certificate first")
    sign.add_argument("--key-passphrase-env", metavar="VAR",
                      help="environment variable holding the passphrase of an encrypted key")
    sign.add_argument("--recursive", "-r", action="store_true",
                      help="sign the index, nested indexes and platform manifests")
    sign.add_argument("--platform", action="append", metavar="OS/ARCH[/VARIANT]",
                      help="with --recursive: only these platforms (repeat or comma-separate)")
    sign.add_argument("--no-index", action="store_true",
                      help="with --recursive: sign the selected platforms only, no index")
    sign.add_argument("--include-attestations", action="store_true",
                      help="with --recursive: sign attestation manifests too")
    sign.add_argument("--missing", action="store_true",
                      help="sign exactly what the coverage policy finds unsigned or invalid")
    sign.add_argument("--signature-format", choices=["jws", "cose"], default="jws")
    sign.add_argument("--expiry", metavar="DURATION", help="signature expiry, e.g. 30d, 12h")
    sign.add_argument("--user-metadata", "-m", action="append", metavar="KEY=VALUE",
                      help="signed annotations in the payload (repeatable)")
    sign.add_argument("--timestamp-url", help="RFC 3161 timestamp authority URL")
    sign.add_argument("--timestamp-root-cert", type=Path,
                      help="root certificate that the TSA's answer must chain to")
    sign.add_argument("--force", action="store_true",
                      help="sign again nodes this certificate already signed")
    sign.add_argument("--dry-run", action="store_true", help="print the plan; sign nothing")
    sign.add_argument("--format", choices=["table", "json"], default="table")
    sign.add_argument("--config", "-c", type=Path,
                      help="config file (default: ./auditor.yaml when present)")
    sign.add_argument("--trust-policy", type=Path, help="notation trustpolicy(.oci).json")
    sign.add_argument("--trust-store", type=Path, help="notation trust store (has x509/...)")
    sign.add_argument("--scope", metavar="SCOPE",
                      help="trust policy scope of an oci-layout: REFERENCE, local/NAME (as "
                           "notation verify --oci-layout --scope; default: the configured "
                           "layout's scope:, else only a '*' statement applies)")

    keys = sub.add_parser("keys", help="signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, parser_class=parser_class)
    gen = keys_sub.add_parser(
        "generate-test",
        help="a self-signed test key and certificate, trust store entry and policy statement",
    )
    gen.add_argument("name", metavar="NAME")
    gen.add_argument("--dir", type=Path,
                     help="where to write (default: notation's config directory)")
    gen.add_argument("--key-type", choices=list(KEY_TYPES), default="rsa2048")
    gen.add_argument("--days", type=int, default=365, help="certificate validity")
    gen.add_argument("--scope", action="append",
                     help="registry scope the policy statement trusts it for (default '*')")


def run_sign(args: argparse.Namespace, stdout: TextIO) -> int:
    from auditor.app import App, AppOptions
    from auditor.cli import layout_scope
    from auditor.signing.command import SignOptions, SignReport, sign
    from auditor.signing.report import render_json, render_table
    from auditor.signing.tsa import TimestampAuthority, load_root

    selection = Selection(
        recursive=args.recursive,
        platforms=parse_platforms(args.platform),
        no_index=args.no_index,
        include_attestations=args.include_attestations,
        missing=args.missing,
        force=args.force,
    )
    selection.check()
    scope = layout_scope(args.scope, [args.reference])
    if (args.timestamp_url is None) != (args.timestamp_root_cert is None):
        raise UsageError("--timestamp-url and --timestamp-root-cert go together")
    timestamp = None
    if args.timestamp_url is not None:
        if not args.timestamp_url.startswith(("http://", "https://")):
            raise UsageError(f"--timestamp-url: {args.timestamp_url!r} is not an http(s) URL")
        timestamp = TimestampAuthority(args.timestamp_url, load_root(args.timestamp_root_cert))
    options = SignOptions(
        envelope=args.signature_format,
        expiry=parse_duration(args.expiry) if args.expiry else None,
        user_metadata=parse_metadata(args.user_metadata),
        timestamp=timestamp,
        dry_run=args.dry_run,
    )
    key = load_signing_key(
        args.key, args.cert, passphrase_env=args.key_passphrase_env, env=os.environ
    )
    config, _ = load_config(args.config)
    app_options = AppOptions(trust_policy=args.trust_policy, trust_store=args.trust_store)

    async def run() -> SignReport:
        async with App(config, app_options) as app:
            return await sign(app, args.reference, key, selection, options, scope)

    report = asyncio.run(run())
    stdout.write(render_json(report) if args.format == "json" else render_table(report))
    return 1 if report.failed else 0


def run_keys(args: argparse.Namespace, stdout: TextIO) -> int:
    directory = args.dir or notation_config_dir()
    made = generate_test_key(
        args.name,
        directory,
        key_type=args.key_type,
        days=args.days,
        scopes=tuple(args.scope or ["*"]),
    )
    stdout.write(
        f"generated {made.subject}\n"
        f"  key:         {made.key}\n"
        f"  certificate: {made.cert}\n"
        f"  trust store: {made.trust_store_cert} (ca:{args.name})\n"
        f"  policy:      {made.trust_policy} (statement {args.name!r})\n"
    )
    return 0
