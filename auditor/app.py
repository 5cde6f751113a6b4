"""The composition root: the one place that builds clients, sources, verifier and rules.

``auditor audit now`` uses it; the daemon will too, keeping one App (and so one shared
``httpx.AsyncClient`` and one verdict cache) across crawls.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import httpx
from pydantic import SecretStr

from auditor.audit import RUN_DEADLINE_PASSED, Auditor, AuditSettings, AuditTarget, ReportSink
from auditor.config import (
    DEFAULT_CONFIG_NAME,
    AuditorConfig,
    AuthConfig,
    LayoutConfig,
    RegistryConfig,
    TrustConfig,
    cosign_section,
    environment,
    load_config,
    trust_section,
)
from auditor.cosign.format import CosignFormat
from auditor.coverage import CoverageRule, Require, error_target
from auditor.daemon.alerts.delivery import build_sinks
from auditor.errors import AuditorError, ConfigError, ErrorCategory, StateError, UsageError
from auditor.layout.reader import OciLayoutSource, open_layout
from auditor.model import AuditReport, Platform, ReportNote, ReportStart, RunInfo, TargetResult
from auditor.notary.format import NotationFormat
from auditor.notary.revocation import RevocationChecker
from auditor.notary.trustconfig import (
    load_trust_config,
    notation_config_dir,
    notation_policy_path,
)
from auditor.notary.trustpolicy import load_trust_policy
from auditor.notary.verifier import Verifier
from auditor.oci.reference import LayoutReference, parse_target
from auditor.registry.auth import AuthProvider, Credentials
from auditor.registry.client import RegistryClient
from auditor.registry.credentials import docker_credentials, stored_logins_path
from auditor.registry.retry import RegistryHealth, RetryPolicy
from auditor.registry.runcache import RunCache, run_cache
from auditor.registry.secret import Secret
from auditor.registry.transport import scheme_for
from auditor.runflags import RunFlags
from auditor.runinfo import run_info
from auditor.signatures.interface import SignatureFormat
from auditor.source import ManifestSource
from auditor.state.caches import CachingSource, StoreVerdictCache, trust_fingerprint
from auditor.state.naming import registry_source
from auditor.targets import Expander, glob_can_match_a_repository, is_glob
from auditor.verdicts import MemoryVerdictCache, VerdictCache

if TYPE_CHECKING:  # SQLAlchemy is imported only by whoever opens a store (--state, the daemon)
    from auditor.state.store import Store


@dataclass(frozen=True)
class AppOptions:
    """Command-line overrides of the config file."""

    trust_policy: Path | None = None
    trust_store: Path | None = None
    require: str | None = None
    # ``--platform``: overrides every coverage rule's platforms for the run.
    platforms: tuple[Platform, ...] | None = None
    # ``--scope``: the trust policy scope of the oci-layout: TARGETs (notation's
    # ``verify --oci-layout --scope``).
    layout_scope: str | None = None
    config_path: Path | None = None  # the file the config came from, for the report
    # The file holds a password or token of its own (runinfo.holds_inline_secrets): the
    # report records its path, never its hash.
    config_holds_secrets: bool = False


def run_registries(config: AuditorConfig, references: Sequence[str]) -> list[str]:
    """The registry hosts a run reads: those of the TARGETs, else the config's registries."""
    if not references:
        return list(dict.fromkeys(r.host for r in config.registries))
    hosts: list[str] = []
    for text in references:
        target = parse_target(text)
        if not isinstance(target, LayoutReference):
            hosts.append(target.registry)
    return list(dict.fromkeys(hosts))


