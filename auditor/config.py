"""The config file: pydantic models, and loading that reports every problem at once with its path.

Secrets are never written in the file itself in clear unless the user insists: ``*_env`` keys name
environment variables, which are read at load time and held as ``SecretStr``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from auditor.coverage import AttestationPolicy, CoverageRule, FindingKind, Require
from auditor.errors import ConfigError
from auditor.model import Platform
from auditor.notary.trustpolicy import layout_scope_problem
from auditor.oci.graph import GraphLimits
from auditor.oci.reference import is_loopback
from auditor.waivers import Waiver

DEFAULT_CONFIG_NAME = "auditor.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagFilter(_Strict):
    """Which tags of a repository to audit: globs, then at most ``limit`` of them: past it, the
    newest are kept (semantic-version order, then name; see targets.choose_tags) and the report
    says how many were left out."""

    include: list[str] = Field(default_factory=lambda: ["*"])
    exclude: list[str] = Field(default_factory=list)
    limit: int = Field(default=50, ge=1, le=10_000)


class AuthConfig(_Strict):
    """Registry credentials. Exactly one way: username + password(_env), an OAuth2 identity
    (refresh) token as ``docker login`` stores for some registries, or a docker config.json."""

    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = None
    identity_token: SecretStr | None = None
    identity_token_env: str | None = None
    docker_config: Path | None = None

    @model_validator(mode="after")
    def _one_method(self) -> AuthConfig:
        has_password = self.password is not None or self.password_env is not None
        has_token = self.identity_token is not None or self.identity_token_env is not None
        methods = [has_password or self.username is not None, has_token, self.docker_config]
        if sum(bool(m) for m in methods) > 1:
            raise ValueError("choose one of username/password, identity_token, docker_config")
        if has_password and not self.username:
            raise ValueError("password needs a username")
        if self.username and not has_password:
            raise ValueError("username needs password or password_env")
        if self.password is not None and self.password_env is not None:
            raise ValueError("give password or password_env, not both")
        if self.identity_token is not None and self.identity_token_env is not None:
            raise ValueError("give identity_token or identity_token_env, not both")
        return self

    def resolve(self, env: Mapping[str, str], where: str) -> ResolvedAuth:
        """Read ``*_env`` variables now, so a missing one is a config error, not a 401 later."""

        def read(name: str, key: str) -> SecretStr:
            value = env.get(name)
            if not value:
                raise ConfigError(f"{where}.{key}: environment variable {name} is not set")
            return SecretStr(value)

        password = self.password
        if self.password_env:
            password = read(self.password_env, "password_env")
        token = self.identity_token
        if self.identity_token_env:
            token = read(self.identity_token_env, "identity_token_env")
        return ResolvedAuth(
            username=self.username,
            password=password,
            identity_token=token,
            docker_config=self.docker_config,
        )


class ResolvedAuth(_Strict):
    username: str | None = None
    password: SecretStr | None = None
    identity_token: SecretStr | None = None
    docker_config: Path | None = None


class RegistryConfig(_Strict):
    url: str
    repositories: list[str] = Field(min_length=1)
    tags: TagFilter = Field(default_factory=TagFilter)
    auth: AuthConfig | None = None
    insecure: bool = False
    ca_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value if "://" in value else f"https://{value}")
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError:
            raise ValueError("is not an http(s) registry URL") from None
        if "@" in parts.netloc:
            # Never echo the value: it holds a password.
            raise ValueError(
                "must not carry credentials (user:password@); put them under this "
                "registry's auth: (username + password_env, identity_token_env or docker_config)"
            )
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) registry URL")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{value!r}: give the registry host only, without a path")
        return f"{parts.scheme}://{parts.netloc}"

    @model_validator(mode="after")
    def _plain_http_needs_insecure(self) -> RegistryConfig:
        parts = urlsplit(self.url)
        if parts.scheme == "http" and not is_loopback(parts.netloc) and not self.insecure:
            raise ValueError(f"plain http to {parts.netloc} needs insecure: true")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme


class LayoutConfig(_Strict):
    """An OCI image layout directory (or .tar) on disk to audit, as a second source."""

    path: Path
    tags: TagFilter = Field(default_factory=TagFilter)
    # The trust policy scope the layout is verified under, as ``notation verify --oci-layout
    # --scope local/NAME``; without it only a ``*`` statement applies to the layout.
    scope: str | None = None

    @field_validator("scope")
    @classmethod
    def _check_scope(cls, value: str | None) -> str | None:
        if value is not None and (problem := layout_scope_problem(value)) is not None:
            raise ValueError(problem)
        return value


class TrustConfig(_Strict):
    """Notation trust policy and trust store; unset means notation's own config directory."""

    policy: Path | None = None
    store: Path | None = None
    revocation_cache: Path | None = None
    revocation_timeout_seconds: float = Field(default=5.0, gt=0, le=60)


