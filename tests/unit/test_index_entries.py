"""Every index entry is its own edge with its own platform (graph builder + coverage, pure).

The same digest listed twice in one index (two platforms, or attestation + platform), or in two
indexes, must be judged as a runtime would pull it: a runtime picks the first entry matching
its platform, and a digest listed anywhere as a real platform is a platform.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from auditor.coverage import CoverageRule, Require, evaluate_target
from auditor.model import (
    Descriptor,
    NodeKind,
    Platform,
    SignatureResult,
    SignatureStatus,
    TargetResult,
)
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest
from auditor.oci.manifest import parse_manifest
from auditor.oci.snapshot import Snapshot
from auditor.source import FetchedManifest
from tests.support.graphs import notation_graph

ATTESTATION = {
    mt.ANNOTATION_REFERENCE_TYPE: mt.ATTESTATION_MANIFEST,
    mt.ANNOTATION_REFERENCE_DIGEST: "sha256:" + "0" * 64,
}


def fetched(document: dict[str, Any]) -> FetchedManifest:
    raw = json.dumps(document).encode()
    manifest = parse_manifest(raw)
    return FetchedManifest(
        Descriptor(manifest.media_type, compute_digest(raw), len(raw)), raw, manifest
    )


def image(label: str) -> FetchedManifest:
    config = {"mediaType": "application/x", "digest": compute_digest(label.encode()), "size": 1}
    return fetched(
        {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config, "layers": []}
    )


def entry(
    item: FetchedManifest, platform: str | None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mediaType": item.descriptor.media_type,
        "digest": item.descriptor.digest,
        "size": item.descriptor.size,
    }
    if platform is not None:
        p = Platform.parse(platform)
        out["platform"] = {"os": p.os, "architecture": p.architecture}
        if p.variant:
            out["platform"]["variant"] = p.variant
    if annotations:
        out["annotations"] = annotations
    return out


def index(*entries: dict[str, Any]) -> FetchedManifest:
    return fetched({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": list(entries)})


def audit(
    root: FetchedManifest,
    *others: FetchedManifest,
    signed: set[str],
    rule: CoverageRule,
) -> TargetResult:
    manifests = {m.descriptor.digest: m for m in (root, *others)}
    graph = notation_graph(Snapshot("x:v1", root.descriptor.digest, manifests), "x:v1")
    results = {
        d: [SignatureResult("sha256:" + "9" * 64, "notation/jws", SignatureStatus.VALID, "ok")]
        for d in signed
    }
    sigs = {d: (Descriptor(mt.OCI_MANIFEST, "sha256:" + "9" * 64, 1),) for d in signed}
    graph = type(graph)(
        graph.reference,
        graph.root,
        tuple(type(n)(**{**n.__dict__, "signatures": sigs.get(n.digest, ())}) for n in graph.nodes),
    )
    return evaluate_target("x:v1", graph, results, rule)


def test_attestation_entry_does_not_hide_the_same_digest_listed_as_a_platform() -> None:
    """[X as attestation, Y linux/arm64, X linux/amd64]: X is pullable as linux/amd64."""
    x, y = image("x"), image("y")
    root = index(
        entry(x, "unknown/unknown", ATTESTATION), entry(y, "linux/arm64"), entry(x, "linux/amd64")
    )
    graph = notation_graph(
        Snapshot("x:v1", root.descriptor.digest, {m.descriptor.digest: m for m in (root, x, y)}),
        "x:v1",
    )
    node = graph.node(x.descriptor.digest)
    assert node.kind is NodeKind.PLATFORM
    assert str(node.platform) == "linux/amd64"
    assert [(e.position, e.attestation) for e in node.entries] == [(0, True), (2, False)]
    target = audit(
        root, x, y, signed={root.descriptor.digest, y.descriptor.digest}, rule=CoverageRule()
    )
    assert target.status.value == "noncompliant"
    assert [(f.kind, f.node) for f in target.findings] == [
        ("unsigned-platform", x.descriptor.digest)
    ]


def test_a_digest_listed_under_two_platforms_satisfies_both_selectors() -> None:
    x = image("x")
    root = index(entry(x, "linux/amd64"), entry(x, "linux/arm64"))
    rule = CoverageRule(
        require=Require.PLATFORMS,
        platforms=(Platform.parse("linux/arm64"), Platform.parse("linux/amd64")),
    )
    target = audit(root, x, signed={x.descriptor.digest}, rule=rule)
    assert target.status.value == "compliant", target.findings
    unsigned = audit(root, x, signed=set(), rule=rule)
    assert [f.kind for f in unsigned.findings] == ["unsigned-platform"]  # no missing-platform


def test_the_second_entry_of_a_platform_is_selected_through_its_own_platform() -> None:
    """[X linux/amd64, Y linux/amd64, Y linux/arm64]: selecting arm64 must require Y."""
    x, y = image("x"), image("y")
    root = index(entry(x, "linux/amd64"), entry(y, "linux/amd64"), entry(y, "linux/arm64"))
    rule = CoverageRule(require=Require.PLATFORMS, platforms=(Platform.parse("linux/arm64"),))
    target = audit(root, x, y, signed={x.descriptor.digest}, rule=rule)
    assert target.status.value == "noncompliant"
    assert [f.node for f in target.findings] == [y.descriptor.digest]


def test_a_shadowed_entry_is_not_what_a_runtime_pulls() -> None:
    """[X linux/amd64, Y linux/amd64]: a runtime asking for linux/amd64 takes X."""
    x, y = image("x"), image("y")
    root = index(entry(x, "linux/amd64"), entry(y, "linux/amd64"))
    for rule in (
        CoverageRule(require=Require.PLATFORMS),
        CoverageRule(require=Require.PLATFORMS, platforms=(Platform.parse("linux/amd64"),)),
    ):
        target = audit(root, x, y, signed={x.descriptor.digest}, rule=rule)
        assert target.status.value == "compliant", target.findings
        verdicts = {v.node.digest: v.required for v in target.nodes}
        assert verdicts[y.descriptor.digest] is False
        flipped = audit(root, x, y, signed={y.descriptor.digest}, rule=rule)
        assert flipped.status.value == "noncompliant"


@pytest.mark.parametrize("require", [Require.EITHER, Require.PLATFORMS, Require.BOTH])
def test_a_manifest_shared_by_two_nested_indexes_counts_under_both(require: Require) -> None:
    """Outer -> (I1 signed -> X), (I2 unsigned -> X, Y signed): X is pulled through I2 too, so
    under ``either`` I2 is not covered by its children and the unsigned outer index is not
    covered either."""
    x, y = image("x"), image("y")
    i1 = index(entry(x, "linux/amd64"))
    i2 = index(entry(x, "linux/amd64"), entry(y, "linux/arm64"))
    outer = index(entry(i1, None), entry(i2, None))
    signed = {i1.descriptor.digest, y.descriptor.digest}
    target = audit(outer, i1, i2, x, y, signed=signed, rule=CoverageRule(require=require))
    assert target.status.value == "noncompliant", target.findings
    assert x.descriptor.digest in {f.node for f in target.findings}


def test_shared_children_in_a_deep_dag_are_evaluated_once() -> None:
    """Seven levels of 12 indexes, each listing every index of the level below: 12^7 paths."""
    leaf = image("leaf")
    level = [index(entry(leaf, f"linux/amd64/v{k}")) for k in range(12)]
    everything = [leaf, *level]
    for depth in range(6):
        level = [
            index(*(entry(child, None) for child in level), entry(leaf, f"linux/arm{depth}/v{k}"))
            for k in range(12)
        ]
        everything.extend(level)
    root = index(*(entry(child, None) for child in level))
    manifests = {m.descriptor.digest: m for m in (root, *everything)}
    graph = notation_graph(Snapshot("x:v1", root.descriptor.digest, manifests), "x:v1")
    assert len(graph.nodes) == 1 + 7 * 12 + 1
    target = evaluate_target("x:v1", graph, {}, CoverageRule(require=Require.EITHER))
    assert target.status.value == "noncompliant"