def run_config(config: AuditorConfig, flags: RunFlags, references: Sequence[str]) -> AuditorConfig:
    """The command line's registry flags merged into the config model (flags win over the
    file, the environment's AUDITOR_USERNAME/PASSWORD over the file's ``auth:``, which wins
    over docker's and notation's stored logins).

    Credentials given on the command line or in the environment name no registry, so they go
    to exactly one: the registry of the TARGETs (or the config's only registry); a run over
    several registries is refused rather than sending them everywhere. ``--insecure-registry``
    must name a registry of the run and ``--ca-file`` applies to every registry of the run.
    """
    hosts = run_registries(config, references)
    if flags.has_credentials and len(hosts) != 1:
        named = f"{len(hosts)} registries ({', '.join(hosts)})" if hosts else "no registry"
        raise UsageError(
            f"{flags.credentials_from}: credentials from the command line or environment go to "
            f"one registry, and this run reads {named}: audit one registry per run, or give "
            "each registry its auth: in the config"
        )
    for host in flags.insecure_registries:
        if host not in hosts:
            raise UsageError(
                f"--insecure-registry {host}: no TARGET (or configured registry) is on {host}"
            )
    if flags.ca_file is not None and not hosts:
        raise UsageError("--ca-file: no registry among the TARGETs")
    limits = config.limits
    if flags.timeout is not None:
        limits = limits.model_copy(
            update={
                "request_deadline_seconds": flags.timeout,
                "timeout_seconds": min(limits.timeout_seconds, flags.timeout),
            }
        )
    configured = {r.host: r for r in config.registries}
    merged: dict[str, RegistryConfig] = dict(configured)
    for host in hosts:
        update: dict[str, object] = {}
        if host in flags.insecure_registries:
            update.update(insecure=True, url=f"http://{host}")
        if flags.ca_file is not None:
            update["ca_file"] = flags.ca_file
        if flags.has_credentials and flags.password is not None:
            update["auth"] = AuthConfig(
                username=flags.username, password=SecretStr(flags.password.reveal())
            )
        if not update:
            continue
        base = configured.get(host) or RegistryConfig(
            url=f"{scheme_for(host, False)}://{host}", repositories=["*"]
        )
        merged[host] = base.model_copy(update=update)
    return config.model_copy(update={"registries": list(merged.values()), "limits": limits})


def coverage_rules(config: AuditorConfig) -> tuple[CoverageRule, ...]:
    return tuple(rule.to_rule() for rule in config.coverage)


def _trust_paths(config: AuditorConfig, options: AppOptions) -> tuple[Path | None, Path | None]:
    trust = config.trust
    policy = options.trust_policy or (trust.policy if trust else None)
    store = options.trust_store or (trust.store if trust else None)
    return policy, store


def _notation_policy_present() -> bool:
    directory = notation_config_dir()
    return any((directory / n).exists() for n in ("trustpolicy.oci.json", "trustpolicy.json"))


def signature_formats(
    config: AuditorConfig, verifier: Verifier | None
) -> tuple[SignatureFormat, ...]:
    """The registered signature formats, in the order they are asked to claim a referrer.

    A new format is one line here (and its package beside ``notary/``).
    """
    limits = config.limits
    cosign = None
    if config.cosign is not None:
        from auditor.cosign.material import load_cosign_trust  # sigstore: only when configured

        cosign = load_cosign_trust(config.cosign)
    return (
        NotationFormat(verifier, max_envelope_bytes=limits.max_envelope_bytes),
        CosignFormat(cosign, max_blob_bytes=limits.max_envelope_bytes),
    )


def build_verifier(config: AuditorConfig, options: AppOptions) -> Verifier | None:
    """A verifier from flags, config, or notation's own config directory; None when there is
    no trust configuration anywhere (signatures are then reported ``unverified``)."""
    policy, store = _trust_paths(config, options)
    if policy is None and store is None and not _notation_policy_present():
        return None
    trust = load_trust_config(policy, store)
    section = config.trust or TrustConfig()  # its defaults live in the config model only
    timeout = section.revocation_timeout_seconds
    revocation = RevocationChecker(
        cache_dir=section.revocation_cache,
        ocsp_timeout=timeout,
        crl_timeout=timeout,
        max_fetches=config.limits.max_revocation_fetches,
    )
    # Trust stores are read when a signature under a statement first needs them, as notation
    # loads only the applicable statement's stores: a broken store named by a statement no
    # audited target falls under does not stop the run, and makes the signatures of the
    # targets that do fall under it ``error`` (naming the store). `config check` reads them
    # all (trust_store_problems).
    return Verifier(trust.policy, trust.store_path, revocation=revocation)