def _check_platform(text: str) -> str:
    if Platform.parse(text).is_unknown:
        raise ValueError("unknown/unknown is an attestation, not a platform")
    return text


PlatformText = Annotated[str, AfterValidator(_check_platform)]


class CoverageRuleConfig(_Strict):
    """One ``coverage:`` rule; ``to_rule`` gives the pure policy's object."""

    scope: str = Field(min_length=1)
    require: Require = Require.BOTH
    platforms: list[PlatformText] | None = Field(default=None, min_length=1)
    attestations: AttestationPolicy = AttestationPolicy.IGNORE
    name: str | None = None
    formats: list[Literal["notation", "cosign"]] | None = Field(default=None, min_length=1)

    def to_rule(self) -> CoverageRule:
        platforms = tuple(Platform.parse(p) for p in self.platforms) if self.platforms else None
        formats = tuple(dict.fromkeys(self.formats)) if self.formats else None
        return CoverageRule(
            self.scope.strip(), self.require, platforms, self.attestations, self.name, formats
        )


def _check_waived_kind(text: str) -> str:
    kinds = [k.value for k in FindingKind if k is not FindingKind.UNCHECKED]
    if text not in kinds:
        raise ValueError(f"{text!r} is not a finding kind a waiver can accept ({', '.join(kinds)})")
    return text


WaivedKind = Annotated[str, AfterValidator(_check_waived_kind)]


class WaiverConfig(_Strict):
    """One ``waivers:`` entry: a known exception with an owner, a reason and an end date.

    ``reason``, ``owner`` and ``expires`` are required: an exception nobody owns, explains or
    revisits is how a gap becomes permanent.
    """

    image: str = Field(min_length=1)
    platforms: list[PlatformText] | None = Field(default=None, min_length=1)
    findings: list[WaivedKind] | None = Field(default=None, min_length=1)
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: datetime | date

    @field_validator("expires", mode="before")
    @classmethod
    def _date_stays_a_date(cls, value: Any) -> Any:
        """``"2026-12-31"`` (quoted in YAML) is a date lasting to its end, not midnight."""
        if isinstance(value, str) and len(value.strip()) == 10:
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                return value
        return value

    @field_validator("reason", "owner")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    def expires_at(self) -> datetime:
        """The first instant the waiver no longer applies (a date lasts to its end, UTC)."""
        if isinstance(self.expires, datetime):
            moment = self.expires
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return datetime.combine(self.expires, time(), tzinfo=UTC) + timedelta(days=1)

    def to_waiver(self) -> Waiver:
        return Waiver(
            image=self.image.strip(),
            reason=self.reason,
            owner=self.owner,
            expires=self.expires_at(),
            platforms=tuple(Platform.parse(p) for p in self.platforms) if self.platforms else None,
            findings=frozenset(self.findings) if self.findings else None,
        )


