"""``auditor sign``: crawl the image, plan, sign what the plan says, publish, report.

The orchestration only: the plan is pure (``plan.py``), keys are read in ``keys.py``, the
envelope is made by ``notary/sign.py``, publishing is ``publish.py``. Sources, credentials,
limits and the verifier come from the composition root (``App``), exactly as ``audit now``
gets them, so ``--missing`` signs what ``audit now`` reports and the idempotence check judges
existing signatures the way the audit does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import httpx

from auditor.app import App
from auditor.audit import AuditTarget
from auditor.crawl import crawl
from auditor.errors import AuditorError, SigningError, UsageError
from auditor.model import Descriptor, GraphNode, ImageGraph
from auditor.notary.envelope import ENVELOPE_FORMATS, parse_envelope
from auditor.notary.format import is_notation_signature
from auditor.notary.sign import Timestamper, sign_cose, sign_jws, signature_manifest
from auditor.notary.timestamp import verify_timestamp
from auditor.oci.graph import build_graph
from auditor.oci.reference import LayoutReference, parse_reference
from auditor.signing.existing import Bounds, own_signature
from auditor.signing.keys import SigningKey
from auditor.signing.plan import Action, Decision, Selection, select, settle, wanted
from auditor.signing.publish import LayoutPublisher, Publisher, RegistryPublisher
from auditor.signing.tsa import TimestampAuthority, request_token

# --signature-format word ("jws", "cose") -> envelope media type, from the one envelope map.
ENVELOPES = {fmt.removeprefix("notation/"): media for media, fmt in ENVELOPE_FORMATS.items()}
SIGN_CONCURRENCY = 4


class Outcome(StrEnum):
    SIGNED = "signed"
    SKIPPED = "skipped"
    FAILED = "failed"
    WOULD_SIGN = "would sign"


@dataclass(frozen=True)
class SignOptions:
    """Everything about the signatures themselves (the plan's options are a Selection)."""

    envelope: str = "jws"
    expiry: timedelta | None = None
    user_metadata: Mapping[str, str] = field(default_factory=dict)
    timestamp: TimestampAuthority | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class NodeResult:
    node: GraphNode
    outcome: Outcome
    reason: str
    signature: str | None = None
    via: str | None = None


@dataclass(frozen=True)
class SignReport:
    reference: str
    digest: str
    signer: str
    thumbprint: str
    dry_run: bool
    nodes: tuple[NodeResult, ...]

    @property
    def failed(self) -> bool:
        return any(n.outcome is Outcome.FAILED for n in self.nodes)


async def _target(
    app: App, text: str, layout_scope: str | None = None
) -> tuple[AuditTarget, Publisher]:
    reference = parse_reference(text)
    if reference.ref is None:
        raise UsageError(f"auditor sign: {text}: name a tag or digest to sign")
    if isinstance(reference, LayoutReference):
        path = Path(reference.path)
        publisher: Publisher = LayoutPublisher(path)
        # The scope the audit verifies this layout under (``--scope``, else a configured
        # layout's ``scope:``), so --missing and the already-signed check see the same
        # trust policy statement as ``audit now``, not only a ``*`` one.
        configured = app.config.layout_for(path)
        scope = layout_scope or (configured.scope if configured else None)
        return AuditTarget(reference, app.layout(path), "", scope), publisher
    # The registry client itself, not a cache in front of it: signing reads what is there now.
    client = await app.registry_client(reference.registry)
    target = AuditTarget(reference, client, reference.repository)
    return target, RegistryPublisher(client, reference.repository)


async def _graph(app: App, target: AuditTarget, selection: Selection) -> tuple[
    ImageGraph, tuple[Decision, ...]
]:
    display = str(target.reference)
    if selection.missing:
        if app.verifier is None:
            raise UsageError(
                "--missing signs what the coverage policy finds unsigned, which needs a trust "
                "policy: pass --trust-policy/--trust-store or set trust: in the config"
            )
        # Every node fetched (see below), whatever the config says for audits.
        settings = replace(app.auditor.settings, verify_children_exist=True)
        result = await replace(app.auditor, settings=settings).audit_target(target)
        if not result.nodes or result.digest is None:
            raise SigningError(f"{display}: cannot be audited: {result.error}")
        graph = ImageGraph(display, result.digest, tuple(v.node for v in result.nodes))
        verdicts = {v.node.digest: v for v in result.nodes}
        return graph, select(graph, selection, verdicts)
    limits = app.auditor.settings.limits
    # Every node is fetched: a signature is only made for a manifest the registry really has,
    # with the media type and size it really has.
    snapshot = await crawl(
        target.source,
        target.repository,
        target.ref,
        display=display,
        limits=limits,
        verify_children_exist=True,
    )
    # Only notation signatures matter here: they are what this command makes and re-checks.
    graph = build_graph(snapshot, display, limits, is_signature=is_notation_signature)
    return graph, select(graph, selection)


def _envelope(
    node: GraphNode,
    key: SigningKey,
    options: SignOptions,
    now: datetime,
    http: httpx.Client | None,
) -> bytes:
    """Sign one node; runs in a worker thread (RSA signing and the TSA call block)."""
    target = Descriptor(node.media_type, node.digest, node.size, options.user_metadata)
    expiry = now + options.expiry if options.expiry else None
    tsa = options.timestamp
    stamp: Timestamper | None = None
    if tsa is not None and http is not None:
        client = http

        def stamp(signature: bytes) -> bytes:
            return request_token(tsa, signature, client)

    sign = sign_jws if options.envelope == "jws" else sign_cose
    envelope = sign(
        target, key.key, key.chain, signing_time=now, expiry=expiry, timestamper=stamp
    )
    if tsa is not None:
        parsed = parse_envelope(ENVELOPES[options.envelope], envelope)
        try:
            verify_timestamp(parsed, [tsa.root])
        except AuditorError as exc:
            raise SigningError(f"the timestamp from {tsa.url} does not verify: {exc}") from None
    return envelope


async def _sign_one(
    decision: Decision,
    key: SigningKey,
    options: SignOptions,
    publisher: Publisher,
    http: httpx.Client | None,
    semaphore: asyncio.Semaphore,
) -> NodeResult:
    node = decision.node
    async with semaphore:
        try:
            now = datetime.now(UTC).replace(microsecond=0)
            envelope = await asyncio.to_thread(_envelope, node, key, options, now, http)
            subject = Descriptor(node.media_type, node.digest, node.size)
            raw, blobs = signature_manifest(
                subject, envelope, ENVELOPES[options.envelope], created=now
            )
            published = await publisher.publish(subject, raw, blobs)
        except AuditorError as exc:
            return NodeResult(node, Outcome.FAILED, f"{decision.reason}; not signed: {exc}")
    return NodeResult(node, Outcome.SIGNED, decision.reason, published.digest, published.via)


def _unconfirmed(results: list[NodeResult], problems: list[str]) -> list[NodeResult]:
    """Mark signatures the final confirmation could not keep findable as failed."""
    out = []
    for result in results:
        trouble = next(
            (p for p in problems if result.signature and p.startswith(result.signature)), None
        )
        if trouble is not None:
            result = NodeResult(result.node, Outcome.FAILED, f"{result.reason}; {trouble}")
        out.append(result)
    return out


async def sign(
    app: App,
    reference: str,
    key: SigningKey,
    selection: Selection,
    options: SignOptions,
    layout_scope: str | None = None,
) -> SignReport:
    """Plan and (unless ``dry_run``) carry out the signing of ``reference``; ``layout_scope``
    is an ``oci-layout:`` reference's trust policy scope (``--scope local/NAME``)."""
    if options.envelope not in ENVELOPES:
        raise UsageError(f"--signature-format: {options.envelope!r} is not jws or cose")
    target, publisher = await _target(app, reference, layout_scope)
    graph, decisions = await _graph(app, target, selection)
    limits = app.config.limits
    bounds = Bounds(limits.max_envelope_bytes, limits.max_signatures_per_node)
    candidates = wanted(decisions)
    found = await asyncio.gather(
        *(
            own_signature(
                target.source,
                target.repository,
                target.scope,
                node,
                key,
                verifier=app.verifier,
                bounds=bounds,
            )
            for node in candidates
        )
    )
    existing = {n.digest: f for n, f in zip(candidates, found, strict=True) if f is not None}
    decisions = settle(decisions, existing, force=selection.force)
    results: list[NodeResult] = []
    semaphore = asyncio.Semaphore(SIGN_CONCURRENCY)
    http = (
        httpx.Client(trust_env=False, follow_redirects=False)
        if options.timestamp is not None and not options.dry_run
        else None
    )
    try:
        jobs = []
        for decision in decisions:
            if decision.action is Action.SIGN and not options.dry_run:
                jobs.append(_sign_one(decision, key, options, publisher, http, semaphore))
        done = list(await asyncio.gather(*jobs))
        lost = await publisher.confirm() if jobs else []
        signed = iter(_unconfirmed(done, lost))
    finally:
        if http is not None:
            http.close()
    for decision in decisions:
        match decision.action:
            case Action.SIGN if options.dry_run:
                results.append(NodeResult(decision.node, Outcome.WOULD_SIGN, decision.reason))
            case Action.SIGN:
                results.append(next(signed))
            case Action.SKIP:
                results.append(NodeResult(decision.node, Outcome.SKIPPED, decision.reason))
            case Action.FAIL:
                results.append(NodeResult(decision.node, Outcome.FAILED, decision.reason))
    return SignReport(
        reference=str(target.reference),
        digest=graph.root,
        signer=key.subject,
        thumbprint=key.thumbprint,
        dry_run=options.dry_run,
        nodes=tuple(results),
    )