def trust_store_problems(verifier: Verifier) -> tuple[list[str], list[str]]:
    """Every trust store the policy names, read now: (problems, warnings).

    A broken store named by a ``*`` statement fails every audit there could be: a problem. One
    named by a scoped statement only fails the targets under that statement: a warning.
    """
    problems: list[str] = []
    warnings: list[str] = []
    source = verifier.policy.source
    for statement in verifier.policy.statements:
        for ref in statement.trust_stores:
            try:
                verifier.trust_store.certificates(ref)
            except ConfigError as exc:
                if statement.is_global:
                    problems.append(f"{source}: statement {statement.name!r}: {exc}")
                else:
                    scopes = ", ".join(statement.registry_scopes)
                    warnings.append(
                        f"{source}: statement {statement.name!r} ({scopes}): {exc}; "
                        "signatures of targets under this statement will be errors"
                    )
    return problems, warnings


async def _auth_for(registry: RegistryConfig | None, host: str) -> AuthProvider:
    if registry is None or registry.auth is None:
        # notation's login store when it has logins, else docker's (as notation picks).
        stored = stored_logins_path()
        return AuthProvider(await docker_credentials(host, stored) if stored else None)
    resolved = registry.auth.resolve(environment(), f"registries[{registry.url}].auth")
    if resolved.docker_config is not None:
        return AuthProvider(await docker_credentials(host, resolved.docker_config))
    if resolved.username and resolved.password:
        return AuthProvider.basic(resolved.username, resolved.password.get_secret_value())
    if resolved.identity_token:
        secret = Secret(resolved.identity_token.get_secret_value())
        return AuthProvider(Credentials(identity_token=secret))
    return AuthProvider.anonymous()


def trust_hash(config: AuditorConfig, options: AppOptions) -> str:
    """A hash of everything signature verdicts depend on: notation's trust policy and trust
    store (or notation's whole config directory when they are not configured), cosign's
    trusted root and key files, and cosign's rules as written in the config."""
    policy, store = _trust_paths(config, options)
    files: list[Path | None] = [policy, store or notation_config_dir()]
    settings = ""
    if config.cosign is not None:
        files.append(config.cosign.trusted_root)
        files.extend(path for rule in config.cosign.rules for path in rule.key_paths)
        settings = config.cosign.model_dump_json()
    return trust_fingerprint(files, settings)


ResponseHook = Callable[[httpx.Response], None]


def _ca_context(ca_file: Path) -> ssl.SSLContext:
    """The system's trust plus ``ca_file`` (a registry's private CA, PEM); a file that is not
    there or holds no certificate is a config error naming it, not a TLS failure later."""
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError, ValueError) as exc:
        detail = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise ConfigError(
            f"ca_file {ca_file}: cannot be read as PEM CA certificates ({detail})"
        ) from None
    return context