class KeylessConfig(_Strict):
    """A keyless (Fulcio) identity: SAN and OIDC issuer, each exact or regexp (as cosign's
    ``--certificate-identity(-regexp)`` and ``--certificate-oidc-issuer(-regexp)``), plus
    optional exact GitHub workflow claims."""

    identity: str | None = Field(default=None, min_length=1)
    identity_regexp: str | None = Field(default=None, min_length=1)
    issuer: str | None = Field(default=None, min_length=1)
    issuer_regexp: str | None = Field(default=None, min_length=1)
    github_workflow_trigger: str | None = None
    github_workflow_sha: str | None = None
    github_workflow_name: str | None = None
    github_workflow_repository: str | None = None
    github_workflow_ref: str | None = None

    @model_validator(mode="after")
    def _one_each(self) -> KeylessConfig:
        for name in ("identity", "issuer"):
            given = [getattr(self, name), getattr(self, f"{name}_regexp")]
            if sum(v is not None for v in given) != 1:
                raise ValueError(f"give exactly one of {name} or {name}_regexp")
        for name in ("identity_regexp", "issuer_regexp"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{name} {pattern!r} does not compile: {exc}") from None
        return self


class CosignRuleConfig(_Strict):
    """One ``cosign.rules`` entry: scopes, and keyless or key (never both)."""

    name: str | None = None
    scopes: list[str] = Field(min_length=1)
    keyless: KeylessConfig | None = None
    key: Path | list[Path] | None = None
    ignore_tlog: bool = False

    @model_validator(mode="after")
    def _keyless_or_key(self) -> CosignRuleConfig:
        if (self.keyless is None) == (self.key is None):
            raise ValueError("give keyless or key, exactly one")
        if isinstance(self.key, list) and not self.key:
            raise ValueError("key: give at least one public key file")
        return self

    @property
    def key_paths(self) -> list[Path]:
        if self.key is None:
            return []
        return list(self.key) if isinstance(self.key, list) else [self.key]


class CosignConfig(_Strict):
    """cosign / sigstore trust; ``trusted_root`` defaults to the public-good root shipped in
    the sigstore package (never fetched during an audit)."""

    trusted_root: Path | None = None
    rules: list[CosignRuleConfig] = Field(min_length=1)


class LimitsConfig(_Strict):
    """Bounds on every request, target and run (the README's security section lists them).

    The defaults fit real images (a multi-platform index with its attestations and
    signatures is tens of nodes and a few MB) with a wide margin, and stop a hostile
    registry long before it costs hours or gigabytes.
    """

    max_manifest_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_envelope_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_depth: int = Field(default=8, ge=1, le=32)
    max_children: int = Field(default=1000, ge=1, le=100_000)
    max_referrers: int = Field(default=1000, ge=1, le=100_000)
    max_signatures_per_node: int = Field(default=100, ge=1, le=10_000)
    concurrency_per_registry: int = Field(default=8, ge=1, le=128)
    # Targets audited at once; their requests still share concurrency_per_registry.
    concurrent_targets: int = Field(default=8, ge=1, le=256)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Whole exchange (headers and body) of one HTTP request, whatever the per-read timeout.
    request_deadline_seconds: float = Field(default=120.0, gt=0, le=3600)
    # One target: crawl and verification together.
    target_deadline_seconds: float = Field(default=600.0, gt=0, le=86_400)
    # The whole run (target expansion included); none by default.
    run_deadline_seconds: float | None = Field(default=None, gt=0, le=7 * 86_400)
    retry_attempts: int = Field(default=4, ge=1, le=20)
    retry_after_max_seconds: float = Field(default=30.0, ge=0, le=3600)
    retry_budget_seconds: float = Field(default=60.0, ge=0, le=3600)
    # Consecutive failed requests after which a registry is down for the rest of the run.
    registry_down_after: int = Field(default=5, ge=1, le=10_000)
    max_nodes_per_target: int = Field(default=50_000, ge=1, le=10_000_000)
    max_bytes_per_target: int = Field(
        default=256 * 1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024 * 1024
    )
    # Repositories one catalog listing may hold (a glob in the config or a HOST/* target).
    max_repositories: int = Field(default=10_000, ge=1, le=1_000_000)
    # OCSP / CRL requests per run (URLs taken from signed material).
    max_revocation_fetches: int = Field(default=200, ge=0, le=100_000)
    # Registry answers kept for the rest of a run so each is fetched once per run
    # (auditor/registry/runcache.py); past it the least recently used are dropped. 0: none kept.
    run_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0, le=16 * 1024 * 1024 * 1024)

    def graph_limits(self) -> GraphLimits:
        """The bounds the crawler and the graph builder enforce."""
        return GraphLimits(self.max_depth, self.max_children, self.max_referrers)


