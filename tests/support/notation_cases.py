"""notation's asserted e2e verify cases, shared by the on-disk and the through-the-registry tests.

Source of truth: ../shared/fixtures/notation-e2e/EXPECTED_OUTCOMES.json (transcribed from
notation's e2e tests). This module knows how notation's tests staged each case (trust store
layout, the scope a case ran under) and when one of our outcomes agrees with notation's; the
test modules only decide where the layout is read from.

Scope: notation's e2e policies mostly use ``*``; where a policy also has an exact statement
(multi_statements_with_wildcard_registry_scope) the case ran against that statement's
repository, so we verify under that exact scope, otherwise under ``localhost:5000/<repo>``.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.model import Descriptor, NodeStatus, SignatureResult
from auditor.oci.manifest import ImageManifest, parse_descriptor, parse_manifest
from auditor.oci.mediatypes import NOTARY_SIGNATURE, OCI_MANIFEST
from tests.support.paths import FIXTURES

E2E = FIXTURES / "notation-e2e"
LAYOUTS = E2E / "registry" / "oci_layout"
EXPECTED: dict[str, Any] = json.loads((E2E / "EXPECTED_OUTCOMES.json").read_text())
GENERIC = "signature verification failed"  # notation's summary line, not a reason
VALIDATION_FAILED = re.compile(r"^(\w+) validation failed")
CONFIG_ERROR = "config-error"  # the outcome of a case whose policy or store notation refuses
NOTATION_HOST = "localhost:5000"  # the registry notation's e2e tests ran against


@dataclass(frozen=True)
class Case:
    """One asserted ``notation verify`` case: the layout's repo and the case's record."""

    repo: str
    index: int
    raw: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.repo}[{self.index}]-{self.policy_path.name}"

    @property
    def policy_path(self) -> Path:
        """The case's trust policy file (the record may add a note after the path)."""
        return E2E / str(self.raw["trust_policy"]).split()[0]

    @property
    def layout(self) -> Path:
        return LAYOUTS / self.repo


def verify_cases() -> list[Case]:
    """Every case notation asserts an outcome for (pass, fail, pass with skipped) with a policy."""
    cases = []
    for repo, info in EXPECTED["repos"].items():
        for index, raw in enumerate(info["cases"]):
            if raw.get("expected") in ("pass", "fail", "pass (skipped)") and "trust_policy" in raw:
                cases.append(Case(repo, index, raw))
    return cases


CASES = verify_cases()


def lay_out_store(case: Case, root: Path) -> Path:
    """Stage the case's trust store under ``root`` the way notation's tests do; returns root.

    ``a.crt + b.crt`` -> both in store e2e; ``a.crt (store X)`` -> that cert in store X.
    """
    for part in str(case.raw["ca_trust_store_e2e"]).split(" + "):
        match = re.fullmatch(r"(\S+)(?: \(store ([\w.-]+)\))?", part.strip())
        if match is None:
            raise ValueError(f"unrecognised trust store spec {part!r} in {case.id}")
        cert, store = E2E / match.group(1), match.group(2) or "e2e"
        folder = root / "x509" / "ca" / store
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cert, folder / cert.name)
    return root


def _exact_scope(policy_path: Path) -> str | None:
    """The one exact scope notation's test ran under, when the policy also has a wildcard."""
    try:
        doc = json.loads(policy_path.read_text())
        statements = [s for s in doc.get("trustPolicies", []) if isinstance(s, dict)]
    except (ValueError, AttributeError):
        return None  # a malformed policy: notation refused it before any scope mattered
    exact = [
        scope
        for statement in statements
        for scope in statement.get("registryScopes") or []
        if scope != "*"
    ]
    has_wildcard = any("*" in (s.get("registryScopes") or []) for s in statements)
    return str(exact[0]) if len(exact) == 1 and has_wildcard else None


def case_scope(case: Case) -> str:
    """The ``host/repository`` the case ran under in notation's tests."""
    return _exact_scope(case.policy_path) or f"{NOTATION_HOST}/{case.repo}"


def policy_for_scope(case: Case, scope: str) -> bytes:
    """The case's trust policy with the statement scope it ran under moved to ``scope``.

    Policies that only use ``*`` (and malformed ones) come back byte for byte: notation's
    verdicts on them do not depend on where the image lives.
    """
    raw = case.policy_path.read_bytes()
    exact = _exact_scope(case.policy_path)
    if exact is None:
        return raw
    doc = json.loads(raw)
    for statement in doc["trustPolicies"]:
        statement["registryScopes"] = [
            scope if s == exact else s for s in statement.get("registryScopes") or []
        ]
    return json.dumps(doc, indent=2).encode()


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, hexpart = digest.split(":", 1)
    return (layout / "blobs" / algorithm / hexpart).read_bytes()


