"""Command line: ``main(argv) -> exit code``. Errors print as one line; no tracebacks.

Exit codes (documented in the README):
  0  every target compliant
  1  findings: some target is noncompliant (unsigned / invalid / missing platform)
  2  usage or configuration error
  3  nothing noncompliant, but something could not be checked (registry errors, ...)
  4  internal error: a bug escaped (one line on stderr; the traceback only with --debug)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from auditor import __version__, runflags
from auditor.config import load_config
from auditor.coverage import Require, exit_code
from auditor.errors import AuditorError, ConfigError, InvalidReference, UsageError
from auditor.formats import Format, render
from auditor.model import AuditReport, TargetResult
from auditor.signing import entry as signing_commands

if TYPE_CHECKING:
    from auditor.app import App
    from auditor.state.store import Store

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns every exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


DESCRIPTION = (
    "Audit which parts of multi-platform container images (indexes, platform manifests, "
    "attestations) carry verified Notary Project or cosign signatures."
)
EXIT_CODES = """exit codes:
  0  every target compliant
  1  findings: a target is noncompliant (unsigned, invalid, missing platform)
  2  usage or configuration error
  3  nothing noncompliant, but something could not be checked
  4  internal error (a bug; --debug prints the traceback)"""
AUDIT_EXAMPLES = """examples:
  auditor audit now REG/team/app                 every tag of a repository
  auditor audit now REG/team/app:v1 --format json
  auditor audit now REG/team/*                   the repositories matching a glob
  auditor audit now REG                          every repository in the catalog
  auditor audit now oci-layout:./build/layout:v1 an OCI image layout
  auditor audit now -c auditor.yaml --format sarif -o audit.sarif
  printf '%s\\n' "$TOKEN" | auditor audit now REG/team/app -u bot --password-stdin
  (REG: your registry's host[:port])"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="auditor",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"auditor {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of an internal error (exit code 4)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="COMMAND", title="commands")

    audit = sub.add_parser("audit", help="audit images", description="Audit images.")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, parser_class=_Parser,
                                     metavar="now", title="commands")
    now = audit_sub.add_parser(
        "now",
        help="audit once and exit with a CI-friendly code",
        description="Audit the TARGETs (or the config's registries and layouts) once; the exit "
        "code says whether everything is covered.",
        epilog=f"{AUDIT_EXAMPLES}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    now.add_argument("targets", nargs="*", metavar="TARGET",
                     help="host/repo[:tag|@digest] or oci-layout:PATH[:tag]; default: the config")
    _add_config(now)
    now.add_argument("--format", choices=[f.value for f in Format], default=None,
                     help="table (default), json, sarif or html (one self-contained page)")
    now.add_argument("--output", "-o", metavar="FILE",
                     help="write the report to FILE instead of stdout (the summary line still "
                          "goes to stderr)")
    now.add_argument("--trust-policy", type=Path, help="notation trustpolicy(.oci).json")
    now.add_argument("--trust-store", type=Path, help="notation trust store (has x509/...)")
    now.add_argument("--scope", metavar="SCOPE",
                     help="trust policy scope of the oci-layout: TARGETs, such as "
                          "local/NAME (as notation verify --oci-layout --scope); without it "
                          "only a '*' statement applies to a layout")
    now.add_argument("--require", choices=[r.value for r in Require],
                     help="override the coverage rule's requirement for every target")
    now.add_argument("--sarif-category", metavar="NAME",
                     help="sarif: the analysis name (automationDetails), so several audits of "
                          "one commit can be uploaded side by side (default: registry-auditor)")
    now.add_argument("--quiet", "-q", action="store_true",
                     help="table: print open findings only (nothing when all is compliant); "
                          "no per-target lines on stderr")
    now.add_argument("--no-progress", action="store_true",
                     help="no progress on stderr (on a terminal a line rewritten in place; "
                          "elsewhere, as in CI, one line per target as it finishes)")
    now.add_argument("--state", type=Path,
                     help="state database to reuse caches from and record the run in "
                          "(default: the config's state.path, else none)")
    runflags.add_arguments(now)

    serve = sub.add_parser("serve", help="run the daemon: scheduled audits, state, /metrics")
    _add_config(serve)
    serve.add_argument("--state", type=Path,
                       help="state database (default: the config's state.path, else ./auditor.db)")
    serve.add_argument("--listen", metavar="HOST:PORT",
                       help="HTTP listener (default: the config's server.listen, else "
                            "$AUDITOR_LISTEN, else 127.0.0.1:9464)")

    config = sub.add_parser("config", help="configuration", description="Configuration.")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=_Parser,
                                       metavar="check", title="commands")
    check = config_sub.add_parser(
        "check",
        help="validate config, trust policy and trust store",
        description="Check the config file, the trust policy and the trust store without "
        "contacting any registry; every problem is printed with its location (exit 2).",
    )
    _add_config(check)
    check.add_argument("--trust-policy", type=Path, help="notation trustpolicy(.oci).json")
    check.add_argument("--trust-store", type=Path, help="notation trust store (has x509/...)")
    signing_commands.add_parsers(sub, _Parser)
    return parser


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", type=Path,
                        help="config file (default: ./auditor.yaml when present)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="print the traceback of an internal error (exit code 4)")


def output_path(text: str | None) -> Path | None:
    """``-o FILE``, checked before the audit runs: a run of minutes must not end in "cannot
    write". ``-o json`` (no such file, a format's name) is almost always a mistyped
    ``--format json``."""
    if text is None:
        return None
    path = Path(text)
    if text in {f.value for f in Format} and not path.exists():
        raise UsageError(
            f"-o writes a file; did you mean --format {text}? (for a file named {text}, "
            f"write -o ./{text})"
        )
    if path.is_dir():
        raise UsageError(f"--output {text}: is a directory")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"--output {text}: directory {parent} does not exist")
    if not os.access(path if path.exists() else parent, os.W_OK):
        raise UsageError(f"--output {text}: not writable")
    return path


def layout_scope(scope: str | None, targets: Sequence[str]) -> str | None:
    """``--scope``, checked as notation checks it: a registry scope (``local/NAME``), and only
    with ``oci-layout:`` TARGETs (notation requires ``--oci-layout`` with ``--scope``)."""
    if scope is None:
        return None
    from auditor.notary.trustpolicy import layout_scope_problem
    from auditor.oci.reference import LAYOUT_PREFIX

    if (problem := layout_scope_problem(scope)) is not None:
        raise UsageError(f"--scope: {problem}")
    if not targets or not all(t.strip().startswith(LAYOUT_PREFIX) for t in targets):
        raise UsageError(
            "--scope applies to oci-layout: TARGETs only (as notation verify --oci-layout "
            "--scope); a registry image's scope is its host/repository, and a configured "
            "layout takes scope: in the config"
        )
    return scope


def _run_audit_now(
    args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: BinaryIO | None
) -> int:
    from auditor.app import App, AppOptions, run_config
    from auditor.formats.table import finished_line, summary_line
    from auditor.runinfo import holds_inline_secrets
    from auditor.state.runs import open_state, record_cli_run
    from auditor.verbose import VerboseLog

    output = output_path(args.output)
    flags = runflags.read_flags(args, stdin, os.environ)
    config, config_path = load_config(args.config)
    config_holds_secrets = holds_inline_secrets(config)  # the file's own, before the flags
    scope = layout_scope(args.scope, args.targets)
    if not args.targets and not config.registries and not config.layouts:
        raise UsageError(
            "auditor audit now: nothing to audit: give TARGETs or a config with registries/layouts"
        )
    config = run_config(config, flags, args.targets)
    options = AppOptions(
        trust_policy=args.trust_policy,
        trust_store=args.trust_store,
        require=args.require,
        platforms=flags.platforms,
        layout_scope=scope,
        config_path=config_path,
        config_holds_secrets=config_holds_secrets,
    )
    verbose = VerboseLog(stderr) if args.verbose else None
    # On a terminal, one line rewritten in place while targets start; off a terminal (a CI
    # log), one line per target as it finishes. --no-progress: neither; --quiet: no
    # per-target lines (it prints nothing when everything is compliant).
    show_progress = not args.no_progress and stderr.isatty() and verbose is None
    show_finished = not args.no_progress and not args.quiet and not stderr.isatty()

    def progress(line: str) -> None:
        stderr.write(f"\r\033[K{line}")
        stderr.flush()

    def finished(position: int, count: int, result: TargetResult) -> None:
        stderr.write(f"{finished_line(position, count, result)}\n")
        stderr.flush()

    def make_app(store: Store | None) -> App:
        """The run's one App, whichever way its report is made (streamed or collected)."""
        if verbose is not None:
            verbose.start(config, args.targets, flags)
        return App(
            config,
            options,
            progress=verbose.progress if verbose else progress if show_progress else None,
            finished=finished if show_finished else None,
            store=store,
            on_response=verbose.response if verbose else None,
        )

    state_path = args.state or (config.state.path if config.state else None)
    fmt = Format(args.format) if args.format else Format.TABLE
    if fmt in (Format.TABLE, Format.JSON, Format.SARIF):
        streamed_store = open_state(state_path) if state_path else None
        try:
            app = make_app(streamed_store)
            code, line = _stream_audit_now(args, app, fmt, output, stdout, streamed_store)
        finally:
            if streamed_store is not None:
                streamed_store.close()
        if show_progress:
            stderr.write("\r\033[K")
        if verbose is not None:
            verbose.finished_summary(line)
        if output is not None:
            stderr.write(f"{line} (report in {output})\n")
        return code

    async def run() -> AuditReport:
        store = open_state(state_path) if state_path else None
        try:
            async with make_app(store) as app:
                if store is None:
                    return await app.audit(args.targets)
                return await record_cli_run(store, app, args.targets)
        finally:
            if store is not None:
                store.close()

    report = asyncio.run(run())
    if show_progress:
        stderr.write("\r\033[K")
    if verbose is not None:
        verbose.finished(report)
    terminal = output is None and stdout.isatty()
    text = render(
        report,
        fmt,
        quiet=args.quiet,
        color=terminal and "NO_COLOR" not in os.environ,
        width=shutil.get_terminal_size().columns if terminal else None,
        category=args.sarif_category,
        workspace=str(Path.cwd()),
    )
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--output {output}: {exc.strerror or exc}") from None
        stderr.write(f"{summary_line(report)} (report in {output})\n")
    else:
        stdout.write(text)
        if text and not text.endswith("\n"):
            stdout.write("\n")
    return exit_code(report.targets)


def _stream_audit_now(
    args: argparse.Namespace,
    app: App,
    fmt: Format,
    output: Path | None,
    stdout: TextIO,
    store: Store | None,
) -> tuple[int, str]:
    """The table, JSON and SARIF fed target by target (auditor/streamed.py), holding no
    report (with ``store``, recorded in it); the exit code and the summary line."""
    from auditor.coverage import summary_exit_code
    from auditor.formats.table import summary_text
    from auditor.streamed import report_file, stream_audit

    terminal = output is None and stdout.isatty()

    async def run(out: TextIO) -> tuple[int, str]:
        async with app:
            done = await stream_audit(
                app, args.targets, fmt, out,
                category=args.sarif_category, workspace=str(Path.cwd()),
                quiet=args.quiet,
                color=terminal and "NO_COLOR" not in os.environ,
                width=shutil.get_terminal_size().columns if terminal else None,
                store=store,
            )
        return summary_exit_code(done.summary), summary_text(done.summary, done.notes)

    if output is None:
        return asyncio.run(run(stdout))
    with report_file(output) as out:
        return asyncio.run(run(out))


def _run_config_check(args: argparse.Namespace, stdout: TextIO) -> int:
    from auditor.app import check_configuration, configuration_warnings

    problems = check_configuration(args.config, args.trust_policy, args.trust_store)
    if problems:
        for line in problems:
            stdout.write(f"{line}\n")
        return EXIT_USAGE
    warnings = configuration_warnings(args.config, args.trust_policy, args.trust_store)
    for line in warnings:
        stdout.write(f"warning: {line}\n")
    if warnings:
        count = len(warnings)
        stdout.write(f"configuration valid, with {count} warning{'s' * (count != 1)}\n")
    else:
        stdout.write("configuration OK\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None, stdin: BinaryIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    source = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(arguments)
        if args.command == "audit":
            return _run_audit_now(args, out, err, source)
        if args.command == "serve":
            from auditor.daemon.command import run_serve

            return run_serve(args.config, state=args.state, listen=args.listen)
        if args.command == "sign":
            return signing_commands.run_sign(args, out)
        if args.command == "keys":
            return signing_commands.run_keys(args, out)
        return _run_config_check(args, out)
    except (UsageError, ConfigError, InvalidReference) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except AuditorError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130
    except Exception as exc:
        # The one place a bug becomes exit code 4: never read as exit 1 ("findings"), never a
        # traceback by default. The message itself is left out (it may quote hostile input or
        # a secret); where it happened is enough to report it.
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        err.write(f"internal error: {type(exc).__name__}{where} "
                  "(a bug; run with --debug for the traceback)\n")
        if "--debug" in arguments:
            traceback.print_exc(file=err)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