class App:
    """Owns the run's resources; use as ``async with App(config) as app``.

    With a ``store`` (auditor/state), registry reads by digest and signature verdicts are
    cached in it across runs and restarts; ``on_response`` sees every registry response (the
    daemon counts them by host and status code); ``progress`` hears each target as it starts
    and ``finished`` each result as it is handed out (the CLI's stderr lines).
    """

    def __init__(
        self,
        config: AuditorConfig,
        options: AppOptions | None = None,
        *,
        progress: Callable[[str], None] | None = None,
        finished: Callable[[int, int, TargetResult], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        store: Store | None = None,
        on_response: ResponseHook | None = None,
    ) -> None:
        self.config = config
        self.options = options or AppOptions()
        self.store = store
        self._progress = progress
        self._transport = transport
        self._on_response = on_response
        self._stack = AsyncExitStack()
        self._http: dict[tuple[bool, str | None], httpx.AsyncClient] = {}
        self._registries: dict[str, RegistryClient] = {}
        self._sources: dict[str, ManifestSource] = {}
        self._layouts: dict[Path, OciLayoutSource] = {}
        self._notes: list[ReportNote] = []
        self._verifier = build_verifier(config, self.options)
        self.trust_hash = trust_hash(config, self.options)
        limits = config.limits
        self._retry = RetryPolicy(
            max_attempts=limits.retry_attempts,
            max_retry_after=limits.retry_after_max_seconds,
            budget=limits.retry_budget_seconds,
        )
        self.auditor = Auditor(
            rules=coverage_rules(config),
            require=Require(self.options.require) if self.options.require else None,
            platforms=self.options.platforms,
            formats=signature_formats(config, self._verifier),
            settings=AuditSettings(
                limits=limits.graph_limits(),
                max_signatures_per_node=limits.max_signatures_per_node,
                concurrency=limits.concurrency_per_registry,
                concurrent_targets=limits.concurrent_targets,
                target_deadline=limits.target_deadline_seconds,
                max_nodes_per_target=limits.max_nodes_per_target,
                max_bytes_per_target=limits.max_bytes_per_target,
                verify_children_exist=config.verify_children_exist,
            ),
            progress=progress,
            finished=finished,
            cache=self._verdict_cache(),
            waivers=tuple(w.to_waiver() for w in config.waivers),
        )

    def _verdict_cache(self) -> VerdictCache:
        if self.store is None:
            return MemoryVerdictCache()
        return StoreVerdictCache(self.store, self.trust_hash)

    def refresh_trust(self) -> bool:
        """Re-read the trust files if any changed since the last run (the daemon asks before
        each run): a new verifier, the formats rebuilt on it, and a verdict cache keyed by the
        new hash. True if changed. A trust configuration broken by the edit raises
        ConfigError and the old one stays."""
        current = trust_hash(self.config, self.options)
        if current == self.trust_hash:
            return False
        verifier = build_verifier(self.config, self.options)
        old, self._verifier = self._verifier, verifier
        self.trust_hash = current
        self.auditor.formats = signature_formats(self.config, verifier)
        self.auditor.cache = self._verdict_cache()
        if old is not None:
            old.close()
        if self.store is not None:
            # Stale verdicts are unreachable under the new hash anyway: dropping them is tidying.
            with suppress(StateError):
                self.store.forget_verdicts_except(current)
        return True

    @property
    def verifier(self) -> Verifier | None:
        """The run's verifier; None when no trust configuration exists anywhere."""
        return self._verifier

    def run_info(self) -> RunInfo:
        """The version, config file and trust files of this run, hashed now (reports say it)."""
        policy, store = _trust_paths(self.config, self.options)
        named: list[tuple[str, Path]] = []
        if self._verifier is not None:
            policy = policy or notation_policy_path()
            root = self._verifier.trust_store.root
            store = store or root
            refs = {
                ref
                for statement in self._verifier.policy.statements
                if not statement.is_skip
                for ref in statement.trust_stores
            }
            named = [
                (str(ref), root / "x509" / ref.type.value / ref.name)
                for ref in sorted(refs, key=str)
            ]
        cosign: list[Path] = []
        if self.config.cosign is not None:
            if self.config.cosign.trusted_root is not None:
                cosign.append(self.config.cosign.trusted_root)
            cosign.extend(path for rule in self.config.cosign.rules for path in rule.key_paths)
        return run_info(
            config=self.options.config_path,
            config_hashed=not self.options.config_holds_secrets,
            trust_policy=policy,
            trust_store=store,
            named_stores=named,
            cosign_files=cosign,
        )

    async def __aenter__(self) -> App:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for layout in self._layouts.values():
            layout.close()
        if self._verifier is not None:
            self._verifier.close()
        await self._stack.__aexit__(exc_type, exc, tb)

    def _http_client(self, registry: RegistryConfig | None) -> httpx.AsyncClient:
        """One shared AsyncClient, plus one per distinct TLS setting (ca_file / insecure)."""
        insecure = bool(registry and registry.insecure)
        ca_file = str(registry.ca_file) if registry and registry.ca_file else None
        key = (insecure, ca_file)
        if key not in self._http:
            verify: bool | ssl.SSLContext = (
                False if insecure else _ca_context(Path(ca_file)) if ca_file else True
            )
            hook = self._on_response

            async def observe(response: httpx.Response) -> None:
                if hook is not None:
                    hook(response)

            client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.config.limits.timeout_seconds),
                verify=verify,
                transport=self._transport,
                # Redirects are followed by hand (registry/transport.py, registry/auth.py)
                # so that credentials never follow one to another origin.
                follow_redirects=False,
                trust_env=False,
                event_hooks={"response": [observe]} if hook is not None else None,
            )
            self._stack.push_async_callback(client.aclose)
            self._http[key] = client
        return self._http[key]

    async def registry(self, host: str) -> ManifestSource:
        """The source for one registry host, made once (the SourceFactory of targets.py);
        behind the state store's content cache when there is a store."""
        if host not in self._sources:
            client = await self.registry_client(host)
            self._sources[host] = (
                CachingSource(client, self.store, registry_source(host))
                if self.store is not None
                else client
            )
        return self._sources[host]

    async def registry_client(self, host: str) -> RegistryClient:
        """The registry client itself, made once per host."""
        if host not in self._registries:
            registry = self.config.registry_for(host)
            self._registries[host] = RegistryClient(
                host,
                self._http_client(registry),
                auth=await _auth_for(registry, host),
                insecure=bool(registry and registry.insecure),
                scheme=registry.scheme if registry else None,
                max_manifest_bytes=self.config.limits.max_manifest_bytes,
                max_concurrency=self.config.limits.concurrency_per_registry,
                max_referrers=self.config.limits.max_referrers,
                max_repositories=self.config.limits.max_repositories,
                retry=self._retry,
                request_deadline=self.config.limits.request_deadline_seconds,
                health=RegistryHealth(host, down_after=self.config.limits.registry_down_after),
            )
        return self._registries[host]

    def layout(self, path: Path) -> OciLayoutSource:
        """The source for one layout, opened once (a tar is extracted once)."""
        key = path.resolve()
        if key not in self._layouts:
            self._layouts[key] = open_layout(
                path, max_manifest_bytes=self.config.limits.max_manifest_bytes
            )
        return self._layouts[key]

    def _expander(self) -> Expander:
        """Expanders of one run share its notes (what the expansion left out)."""
        return Expander(self, self.config, self.options.layout_scope, self._notes)

    async def targets(self, references: Sequence[str]) -> list[AuditTarget | TargetResult]:
        """Pinned targets for the given references, or for the config when there are none."""
        expander = self._expander()
        if references:
            return await expander.from_arguments(references)
        return await expander.from_config()

    async def registry_targets(self, registry: RegistryConfig) -> list[AuditTarget | TargetResult]:
        """Pinned targets of one configured registry (the daemon schedules registries apart)."""
        return await self._expander().from_registry(registry)

    async def layout_targets(self, layout: LayoutConfig) -> list[AuditTarget | TargetResult]:
        return await self._expander().from_layout(layout)

    async def audit(self, references: Sequence[str] = ()) -> AuditReport:
        """One run of ``audit now``: the given references, or the whole config."""
        what = ", ".join(references) or "the configured registries and layouts"
        return await self.run(lambda: self.targets(references), what)

    async def audit_into(self, references: Sequence[str], sink: ReportSink) -> None:
        """``audit`` handing each target to ``sink`` as it is decided, holding none of them:
        how ``audit now`` streams its JSON and SARIF reports."""
        what = ", ".join(references) or "the configured registries and layouts"
        await self.run_into(lambda: self.targets(references), what, sink)

    async def run(
        self, targets: Callable[[], Awaitable[list[AuditTarget | TargetResult]]], what: str
    ) -> AuditReport:
        """One run over the targets ``targets()`` lists (the CLI's and the daemon's runs),
        collected into one report (``generated_at`` is its end)."""
        collected = _Collector()
        await self.run_into(targets, what, collected)
        return collected.report()

    async def run_into(
        self,
        targets: Callable[[], Awaitable[list[AuditTarget | TargetResult]]],
        what: str,
        sink: ReportSink,
    ) -> None:
        """One run over the targets ``targets()`` lists, each result to ``sink`` in order.

        Bounded by ``limits.run_deadline_seconds`` when set, target listing included; a
        registry marked down in an earlier run is asked again (down lasts one run). Each
        registry answer is fetched once per run (auditor/registry/runcache.py): the cache
        lives exactly as long as this call.
        """
        for client in self._registries.values():
            client.transport.health.new_run()
        self._notes = []
        cache = RunCache(self.config.limits.run_cache_bytes)
        try:
            with run_cache(cache):
                await self._run(targets, what, sink)
        finally:
            self._flush_caches()
            await cache.close()

    async def _run(
        self,
        targets: Callable[[], Awaitable[list[AuditTarget | TargetResult]]],
        what: str,
        sink: ReportSink,
    ) -> None:
        run_deadline = self.config.limits.run_deadline_seconds
        deadline_at = (
            None if run_deadline is None else asyncio.get_running_loop().time() + run_deadline
        )
        try:
            async with asyncio.timeout_at(deadline_at):
                listed = await targets()
        except TimeoutError:
            failed = error_target(
                what,
                f"{RUN_DEADLINE_PASSED} while listing targets",
                category=ErrorCategory.TIMEOUT,
            )
            sink.begin(self._start())
            sink.add(failed)
            return
        sink.begin(self._start())
        async for result in self.auditor.stream(listed, deadline_at=deadline_at):
            self._flush_caches()
            sink.add(result)

    def _flush_caches(self) -> None:
        """Write the content and verdict caches staged so far, one transaction per target
        decided (auditor/state/store.py): only checked content and made verdicts are staged,
        so a crash loses entries, never caches one that was not verified."""
        if self.store is not None:
            with suppress(StateError):
                self.store.flush_caches()

    def _start(self) -> ReportStart:
        return ReportStart(datetime.now(UTC), self.run_info(), tuple(self._notes))