# The one home of every limit's default value: the config model's own defaults. Lower layers
# that offer a default for direct callers (tests, tools) take it from here; the composition
# root passes the configured values in.
DEFAULT_LIMITS = LimitsConfig()


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int | float, *, zero: bool = False) -> float:
    """``15m``, ``1h``, ``5s``, ``1d`` (or a bare number of seconds) -> seconds; positive
    unless ``zero`` allows 0."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        value = str(text).strip()
        unit = value[-1:].lower()
        number = value[:-1] if unit in _DURATION_UNITS else value
        try:
            seconds = float(number) * _DURATION_UNITS.get(unit, 1)
        except ValueError:
            raise ValueError(f"{text!r} is not a duration such as 30s, 15m, 1h or 1d") from None
    if not math.isfinite(seconds) or not (seconds >= 0 if zero else seconds > 0):
        raise ValueError(f"{text!r}: a duration must be {'0 or more' if zero else 'positive'}")
    return seconds


class ScheduleConfig(_Strict):
    """When the daemon re-audits each registry and layout: every ``interval`` or on ``cron``."""

    interval: str | None = None
    cron: str | None = None
    jitter: str | None = None

    @field_validator("interval")
    @classmethod
    def _check_interval(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("jitter")
    @classmethod
    def _check_jitter(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value, zero=True)
        return value

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            if len(value.split()) != 5:
                raise ValueError(f"{value!r} is not a five-field cron expression")
            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_of(self) -> ScheduleConfig:
        if self.interval is not None and self.cron is not None:
            raise ValueError("give interval or cron, not both")
        return self

    @property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval or "15m")

    @property
    def jitter_seconds(self) -> float:
        """Default: a tenth of the interval, at most a minute, so replicas and registries
        spread out without drifting far from the schedule."""
        if self.jitter is not None:
            return parse_duration(self.jitter, zero=True)
        return min(60.0, self.interval_seconds / 10) if self.cron is None else 0.0


class ServerConfig(_Strict):
    """The daemon's one HTTP listener; ``/audit`` beyond loopback needs the bearer token."""

    listen: str = "127.0.0.1:9464"
    token_env: str | None = None
    grace_seconds: float = Field(default=30.0, gt=0, le=3600)
    # The read-only pages (/ and /targets/<id>) follow /audit's rule unless this opens them.
    public_read: bool = False
    # POST /events (registry notifications): Authorization: Bearer <token> or Harbor's auth
    # header with the token as its value. Without it, /events answers 403.
    events_token_env: str | None = None
    events_debounce: str = "1s"
    public_url: HttpUrl | None = None

    @field_validator("events_debounce")
    @classmethod
    def _check_debounce(cls, value: str) -> str:
        if parse_duration(value) > 3600:
            raise ValueError(f"{value!r}: at most 1h")
        return value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is not HOST:PORT")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class StateConfig(_Strict):
    """Where runs, latest results, node history and content caches are kept (SQLite)."""

    path: Path = Path("auditor.db")
    keep_runs: int = Field(default=500, ge=1, le=1_000_000)


class MetricsConfig(_Strict):
    """Per-node series can be capped or turned off; what the cap drops is itself reported."""

    per_node: bool = True
    max_series: int = Field(default=50_000, ge=0, le=10_000_000)


class SlackSinkConfig(_Strict):
    """A Slack incoming webhook; its URL is a secret (it grants posting), so from env only."""

    webhook_url_env: str


class WebhookSinkConfig(_Strict):
    """A generic JSON webhook, HMAC-signed when ``secret_env`` is set."""

    url: HttpUrl | None = None
    url_env: str | None = None
    secret_env: str | None = None
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @model_validator(mode="after")
    def _one_url(self) -> WebhookSinkConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give url or url_env (one of them)")
        if self.url is not None and (self.url.username or self.url.password):
            raise ValueError("url must not carry credentials: use url_env")
        return self


class AlertsConfig(_Strict):
    """Where alerts go and when: transitions only, never repeats (see daemon/alerts/diff.py)."""

    slack: SlackSinkConfig | None = None
    webhooks: list[WebhookSinkConfig] = Field(default_factory=list)
    expiry_warning: str = "14d"
    remind_every: str | None = None
    error_after: str = "1h"

    @field_validator("expiry_warning", "remind_every", "error_after")
    @classmethod
    def _check_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class AuditorConfig(_Strict):
    registries: list[RegistryConfig] = Field(default_factory=list)
    layouts: list[LayoutConfig] = Field(default_factory=list)
    trust: TrustConfig | None = None
    cosign: CosignConfig | None = None
    coverage: list[CoverageRuleConfig] = Field(default_factory=list)
    waivers: list[WaiverConfig] = Field(default_factory=list)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    # Fetch every image manifest an index lists, to check the registry has it and its bytes
    # match the index's descriptor; off: such a leaf is judged on its descriptor alone, which
    # is what its signatures cover (auditor/crawl.py).
    verify_children_exist: bool = False
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    state: StateConfig | None = None
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    def registry_for(self, host: str) -> RegistryConfig | None:
        for registry in self.registries:
            if registry.host == host:
                return registry
        return None

    def layout_for(self, path: Path) -> LayoutConfig | None:
        """The configured layout at ``path`` (compared resolved), if any."""
        wanted = path.resolve()
        for layout in self.layouts:
            if layout.path.resolve() == wanted:
                return layout
        return None