def read_layout(layout: Path) -> tuple[Descriptor, list[tuple[str, ImageManifest, bytes]]]:
    """The ``v1`` subject of a notation e2e layout and every signature manifest naming it.

    Signatures are found through their ``subject`` field, not the layout's fallback tag (which
    may list fewer; see e2e-valid-multiple-signatures): (digest, manifest, envelope bytes).
    """
    index = json.loads((layout / "index.json").read_text())
    subject = next(
        parse_descriptor(m, "index.json")
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "v1"
    )
    signatures = []
    for path in sorted((layout / "blobs" / "sha256").iterdir()):
        raw = path.read_bytes()
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(doc, dict) or doc.get("mediaType") != OCI_MANIFEST:
            continue
        manifest = parse_manifest(raw, OCI_MANIFEST)
        if not isinstance(manifest, ImageManifest):
            continue
        is_signature = NOTARY_SIGNATURE in (manifest.artifact_type, manifest.config.media_type)
        if is_signature and manifest.subject and manifest.subject.digest == subject.digest:
            envelope = _blob(layout, manifest.layers[0].digest) if manifest.layers else b""
            signatures.append((f"sha256:{path.name}", manifest, envelope))
    return subject, signatures


def agrees(case: Case, outcome: str, message: str, results: list[SignatureResult]) -> str | None:
    """None if our outcome matches notation's, else what differs.

    ``outcome`` is a node status value or CONFIG_ERROR; ``message`` the node's reason or the
    configuration error; ``results`` the node's signature results.

    - pass -> ``signed``, with notation's warning text where notation prints a warning (and no
      warning where it prints none);
    - pass (skipped) -> ``skipped``;
    - fail naming a validation -> ``invalid`` with that failed validation and notation's words;
    - fail with a policy message -> a configuration error carrying that message;
    - fail with a trust store notation cannot load -> ``error`` (inconclusive authenticity)
      carrying that message.
    """
    expected = case.raw["expected"]
    keywords = [k for k in case.raw["output_keywords"] if k != GENERIC]
    if expected == "pass (skipped)":
        if outcome != NodeStatus.SKIPPED.value:
            return f"expected skipped, got {outcome}: {message}"
        texts = [r.reason for r in results] or [message]
    elif expected == "pass":
        if outcome != NodeStatus.SIGNED.value:
            return f"expected signed, got {outcome}: {message}"
        texts = [w for r in results for w in r.warnings]
        keywords = [k.removeprefix("Warning: ") for k in keywords if k != "Successfully verified"]
        if not keywords and any(texts):
            return f"notation prints no warning, we warn: {texts}"
    else:
        failed = [m.group(1) for k in keywords if (m := VALIDATION_FAILED.match(k))]
        if any(k.startswith("Failure reason: signing certificate") for k in keywords):
            failed.append("authenticity")  # notation reports an identity mismatch there
        if failed:
            if outcome != NodeStatus.INVALID.value:
                return f"expected invalid ({failed[0]}), got {outcome}: {message}"
            got = {r.failed_validation for r in results}
            if got != {failed[0]}:
                return f"expected failed validation {failed[0]}, got {got}"
            texts = [r.reason for r in results]
            keywords = [
                k.removeprefix("Failure reason: ")
                for k in keywords
                if not VALIDATION_FAILED.match(k)
            ]
        elif outcome == NodeStatus.ERROR.value and results:
            # A trust store notation cannot load: notation-go's verifier reads the applicable
            # statement's stores while verifying and reports an inconclusive authenticity
            # result ("error while loading the trust store, ..."); ours is the same: `error`,
            # failed validation authenticity, notation's wording in the reason.
            got = {r.failed_validation for r in results}
            if got != {"authenticity"}:
                return f"expected an inconclusive authenticity result, got {got}: {message}"
            texts = [r.reason for r in results]
        else:
            if outcome != CONFIG_ERROR:
                return f"expected a configuration error, got {outcome}: {message}"
            texts = [message]
    for keyword in keywords:
        if not any(keyword in text for text in texts):
            return f"missing notation's wording {keyword!r} in {texts}"
    return None
