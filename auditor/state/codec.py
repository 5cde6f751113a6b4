"""Target results to plain JSON data and back, losslessly: how the state store keeps them.

The JSON *report* (formats/json.py) is for people and tools and leaves out what they do not
need (sizes, depths, signature descriptors); the store needs every field back, to serve the
same metrics and reports after a restart. Pure: no I/O. ``decode_target`` treats its input as
untrusted (a database file may be old, hand-edited or damaged): anything malformed raises
``StateError`` naming what is wrong, never a bare KeyError.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from auditor.errors import ErrorCategory, StateError
from auditor.model import (
    Descriptor,
    Finding,
    GraphNode,
    NodeKind,
    NodeStatus,
    NodeVerdict,
    OtherReferrer,
    Platform,
    RuleData,
    SignatureResult,
    SignatureStatus,
    TargetResult,
    TargetStatus,
    WaiverNote,
)

CODEC_VERSION = 1


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value))


def _platform(value: Platform | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "os": value.os,
        "architecture": value.architecture,
        "variant": value.variant,
        "os_version": value.os_version,
    }


def _descriptor(value: Descriptor) -> dict[str, Any]:
    return {
        "media_type": value.media_type,
        "digest": value.digest,
        "size": value.size,
        "artifact_type": value.artifact_type,
    }


def _signature(result: SignatureResult) -> dict[str, Any]:
    return {
        "digest": result.digest,
        "format": result.format,
        "status": result.status.value,
        "reason": result.reason,
        "failed_validation": result.failed_validation,
        "warnings": list(result.warnings),
        "signer": result.signer,
        "signing_time": _time(result.signing_time),
        "expiry": _time(result.expiry),
        "timestamped": result.timestamped,
        "valid_until": _time(result.valid_until),
        "recheck_at": _time(result.recheck_at),
    }


def encode_signature(result: SignatureResult) -> dict[str, Any]:
    """One signature verdict (the verdict cache stores these)."""
    return _signature(result)


def _node(verdict: NodeVerdict) -> dict[str, Any]:
    node = verdict.node
    return {
        "digest": node.digest,
        "media_type": node.media_type,
        "size": node.size,
        "kind": node.kind.value,
        "platform": _platform(node.platform),
        "parent": node.parent,
        "depth": node.depth,
        "signature_descriptors": [_descriptor(d) for d in node.signatures],
        "other_referrers": [
            {"digest": r.digest, "artifact_type": r.artifact_type} for r in node.other_referrers
        ],
        "attestation_for": node.attestation_for,
        "error": node.error,
        "error_category": node.error_category.value if node.error_category else None,
        "status": verdict.status.value,
        "reason": verdict.reason,
        "signatures": [_signature(s) for s in verdict.signatures],
        "required": verdict.required,
        "covered_by": verdict.covered_by,
    }


def encode_target(target: TargetResult) -> dict[str, Any]:
    return {
        "v": CODEC_VERSION,
        "reference": target.reference,
        "digest": target.digest,
        "media_type": target.media_type,
        "status": target.status.value,
        "rule": target.rule,
        "error": target.error,
        "findings": [
            {
                "kind": f.kind,
                "message": f.message,
                "rule": f.rule,
                "node": f.node,
                "platform": f.platform,
                "waiver": _waiver(f.waiver),
            }
            for f in target.findings
        ],
        "nodes": [_node(n) for n in target.nodes],
        "policy": None if target.policy is None else target.policy.as_dict(),
        "error_category": target.error_category.value if target.error_category else None,
    }


def _decode_rule(value: Any) -> RuleData | None:
    """Rows written before the rule was kept as data have none (None)."""
    if value is None:
        return None

    def strings(key: str) -> tuple[str, ...] | None:
        items = value.get(key)
        return None if items is None else tuple(str(i) for i in items)

    name = value.get("name")
    return RuleData(
        scope=str(value["scope"]),
        require=str(value["require"]),
        platforms=strings("platforms"),
        attestations=str(value.get("attestations", "ignore")),
        formats=strings("formats"),
        name=None if name is None else str(name),
    )


def _waiver(value: WaiverNote | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "image": value.image,
        "reason": value.reason,
        "owner": value.owner,
        "expires": value.expires.isoformat(),
    }


def _decode_waiver(value: Any) -> WaiverNote | None:
    if value is None:
        return None
    expires = _parse_time(value["expires"])
    if expires is None:
        raise ValueError("a waiver without an expiry")
    return WaiverNote(str(value["image"]), str(value["reason"]), str(value["owner"]), expires)


def _decode_platform(value: Any) -> Platform | None:
    if value is None:
        return None
    return Platform(
        str(value["os"]),
        str(value["architecture"]),
        value.get("variant"),
        value.get("os_version"),
    )


def decode_signature(value: Any) -> SignatureResult:
    try:
        return SignatureResult(
            digest=str(value["digest"]),
            format=str(value["format"]),
            status=SignatureStatus(value["status"]),
            reason=str(value["reason"]),
            failed_validation=value.get("failed_validation"),
            warnings=tuple(str(w) for w in value.get("warnings", ())),
            signer=value.get("signer"),
            signing_time=_parse_time(value.get("signing_time")),
            expiry=_parse_time(value.get("expiry")),
            timestamped=bool(value.get("timestamped", False)),
            valid_until=_parse_time(value.get("valid_until")),
            recheck_at=_parse_time(value.get("recheck_at")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"stored signature verdict is malformed: {exc!r}") from None


def _decode_node(value: Any) -> NodeVerdict:
    node = GraphNode(
        digest=str(value["digest"]),
        media_type=str(value["media_type"]),
        size=int(value["size"]),
        kind=NodeKind(value["kind"]),
        platform=_decode_platform(value.get("platform")),
        parent=value.get("parent"),
        depth=int(value.get("depth", 0)),
        signatures=tuple(
            Descriptor(
                media_type=str(d["media_type"]),
                digest=str(d["digest"]),
                size=int(d["size"]),
                artifact_type=d.get("artifact_type"),
            )
            for d in value.get("signature_descriptors", ())
        ),
        other_referrers=tuple(
            OtherReferrer(str(r["digest"]), r.get("artifact_type"))
            for r in value.get("other_referrers", ())
        ),
        attestation_for=value.get("attestation_for"),
        error=value.get("error"),
        error_category=_decode_category(value.get("error_category"), value.get("error")),
    )
    return NodeVerdict(
        node=node,
        status=NodeStatus(value["status"]),
        reason=str(value["reason"]),
        signatures=tuple(decode_signature(s) for s in value.get("signatures", ())),
        required=bool(value.get("required", True)),
        covered_by=value.get("covered_by"),
    )


def _decode_category(value: Any, error: Any) -> ErrorCategory | None:
    """Rows written before categories existed: an error without one is ``other``."""
    if value is None:
        return ErrorCategory.OTHER if error is not None else None
    return ErrorCategory(value)


def decode_target(value: Any) -> TargetResult:
    """The TargetResult ``encode_target`` was given; StateError on anything else."""
    try:
        if value.get("v") != CODEC_VERSION:
            raise StateError(f"stored target result has codec version {value.get('v')!r}")
        return TargetResult(
            reference=str(value["reference"]),
            digest=value.get("digest"),
            media_type=value.get("media_type"),
            status=TargetStatus(value["status"]),
            nodes=tuple(_decode_node(n) for n in value.get("nodes", ())),
            findings=tuple(
                Finding(
                    kind=str(f["kind"]),
                    message=str(f["message"]),
                    rule=str(f["rule"]),
                    node=f.get("node"),
                    platform=f.get("platform"),
                    waiver=_decode_waiver(f.get("waiver")),
                )
                for f in value.get("findings", ())
            ),
            rule=value.get("rule"),
            error=value.get("error"),
            policy=_decode_rule(value.get("policy")),
            error_category=_decode_category(value.get("error_category"), value.get("error")),
        )
    except StateError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"stored target result is malformed: {exc!r}") from None