# The default of ``verify_children_exist`` for direct callers of the crawl (tests, tools).
DEFAULT_VERIFY_CHILDREN: bool = AuditorConfig().verify_children_exist


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def format_validation_error(exc: ValidationError, source: str) -> list[str]:
    """One line per problem: ``FILE: registries[0].tags.limit: message``."""
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {_location(loc)}: {message}")
    return lines


def parse_config(data: Any, source: str) -> AuditorConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return AuditorConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(format_validation_error(exc, source))) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping: YAML says keys are
    unique, and PyYAML would silently keep the last one (a second ``registries:`` hiding the
    first is a config nobody meant)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {first + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str) -> Any:
    """YAML as the config is read: safe types only, duplicate keys refused."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def load_config(path: Path | None, *, cwd: Path | None = None) -> tuple[AuditorConfig, Path | None]:
    """Load ``path``, or ``./auditor.yaml`` when present, or an empty config.

    Returns the config and the file it came from (None when defaulted).
    """
    if path is None:
        candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
        if not candidate.is_file():
            return AuditorConfig(), None
        path = candidate
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from None
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    config = parse_config(data, str(path))
    return _relative_to(config, path.parent), path


def trust_section(path: Path | None, *, cwd: Path | None = None) -> TrustConfig | None:
    """The ``trust:`` section of a config file on its own, paths resolved like load_config.

    ``config check`` uses it to go on checking the trust policy and store of a config that has
    problems elsewhere. None when the file cannot be read or the section itself is invalid
    (load_config already reports why).
    """
    path = path or (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        trust = TrustConfig.model_validate(data["trust"]) if isinstance(data, dict) else None
    except (OSError, yaml.YAMLError, ValidationError, KeyError):
        return None
    return _relative_to(AuditorConfig(trust=trust), path.parent).trust


def cosign_section(path: Path | None, *, cwd: Path | None = None) -> CosignConfig | None:
    """The ``cosign:`` section on its own, like :func:`trust_section` (None when unreadable or
    itself invalid: load_config reports why)."""
    path = path or (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        cosign = CosignConfig.model_validate(data["cosign"]) if isinstance(data, dict) else None
    except (OSError, yaml.YAMLError, ValidationError, KeyError):
        return None
    return _relative_to(AuditorConfig(cosign=cosign), path.parent).cosign


def _relative_to(config: AuditorConfig, base: Path) -> AuditorConfig:
    """Paths in a config file are relative to the file (``~`` is the home directory), not to
    wherever the CLI runs."""

    def fix(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = p.expanduser()
        return p if p.is_absolute() else base / p

    trust = config.trust
    if trust is not None:
        trust = trust.model_copy(
            update={
                "policy": fix(trust.policy),
                "store": fix(trust.store),
                "revocation_cache": fix(trust.revocation_cache),
            }
        )
    cosign = config.cosign
    if cosign is not None:
        rules = [
            rule.model_copy(
                update={
                    "key": [fix(p) for p in rule.key]
                    if isinstance(rule.key, list)
                    else fix(rule.key)
                }
            )
            for rule in cosign.rules
        ]
        cosign = cosign.model_copy(
            update={"trusted_root": fix(cosign.trusted_root), "rules": rules}
        )
    layouts = [lay.model_copy(update={"path": fix(lay.path)}) for lay in config.layouts]
    state = config.state
    if state is not None:
        state = state.model_copy(update={"path": fix(state.path)})
    registries = []
    for reg in config.registries:
        update: dict[str, Any] = {"ca_file": fix(reg.ca_file)}
        if reg.auth is not None and reg.auth.docker_config is not None:
            update["auth"] = reg.auth.model_copy(
                update={"docker_config": fix(reg.auth.docker_config)}
            )
        registries.append(reg.model_copy(update=update))
    return config.model_copy(
        update={
            "trust": trust,
            "cosign": cosign,
            "layouts": layouts,
            "registries": registries,
            "state": state,
        }
    )


def environment() -> Mapping[str, str]:
    """The process environment; a seam so tests pass their own mapping."""
    return os.environ