class _Collector:
    """The sink behind ``App.run``: every target kept, for callers that need the whole report
    (the table, the page, the state store, the daemon)."""

    def __init__(self) -> None:
        self.start: ReportStart | None = None
        self.targets: list[TargetResult] = []

    def begin(self, start: ReportStart) -> None:
        self.start = start

    def add(self, target: TargetResult) -> None:
        self.targets.append(target)

    def report(self) -> AuditReport:
        start = self.start or ReportStart(datetime.now(UTC))
        return AuditReport(
            generated_at=datetime.now(UTC),
            targets=tuple(self.targets),
            info=start.info,
            notes=start.notes,
        )


def _daemon_secrets(config: AuditorConfig) -> list[str]:
    """Every ``*_env`` the daemon reads at start-up must be set (one line per missing one)."""
    problems: list[str] = []
    server = config.server
    for key, name in (
        ("token_env", server.token_env),
        ("events_token_env", server.events_token_env),
    ):
        if name is not None and not environment().get(name):
            problems.append(f"server.{key}: environment variable {name} is not set")
    try:
        build_sinks(config.alerts, environment())
    except ConfigError as exc:
        problems.append(str(exc))
    return problems


def check_configuration(
    config_path: Path | None, trust_policy: Path | None, trust_store: Path | None
) -> list[str]:
    """Every problem in config, trust policy and trust store, one line each with its location.

    One problem never hides another: a config with errors still has its ``trust:`` section
    checked, and a missing trust store does not stop the trust policy from being read.
    """
    problems: list[str] = []
    source = config_path or Path(DEFAULT_CONFIG_NAME)
    try:
        config, loaded = load_config(config_path)
        source = loaded or source
    except ConfigError as exc:
        problems.extend(str(exc).splitlines())
        config = AuditorConfig(
            trust=trust_section(config_path), cosign=cosign_section(config_path)
        )
    if config.cosign is not None:
        # Keys parse, regexps compile, the trusted root loads (read locally, never fetched).
        from auditor.cosign.material import load_cosign_trust

        try:
            load_cosign_trust(config.cosign, f"{source}: cosign")
        except ConfigError as exc:
            problems.append(str(exc))
    for i, registry in enumerate(config.registries):
        if registry.ca_file is not None:
            try:
                _ca_context(registry.ca_file)
            except ConfigError as exc:
                problems.append(f"{source}: registries[{i}].{exc}")
        if registry.auth is not None:
            try:
                registry.auth.resolve(environment(), f"registries[{i}].auth")
            except ConfigError as exc:
                problems.append(str(exc))
    problems.extend(_daemon_secrets(config))
    options = AppOptions(trust_policy=trust_policy, trust_store=trust_store)
    policy, store = _trust_paths(config, options)
    if store is not None and not store.is_dir():
        where = "--trust-store" if trust_store is not None else f"{source}: trust.store"
        problems.append(f"{where}: trust store directory {store} does not exist")
        if policy is not None:
            try:
                load_trust_policy(policy)
            except ConfigError as exc:
                problems.extend(str(exc).splitlines())
        return problems
    try:
        verifier = build_verifier(config, options)
    except AuditorError as exc:
        problems.extend(str(exc).splitlines())
    else:
        if verifier is not None:
            problems.extend(trust_store_problems(verifier)[0])
            verifier.close()
    return problems


