"""Scenarios for the end-to-end tests: signed sample layouts, pushing them, running the CLI.

The sample layout (devkit.samples) is signed on chosen nodes with a trusted and an untrusted
test PKI, so one audit meets every node status. What was signed is recorded here, from the
digests ``sign_in_layout`` returns, so tests compare the report against what was *made*, never
against what the auditor itself reported earlier.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from auditor.cli import main
from auditor.oci import mediatypes as mt
from auditor.oci.digest import fallback_tag
from auditor.registry.auth import AuthProvider
from auditor.registry.client import RegistryClient
from auditor.registry.push import PushedLayout, push_layout
from devkit.samples import SampleLayout, attach_referrer, write_sample_layout
from devkit.signing import sign_in_layout
from devkit.testpki import make_pki
from tests.support.paths import FIXTURES

NOTATION_LAYOUTS = FIXTURES / "notation-e2e" / "registry" / "oci_layout"
NOTATION_EXPECTED = FIXTURES / "notation-e2e" / "EXPECTED_OUTCOMES.json"
BUILDX_TAR = FIXTURES / "buildx" / "hello-oci-multiplatform-gzip.tar"
SBOM_TYPE = "application/spdx+json"
TRUST_STORE_NAME = "integration"


@dataclass(frozen=True)
class SignedSample:
    """A sample layout with signatures; ``signatures`` maps node digest -> signature digests.

    Signed: the index (trusted JWS and untrusted JWS), linux/amd64 (trusted COSE),
    linux/arm64/v8 (untrusted JWS only) and the single-manifest tag (trusted JWS).
    Unsigned: linux/ppc64le (it carries an SBOM referrer instead), the attestation and the
    nested index. ``formats`` maps signature digest -> report format; ``trusted`` holds the
    signatures made with the trusted PKI. ``sbom`` is the SBOM referrer's digest.
    """

    sample: SampleLayout
    signatures: Mapping[str, tuple[str, ...]]
    formats: Mapping[str, str]
    trusted: frozenset[str]
    sbom: str
    trust_policy: Path
    trust_store: Path

    @property
    def path(self) -> Path:
        return self.sample.path

    def signatures_of(self, digest: str) -> list[str]:
        return sorted(self.signatures.get(digest, ()))


def build_signed_sample(workdir: Path, name: str = "integration") -> SignedSample:
    """Write the signed sample layout, a trust policy and a trust store under ``workdir``."""
    sample = write_sample_layout(workdir / "layout", name=name)
    trusted = make_pki(name=f"{name}-release", validity=timedelta(days=30))
    stranger = make_pki(name=f"{name}-stranger", validity=timedelta(days=30), slot=1)
    now = datetime.now(UTC).replace(microsecond=0)
    signatures: dict[str, list[str]] = {}
    formats: dict[str, str] = {}
    trusted_signatures: set[str] = set()

    def sign(subject_key: str, trusted_key: bool, envelope: str = "jws") -> None:
        subject = {
            "index": sample.index,
            "single": sample.single,
            **sample.platforms,
        }[subject_key]
        pki = trusted if trusted_key else stranger
        signature = sign_in_layout(
            sample.path,
            subject,
            pki.leaf.key,
            pki.chain,
            signing_time=now,
            envelope_format=envelope,
        )
        signatures.setdefault(subject.digest, []).append(signature.digest)
        formats[signature.digest] = f"notation/{envelope}"
        if trusted_key:
            trusted_signatures.add(signature.digest)

    sign("index", trusted_key=True)
    sign("index", trusted_key=False)
    sign("linux/amd64", trusted_key=True, envelope="cose")
    sign("linux/arm64/v8", trusted_key=False)
    sign("single", trusted_key=True)
    sbom = attach_referrer(
        sample.path,
        sample.platforms["linux/ppc64le"],
        artifact_type=SBOM_TYPE,
        layer_media_type=SBOM_TYPE,
        layer=b'{"spdxVersion":"SPDX-2.3"}',
    )

    store = workdir / "truststore"
    trusted.write_trust_store(store, TRUST_STORE_NAME)
    policy = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "integration",
                # "*" so that one policy covers the registry and the oci-layout: scopes alike.
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": [f"ca:{TRUST_STORE_NAME}"],
                "trustedIdentities": ["*"],
            }
        ],
    }
    policy_path = workdir / "trustpolicy.oci.json"
    policy_path.write_text(json.dumps(policy, indent=2))
    return SignedSample(
        sample=sample,
        signatures={k: tuple(v) for k, v in signatures.items()},
        formats=formats,
        trusted=frozenset(trusted_signatures),
        sbom=sbom.digest,
        trust_policy=policy_path,
        trust_store=store,
    )


def push(
    host: str,
    layout: Path,
    repository: str,
    *,
    auth: AuthProvider | None = None,
    tags: list[str] | None = None,
    default_tag: str | None = None,
    update_fallback_tags: bool = False,
) -> PushedLayout:
    """Push an OCI layout to the registry at ``host`` from synchronous test code."""

    async def run() -> PushedLayout:
        async with httpx.AsyncClient(timeout=30.0) as http:
            client = RegistryClient(host, http, auth=auth)
            return await push_layout(
                client,
                layout,
                repository,
                tags=tags,
                default_tag=default_tag,
                update_fallback_tags=update_fallback_tags,
            )

    return asyncio.run(run())


def isolate_environment(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    """No ./auditor.yaml, no notation config dir, no docker config.json from the machine."""
    for sub in ("cwd", "xdg", "docker"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(workdir / "cwd")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "xdg"))
    monkeypatch.setenv("DOCKER_CONFIG", str(workdir / "docker"))


@dataclass(frozen=True)
class CliRun:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        data = json.loads(self.stdout)
        assert isinstance(data, dict)
        return data


def assert_finished_lines(stderr: str, targets: Sequence[tuple[str, str]]) -> None:
    """``audit now`` off a terminal writes one stderr line per target as it finishes, in the
    targets' order: ``[i/n] STATUS REFERENCE`` (then ``(k findings)`` or ``: error``).
    ``targets`` are the (status, reference) pairs the report holds, in order."""
    lines = stderr.splitlines()
    assert len(lines) == len(targets), (lines, targets)
    for i, (line, (status, reference)) in enumerate(zip(lines, targets, strict=True), 1):
        head = f"[{i}/{len(targets)}] {status} {reference}"
        assert line == head or line.startswith((f"{head} (", f"{head}: ")), (line, head)


def assert_report_lines(run: CliRun) -> None:
    """The stderr of a ``--format json`` run is exactly its targets' finished lines."""
    targets = [(t["status"], t["reference"]) for t in run.report["targets"]]
    assert_finished_lines(run.stderr, targets)


