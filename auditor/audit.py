"""One audit run: targets in, report out.

The orchestrator receives its collaborators (sources, signature formats, coverage rules) and
owns no I/O of its own. It knows signatures only through the registered formats
(:mod:`auditor.signatures.interface`): they decide which referrers are signatures and judge
each one. A failure on one target becomes that target's ``error`` verdict; the run goes on.

Every target is bounded: in time by a per-target deadline (and the run's deadline, when one is
set), in size by a :class:`~auditor.budget.TargetBudget` on the nodes and bytes it may cost.
Whatever passes a bound is that target's ``error`` with the reason. Several targets run at once
(``limits.concurrent_targets``; each registry's request limit is shared between them) and
results are handed out in the targets' order (:meth:`Auditor.stream`), so a target that hangs
or is cut off never takes the results of the targets before it with it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from auditor.budget import BudgetedSource, TargetBudget
from auditor.config import DEFAULT_LIMITS, DEFAULT_VERIFY_CHILDREN
from auditor.coverage import CoverageRule, Require, error_target, evaluate_target, select_rule
from auditor.crawl import crawl
from auditor.errors import AuditorError, ErrorCategory
from auditor.model import (
    AuditReport,
    Descriptor,
    GraphNode,
    Platform,
    ReportStart,
    SignatureResult,
    SignatureStatus,
    TargetResult,
    TargetStatus,
)
from auditor.oci.graph import GraphLimits, build_graph
from auditor.oci.reference import Reference
from auditor.signatures.interface import SignatureFormat, claiming_format
from auditor.source import ManifestSource
from auditor.verdicts import MemoryVerdictCache, VerdictCache, verdict_key
from auditor.waivers import Waiver, apply_waivers

RUN_DEADLINE_PASSED = "not audited: the run deadline passed (limits.run_deadline_seconds)"


class ReportSink(Protocol):
    """Where a run's results go, in order: ``begin`` once the targets are listed (what the
    report says first), then ``add`` per target as it is decided. The streaming JSON and SARIF
    writers are sinks; so is the collector behind ``App.run``."""

    def begin(self, start: ReportStart) -> None: ...

    def add(self, target: TargetResult) -> None: ...


@dataclass(frozen=True)
class AuditTarget:
    """One pinned thing to audit: a tag or digest in one repository of one source.

    ``policy_scope`` is the trust policy scope an OCI layout is verified under (notation's
    ``verify --oci-layout --scope local/NAME``, or a config layout's ``scope:``); without it
    a target's scope is its ``host/repository`` (``oci-layout:PATH`` for a layout, which only
    a ``*`` statement matches).
    """

    reference: Reference
    source: ManifestSource
    repository: str
    policy_scope: str | None = None

    @property
    def scope(self) -> str:
        """What trust policy statements, cosign rules and the verdict cache key go by."""
        return self.policy_scope or self.reference.scope

    @property
    def scopes(self) -> tuple[str, ...]:
        """Every name a coverage rule may match: the policy scope, then the reference's."""
        if self.policy_scope is None:
            return (self.reference.scope,)
        return (self.policy_scope, self.reference.scope)

    @property
    def ref(self) -> str:
        ref = self.reference.ref
        if ref is None:
            raise AuditorError(f"{self.reference}: no tag or digest to audit")
        return ref


@dataclass(frozen=True)
class AuditSettings:
    """Bounds of one audit; the defaults live in the config model and come in via app.py."""

    limits: GraphLimits = field(default_factory=DEFAULT_LIMITS.graph_limits)
    max_signatures_per_node: int = DEFAULT_LIMITS.max_signatures_per_node
    concurrency: int = DEFAULT_LIMITS.concurrency_per_registry
    concurrent_targets: int = DEFAULT_LIMITS.concurrent_targets
    target_deadline: float = DEFAULT_LIMITS.target_deadline_seconds
    max_nodes_per_target: int = DEFAULT_LIMITS.max_nodes_per_target
    max_bytes_per_target: int = DEFAULT_LIMITS.max_bytes_per_target
    verify_children_exist: bool = DEFAULT_VERIFY_CHILDREN