def configuration_warnings(
    config_path: Path | None, trust_policy: Path | None, trust_store: Path | None
) -> list[str]:
    """What is valid but probably not meant: ``config check`` says it instead of "OK".

    An empty config file; no trust policy anywhere (every signature would be reported
    ``unverified``), naming where it looked; a repository glob no repository name can match;
    waivers that have already expired.
    """
    warnings: list[str] = []
    path = config_path or Path(DEFAULT_CONFIG_NAME)
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else None
        config, _ = load_config(config_path)
    except (OSError, ConfigError):
        return warnings  # check_configuration reports why
    if text is not None and not text.strip():
        warnings.append(f"{path}: the file is empty: nothing to audit unless TARGETs are given")
    policy, store = _trust_paths(config, AppOptions(trust_policy, trust_store))
    if policy is None and store is None and not _notation_policy_present():
        directory = notation_config_dir()
        warnings.append(
            "no trust policy: looked for --trust-policy, trust.policy in the config, and "
            f"{directory}/trustpolicy.oci.json or trustpolicy.json (notation's); signatures "
            "will be reported unverified, never signed. Give one with --trust-policy FILE or "
            "trust.policy (notation's trustpolicy.json format)"
        )
    else:
        try:
            verifier = build_verifier(config, AppOptions(trust_policy, trust_store))
        except AuditorError:
            verifier = None  # check_configuration reports why
        if verifier is not None:
            warnings.extend(trust_store_problems(verifier)[1])
            verifier.close()
    for i, registry in enumerate(config.registries):
        for j, pattern in enumerate(registry.repositories):
            if is_glob(pattern) and not glob_can_match_a_repository(pattern):
                warnings.append(
                    f"{path}: registries[{i}].repositories[{j}]: glob {pattern!r} can match "
                    "no repository (names are lowercase letters, digits and . _ - /): nothing "
                    "would be audited for it"
                )
    now = datetime.now(UTC)
    for i, waiver in enumerate(config.waivers):
        if waiver.expires_at() <= now:
            warnings.append(
                f"{path}: waivers[{i}] ({waiver.image}) expired "
                f"{waiver.expires_at().isoformat()}: its findings count again"
            )
    return warnings