def run_cli(args: Sequence[str]) -> CliRun:
    """``auditor ARGS`` in-process; stdout/stderr captured (they are not terminals)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return CliRun(code, out.getvalue(), err.getvalue())


def audit_json(*args: str | Path) -> CliRun:
    return run_cli(["audit", "now", *map(str, args), "--format", "json"])


def node_view(node: Mapping[str, Any]) -> dict[str, Any]:
    """The graph-relevant fields of a report node; signature digests sorted (order is free)."""
    return {
        "digest": node["digest"],
        "kind": node["kind"],
        "platform": node["platform"],
        "parent": node["parent"],
        "attestation_for": node["attestation_for"],
        "status": node["status"],
        "signatures": sorted(s["digest"] for s in node["signatures"]),
        "other_referrers": sorted(
            (r["digest"], r["artifact_type"]) for r in node["other_referrers"]
        ),
    }


def graph_view(target: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [node_view(n) for n in target["nodes"]]


def expected_node(
    digest: str,
    kind: str,
    *,
    platform: str | None = None,
    parent: str | None = None,
    attestation_for: str | None = None,
    status: str,
    signatures: Sequence[str] = (),
    other_referrers: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A node as :func:`node_view` shows it, spelled out by the test."""
    return {
        "digest": digest,
        "kind": kind,
        "platform": platform,
        "parent": parent,
        "attestation_for": attestation_for,
        "status": status,
        "signatures": sorted(signatures),
        "other_referrers": sorted(other_referrers),
    }