@dataclass
class Auditor:
    """Runs targets through crawl -> graph -> verification -> coverage.

    ``require`` (the ``--require`` flag) overrides every rule's requirement. ``formats`` are
    the registered signature formats (the composition root's list): a referrer is a signature
    when one of them claims it, and that format judges it. Verdicts on signatures go through
    ``cache`` (auditor/verdicts.py: in memory for the object's life, or the state store's) keyed
    by everything a verdict depends on (:func:`~auditor.verdicts.verdict_key`: the signature
    digest, the subject's whole descriptor, the scope), so the daemon can keep one and re-audit
    cheaply.
    """

    rules: Sequence[CoverageRule]
    formats: Sequence[SignatureFormat]
    require: Require | None = None
    # ``--platform``: the platforms every rule selects in this run (None: the rules' own).
    platforms: tuple[Platform, ...] | None = None
    settings: AuditSettings = field(default_factory=AuditSettings)
    progress: Callable[[str], None] | None = None
    cache: VerdictCache = field(default_factory=MemoryVerdictCache)
    waivers: Sequence[Waiver] = ()
    # Told each result as :meth:`stream` hands it out: (position from 1, count, result).
    finished: Callable[[int, int, TargetResult], None] | None = None

    async def run(
        self,
        targets: Sequence[AuditTarget | TargetResult],
        *,
        deadline_at: float | None = None,
    ) -> AuditReport:
        """Audit every target; a TargetResult passed in (an expansion failure) is kept as is."""
        results = [r async for r in self.stream(targets, deadline_at=deadline_at)]
        return AuditReport(generated_at=datetime.now(UTC), targets=tuple(results))

    async def stream(
        self,
        targets: Sequence[AuditTarget | TargetResult],
        *,
        deadline_at: float | None = None,
    ) -> AsyncIterator[TargetResult]:
        """Each target's result as soon as it is decided, in order.

        ``deadline_at`` (event-loop time) is the run's deadline: a target cut off by it, and
        every target after it, is an ``error`` naming the deadline; earlier results stand.
        Waivers are judged at the run's start: one run, one answer to "is it still waived?".
        """
        loop = asyncio.get_running_loop()
        started = datetime.now(UTC)

        async def one(i: int, target: AuditTarget | TargetResult) -> TargetResult:
            if isinstance(target, TargetResult):
                return apply_waivers(target, self.waivers, started)
            if deadline_at is not None and loop.time() >= deadline_at:
                return error_target(
                    str(target.reference), RUN_DEADLINE_PASSED, category=ErrorCategory.TIMEOUT
                )
            if self.progress:
                self.progress(f"[{i}/{len(targets)}] {target.reference}")
            result = await self.audit_target(target, deadline_at=deadline_at)
            return apply_waivers(result, self.waivers, started)

        # Up to ``concurrent_targets`` targets in flight (their requests share each registry's
        # own limit, in the transport), results handed out in the targets' order: the window
        # bounds what is held while a slow target keeps the ones after it waiting. The window
        # opens like a slow start: it doubles on each target that is not an error and closes
        # to one on an error, so a failing registry is not hit by many targets at once (its
        # down mark then stops the rest early, as it does sequentially).
        limit = max(1, self.settings.concurrent_targets)
        window = 1
        handed = 0
        pending: deque[asyncio.Task[TargetResult]] = deque()
        queue = iter(enumerate(targets, 1))
        try:
            while True:
                while len(pending) < window:
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    pending.append(asyncio.ensure_future(one(*nxt)))
                if not pending:
                    break
                result = await pending.popleft()
                failed = result.status is TargetStatus.ERROR
                window = 1 if failed else min(limit, window * 2)
                handed += 1
                if self.finished is not None:
                    self.finished(handed, len(targets), result)
                yield result
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def audit_target(
        self, target: AuditTarget, *, deadline_at: float | None = None
    ) -> TargetResult:
        """One target within the per-target deadline (and ``deadline_at``, the run's)."""
        display = str(target.reference)
        rule = select_rule(
            self.rules, target.scopes, require=self.require, platforms=self.platforms
        )
        loop = asyncio.get_running_loop()
        own = loop.time() + self.settings.target_deadline
        ends_at = own if deadline_at is None else min(own, deadline_at)
        budget = TargetBudget(
            self.settings.max_nodes_per_target, self.settings.max_bytes_per_target
        )
        bounded = replace(target, source=BudgetedSource(target.source, budget))
        try:
            async with asyncio.timeout_at(ends_at):
                result = await self._audit(bounded, display, rule)
        except TimeoutError:
            reason = (
                RUN_DEADLINE_PASSED
                if ends_at != own
                else (
                    f"not finished within the per-target deadline of "
                    f"{self.settings.target_deadline:g}s (limits.target_deadline_seconds)"
                )
            )
            return error_target(display, reason, rule=rule, category=ErrorCategory.TIMEOUT)
        if budget.exceeded is not None:
            # Parts of the graph were refused for the budget: the target was not audited.
            return error_target(
                display, budget.exceeded, rule=rule, category=ErrorCategory.INVALID
            )
        return result

    async def _audit(self, target: AuditTarget, display: str, rule: CoverageRule) -> TargetResult:
        try:
            snapshot = await crawl(
                target.source,
                target.repository,
                target.ref,
                display=display,
                limits=self.settings.limits,
                concurrency=self.settings.concurrency,
                signature_tags=self._signature_tags,
                verify_children_exist=self.settings.verify_children_exist,
            )
            graph = build_graph(
                snapshot, display, self.settings.limits, is_signature=self._is_signature
            )
        except AuditorError as exc:
            return error_target(display, str(exc), rule=rule, category=exc.category)
        signature_results = await self._verify_graph(target, graph.nodes)
        verifying = [f for f in self.formats if f.verifies]
        return evaluate_target(
            display,
            graph,
            signature_results,
            rule,
            verified=bool(verifying),
            # Only formats with trust configured have a say: an unconfigured cosign must not
            # undo notation's explicit skip level for a scope.
            trust_skipped=bool(verifying) and all(f.skips(target.scope) for f in verifying),
            # By default a signature counts when its format has trust configured; with none
            # configured nothing is dropped (every signature is then "unverified").
            counted_formats=frozenset(f.name for f in verifying) if verifying else None,
        )

    def _is_signature(self, referrer: Descriptor) -> bool:
        return claiming_format(self.formats, referrer) is not None

    def _signature_tags(self, subject_digest: str) -> list[str]:
        return [tag for f in self.formats for tag in f.signature_tags(subject_digest)]

    async def _verify_graph(
        self, target: AuditTarget, nodes: Sequence[GraphNode]
    ) -> Mapping[str, tuple[SignatureResult, ...]]:
        jobs = [self._verify_node(target, node) for node in nodes]
        verified = await asyncio.gather(*jobs)
        return {node.digest: res for node, res in zip(nodes, verified, strict=True)}

    async def _verify_node(
        self, target: AuditTarget, node: GraphNode
    ) -> tuple[SignatureResult, ...]:
        if node.error is not None:
            return ()
        limit = self.settings.max_signatures_per_node
        subject = Descriptor(node.media_type, node.digest, node.size)
        results = [
            await self._verify_one(target, subject, sig) for sig in node.signatures[:limit]
        ]
        if len(node.signatures) > limit:
            first_untried = node.signatures[limit]
            fmt = claiming_format(self.formats, first_untried)
            results.append(
                SignatureResult(
                    digest=first_untried.digest,
                    format=fmt.name if fmt else "unknown",
                    status=SignatureStatus.ERROR,
                    reason=(
                        f"{len(node.signatures) - limit} more signatures not tried: "
                        f"limit of {limit} per node"
                    ),
                )
            )
        return tuple(results)

    async def _verify_one(
        self, target: AuditTarget, subject: Descriptor, signature: Descriptor
    ) -> SignatureResult:
        key = verdict_key(signature.digest, subject, target.scope)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        result = await self._fetch_and_verify(target, subject, signature)
        if result.status is not SignatureStatus.ERROR:
            # Errors are transient (registry, network): never cache them.
            self.cache.put(key, result)
        return result

    async def _fetch_and_verify(
        self, target: AuditTarget, subject: Descriptor, signature: Descriptor
    ) -> SignatureResult:
        fmt = claiming_format(self.formats, signature)
        if fmt is None:
            # The graph only lists referrers a format claimed; this is a defensive fail-close.
            reason = "no registered signature format claims this referrer"
            return SignatureResult(signature.digest, "unknown", SignatureStatus.ERROR, reason)
        return await fmt.fetch_and_verify(
            target.source, target.repository, target.scope, subject, signature
        )
