"""SARIF 2.1.0: one run, one result per finding, one rule per finding kind.

Code-scanning tools (GitHub, GitLab, Azure DevOps) ingest SARIF, which is how a CI job gates
on image coverage. Locations are artifact references to the image by digest. A bare image
reference is not a valid URI (``127.0.0.1:5000/app`` parses as scheme ``127.0.0.1``), so
registry images are written the way skopeo names them, ``docker://host/repo@sha256:...``,
and layouts as ``oci-layout:PATH@sha256:...``; the plain reference is the logical location.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from auditor import __version__
from auditor.coverage import FindingKind
from auditor.errors import InvalidReference
from auditor.formats.common import rfc3339
from auditor.model import AuditReport, Finding, TargetResult
from auditor.oci.reference import ImageReference, parse_reference

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "registry-auditor"


@dataclass(frozen=True)
class RuleText:
    """What a code-scanning UI shows for one finding kind."""

    name: str
    short: str
    help: str
    level: str  # SARIF level: error for what is wrong, warning for what could not be checked


RULES: Mapping[FindingKind, RuleText] = {
    FindingKind.UNSIGNED_INDEX: RuleText(
        "UnsignedIndex",
        "An image index required by the coverage policy has no signature.",
        "Sign the index digest (notation sign IMAGE@DIGEST), or change the coverage rule's "
        "require to platforms if only platform manifests are meant to be signed.",
        "error",
    ),
    FindingKind.UNSIGNED_PLATFORM: RuleText(
        "UnsignedPlatform",
        "A platform manifest required by the coverage policy has no signature.",
        "Sign the platform manifest digest, or sign the index if the rule is 'either'. "
        "Signing the index alone does not sign its platforms under 'platforms' or 'both'.",
        "error",
    ),
    FindingKind.UNSIGNED_MANIFEST: RuleText(
        "UnsignedManifest",
        "A single-manifest image has no signature.",
        "Sign the manifest digest; a tag without an index needs its manifest signed under "
        "every coverage rule.",
        "error",
    ),
    FindingKind.UNSIGNED_ATTESTATION: RuleText(
        "UnsignedAttestation",
        "An attestation manifest required by the coverage policy has no signature.",
        "Sign the attestation manifest digest, or set attestations: ignore in the rule.",
        "error",
    ),
    FindingKind.INVALID_SIGNATURE: RuleText(
        "InvalidSignature",
        "A required node has signatures, but none passed the trust policy.",
        "Read the failed validation in the message: re-sign with a certificate the trust store "
        "trusts, renew an expired signature, or fix the trust policy's trusted identities.",
        "error",
    ),
    FindingKind.MISSING_PLATFORM: RuleText(
        "MissingPlatform",
        "A platform the coverage policy selects is not in the image index.",
        "Build and push the missing platform, or remove it from the rule's platforms list.",
        "error",
    ),
    FindingKind.UNCHECKED: RuleText(
        "Unchecked",
        "A required node could not be checked, so it cannot be called signed.",
        "Fix the cause in the message (registry or network failure, malformed content, or no "
        "trust policy configured so signatures were never verified) and audit again.",
        "warning",
    ),
}


def _rule(rule_id: str, text: RuleText) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": text.name,
        "shortDescription": {"text": text.short},
        "fullDescription": {"text": text.short},
        "help": {"text": text.help},
        "defaultConfiguration": {"level": text.level},
    }


def _unknown_rule(kind: str) -> RuleText:
    return RuleText(kind, f"Finding of kind {kind}.", "See the result message.", "error")


def artifact_uri(reference: str, digest: str | None) -> str:
    """A valid URI for the image (by digest when known); see the module docstring."""
    try:
        ref = parse_reference(reference)
    except InvalidReference:
        text = f"{reference}@{digest}" if digest else reference
        return quote(text, safe="/@")
    if digest:
        ref = ref.with_digest(digest)
    if isinstance(ref, ImageReference):
        return "docker://" + quote(str(ref), safe="/:@[]")
    return "oci-layout:" + quote(str(ref).removeprefix("oci-layout:"), safe="/:@")


def _fingerprint(target: TargetResult, finding: Finding) -> str:
    key = "\x00".join((finding.kind, target.reference, finding.node or "", finding.platform or ""))
    return hashlib.sha256(key.encode()).hexdigest()


def _result(
    target: TargetResult, finding: Finding, index: Mapping[str, int], levels: Mapping[str, str]
) -> dict[str, Any]:
    digest = finding.node or target.digest
    logical = f"{target.reference}@{digest}" if digest else target.reference
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": {"uri": artifact_uri(target.reference, digest)}},
        "logicalLocations": [{"name": finding.platform or logical, "fullyQualifiedName": logical}],
    }
    return {
        "ruleId": finding.kind,
        "ruleIndex": index[finding.kind],
        "level": levels[finding.kind],
        "message": {"text": finding.message},
        "locations": [location],
        "partialFingerprints": {"registryAuditorFinding/v1": _fingerprint(target, finding)},
        "properties": {
            key: value
            for key, value in (
                ("target", target.reference),
                ("targetStatus", target.status.value),
                ("policy", finding.rule),
                ("platform", finding.platform),
            )
            if value
        },
    }


def _findings(target: TargetResult) -> tuple[Finding, ...]:
    """A target that failed without findings still yields a result: never a silent pass."""
    if target.findings or not target.error:
        return target.findings
    message = f"{target.reference} could not be checked: {target.error}"
    return (Finding(FindingKind.UNCHECKED.value, message, target.rule or ""),)


def to_dict(report: AuditReport) -> dict[str, Any]:
    texts: dict[str, RuleText] = {kind.value: text for kind, text in RULES.items()}
    pairs = [(t, f) for t in report.targets for f in _findings(t)]
    for _, finding in pairs:
        texts.setdefault(finding.kind, _unknown_rule(finding.kind))
    index = {rule_id: i for i, rule_id in enumerate(texts)}
    levels = {rule_id: text.level for rule_id, text in texts.items()}
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": __version__,
                        "rules": [_rule(rule_id, text) for rule_id, text in texts.items()],
                    }
                },
                "invocations": [
                    {"executionSuccessful": True, "endTimeUtc": rfc3339(report.generated_at)}
                ],
                "results": [_result(t, f, index, levels) for t, f in pairs],
            }
        ],
    }


def render(report: AuditReport) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"