def sample_graph(
    signed: SignedSample, statuses: Mapping[str, str], *, root: str | None = None
) -> list[dict[str, Any]]:
    """The expected nodes of the sample's ``v1`` index (under ``root`` when nested).

    ``statuses`` gives the node status by name: index, each platform, attestation.
    """
    sample = signed.sample
    index = sample.index.digest
    nodes: list[dict[str, Any]] = []
    if root is not None:
        nodes.append(
            expected_node(
                root,
                "index",
                status=statuses["nested"],
                signatures=signed.signatures_of(root),
            )
        )
    nodes.append(
        expected_node(
            index,
            "index",
            parent=root,
            status=statuses["index"],
            signatures=signed.signatures_of(index),
        )
    )
    for platform, descriptor in sample.platforms.items():
        others = [(signed.sbom, SBOM_TYPE)] if platform == "linux/ppc64le" else []
        nodes.append(
            expected_node(
                descriptor.digest,
                "platform",
                platform=platform,
                parent=index,
                status=statuses[platform],
                signatures=signed.signatures_of(descriptor.digest),
                other_referrers=others,
            )
        )
    nodes.append(
        expected_node(
            sample.attestation.digest,
            "attestation",
            platform="unknown/unknown",
            parent=index,
            attestation_for=sample.platforms["linux/amd64"].digest,
            status=statuses["attestation"],
        )
    )
    return nodes


def subject_of(layout: Path, digest: str) -> str | None:
    """The ``subject`` digest of a manifest blob in an OCI layout, if it has one."""
    blob = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    subject = json.loads(blob.read_bytes()).get("subject")
    return subject["digest"] if isinstance(subject, dict) else None


def ref_name(entry: Mapping[str, Any]) -> str | None:
    name = (entry.get("annotations") or {}).get(mt.ANNOTATION_REF_NAME)
    return name if isinstance(name, str) else None


@dataclass(frozen=True)
class NotationLayout:
    """What one notation e2e layout holds, read from its own ``index.json`` and blobs.

    ``image``: the digest tagged ``v1``. ``fallback``: the signatures its ``sha256-<hex>`` tag
    index lists (None: the layout has no fallback tag). ``in_layout``: every manifest listed in
    ``index.json`` whose ``subject`` is the image (how notation finds them in a layout).
    """

    name: str
    path: Path
    image: str
    image_media_type: str
    fallback: tuple[str, ...] | None
    in_layout: tuple[str, ...]


def notation_layout(name: str) -> NotationLayout:
    path = NOTATION_LAYOUTS / name
    entries: list[dict[str, Any]] = json.loads((path / "index.json").read_bytes())["manifests"]
    (tagged,) = [e for e in entries if ref_name(e) == "v1"]
    image = str(tagged["digest"])
    fallback: tuple[str, ...] | None = None
    for entry in entries:
        if ref_name(entry) == fallback_tag(image):
            blob = path / "blobs" / "sha256" / entry["digest"].split(":", 1)[1]
            listed = json.loads(blob.read_bytes())["manifests"]
            fallback = tuple(sorted(d["digest"] for d in listed))
    in_layout = tuple(
        sorted(
            e["digest"]
            for e in entries
            if ref_name(e) is None and subject_of(path, e["digest"]) == image
        )
    )
    return NotationLayout(name, path, image, str(tagged["mediaType"]), fallback, in_layout)


def notation_layout_names() -> list[str]:
    return sorted(p.name for p in NOTATION_LAYOUTS.iterdir() if (p / "index.json").is_file())


def notation_expected_signatures(name: str) -> list[str]:
    """The signature manifests EXPECTED_OUTCOMES.json names for a layout (some abbreviated
    as ``sha256:90ceaff2...``: compare with :func:`matches_abbreviated`)."""
    data = json.loads(NOTATION_EXPECTED.read_bytes())
    return [str(s["manifest"]) for s in data["repos"][name]["signatures"]]


def matches_abbreviated(digest: str, written: str) -> bool:
    return (
        digest.startswith(written.removesuffix("..."))
        if written.endswith("...")
        else (digest == written)
    )


@dataclass(frozen=True)
class Checkout:
    """A CI checkout: auditor.yaml naming a pushed signed sample and its layout under build/."""

    root: Path
    repository: str
    registry: str


def signed_checkout(registry: str, root: Path, name: str) -> Checkout:
    """``root`` as a repository checkout whose auditor.yaml audits a freshly pushed signed
    sample (repository ``NAME-<random>/app`` on ``registry``) and its layout, with relative
    trust paths as a committed config would have them."""
    signed = build_signed_sample(root / "build", name=name)
    repository = f"{name}-{uuid.uuid4().hex[:8]}/app"
    push(registry, signed.path, repository)
    config = {
        "registries": [{"url": f"http://{registry}", "repositories": [repository]}],
        "layouts": [{"path": "./build/layout"}],
        "trust": {"policy": "build/trustpolicy.oci.json", "store": "build/truststore"},
    }
    (root / "auditor.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return Checkout(root, repository, registry)
