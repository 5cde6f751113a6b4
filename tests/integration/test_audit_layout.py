"""``audit now oci-layout:...`` end to end, and the same layouts through the real registry.

An OCI layout on disk and the registry it was pushed to must give the same graph: same
digests, kinds, platforms, parents and signatures. The one documented difference: in a layout,
referrers are also found through ``subject``, so a signature that the layout's own fallback
tag index leaves out (notation's e2e-valid-multiple-signatures) is seen only there.
"""

from __future__ import annotations

import json
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from auditor.oci import mediatypes as mt
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import (
    BUILDX_TAR,
    NOTATION_LAYOUTS,
    SignedSample,
    assert_report_lines,
    audit_json,
    build_signed_sample,
    expected_node,
    graph_view,
    isolate_environment,
    matches_abbreviated,
    notation_expected_signatures,
    notation_layout,
    notation_layout_names,
    push,
    sample_graph,
)

pytestmark = pytest.mark.skipif(
    not NOTATION_LAYOUTS.is_dir() or not BUILDX_TAR.is_file(),
    reason="../shared/fixtures not present",
)

STATUSES = {
    "nested": "unsigned",
    "index": "signed",
    "linux/amd64": "signed",
    "linux/arm64/v8": "invalid",
    "linux/ppc64le": "unsigned",
    "attestation": "unsigned",
}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedSample:
    return build_signed_sample(tmp_path_factory.mktemp("layout-sample"), name="layout")


def _trust(signed: SignedSample) -> list[str]:
    return ["--trust-policy", str(signed.trust_policy), "--trust-store", str(signed.trust_store)]


def _only_target(report: dict[str, Any]) -> dict[str, Any]:
    (target,) = report["targets"]
    assert isinstance(target, dict)
    return target


def _without_signatures(view: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in node.items() if k not in ("signatures", "status")} for node in view]


# -- the signed sample ------------------------------------------------------------------------


def test_sample_layout_tag_gives_exact_graph(signed: SignedSample) -> None:
    reference = f"oci-layout:{signed.path}:v1"
    run = audit_json(reference, *_trust(signed))
    assert run.code == 1, run.stderr
    assert_report_lines(run)  # one stderr line per finished target, nothing else
    target = _only_target(run.report)
    assert target["reference"] == reference
    assert target["digest"] == signed.sample.index.digest
    assert target["media_type"] == mt.OCI_INDEX
    assert graph_view(target) == sample_graph(signed, STATUSES)
    for node in target["nodes"]:
        for signature in node["signatures"]:
            assert signature["format"] == signed.formats[signature["digest"]]
            trusted = signature["digest"] in signed.trusted
            assert signature["status"] == ("valid" if trusted else "invalid")


def test_whole_sample_layout_audits_every_tag_but_fallback_tags(signed: SignedSample) -> None:
    index = json.loads((signed.path / "index.json").read_bytes())["manifests"]
    names = {e.get("annotations", {}).get(mt.ANNOTATION_REF_NAME) for e in index}
    assert any(n and n.startswith("sha256-") for n in names)  # the layout carries them

    run = audit_json(f"oci-layout:{signed.path}", *_trust(signed))
    assert run.code == 1, run.stderr
    targets = {t["reference"]: t for t in run.report["targets"]}
    base = f"oci-layout:{signed.path}"
    assert list(targets) == [f"{base}:v1", f"{base}:v1-nested", f"{base}:v1-single"]
    sample = signed.sample
    assert graph_view(targets[f"{base}:v1"]) == sample_graph(signed, STATUSES)
    assert graph_view(targets[f"{base}:v1-nested"]) == sample_graph(
        signed, STATUSES, root=sample.nested_index.digest
    )
    assert graph_view(targets[f"{base}:v1-single"]) == [
        expected_node(
            sample.single.digest,
            "manifest",
            status="signed",
            signatures=signed.signatures_of(sample.single.digest),
        )
    ]


def test_sample_layout_digest_form(signed: SignedSample) -> None:
    digest = signed.sample.platforms["linux/arm64/v8"].digest
    run = audit_json(f"oci-layout:{signed.path}@{digest}", *_trust(signed))
    target = _only_target(run.report)
    assert target["digest"] == digest
    # Audited on its own, a platform manifest is a "manifest" node with no parent.
    assert graph_view(target) == [
        expected_node(digest, "manifest", status="invalid", signatures=signed.signatures_of(digest))
    ]
    assert run.code == 1


@pytest.mark.registry
def test_sample_layout_and_registry_give_the_same_graph(
    signed: SignedSample, registry: RunningRegistry
) -> None:
    repository = f"it/layout-{uuid.uuid4().hex[:8]}"
    push(registry.host, signed.path, repository, update_fallback_tags=True)
    sample = signed.sample
    expected = {
        "v1": sample_graph(signed, STATUSES),
        "v1-nested": sample_graph(signed, STATUSES, root=sample.nested_index.digest),
        "v1-single": [
            expected_node(
                sample.single.digest,
                "manifest",
                status="signed",
                signatures=signed.signatures_of(sample.single.digest),
            )
        ],
    }
    for tag, graph in expected.items():
        from_layout = audit_json(f"oci-layout:{signed.path}:{tag}", *_trust(signed))
        from_registry = audit_json(f"{registry.host}/{repository}:{tag}", *_trust(signed))
        layout_target = _only_target(from_layout.report)
        registry_target = _only_target(from_registry.report)
        assert layout_target["digest"] == registry_target["digest"] == graph[0]["digest"]
        assert layout_target["status"] == registry_target["status"]
        assert graph_view(layout_target) == graph_view(registry_target) == graph
        assert from_layout.code == from_registry.code


# -- notation's e2e layouts --------------------------------------------------------------------


@pytest.mark.parametrize("name", notation_layout_names() if NOTATION_LAYOUTS.is_dir() else [])
def test_notation_layout_signatures_found_through_subject(name: str) -> None:
    layout = notation_layout(name)
    written = notation_expected_signatures(name)
    # The fixture's own notes and its index.json agree on which signatures exist.
    assert len(layout.in_layout) == len(written)
    for text in written:
        assert sum(matches_abbreviated(d, text) for d in layout.in_layout) == 1

    run = audit_json(f"oci-layout:{layout.path}:v1")
    assert_report_lines(run)  # one stderr line per finished target, nothing else
    target = _only_target(run.report)
    assert target["digest"] == layout.image
    assert graph_view(target) == [
        expected_node(
            layout.image,
            "manifest",
            status="unverified" if layout.in_layout else "unsigned",
            signatures=layout.in_layout,
        )
    ]


@pytest.mark.registry
def test_multiple_signatures_layout_sees_the_one_its_fallback_tag_leaves_out(
    registry: RunningRegistry,
) -> None:
    layout = notation_layout("e2e-valid-multiple-signatures")
    repository = f"notation-{uuid.uuid4().hex[:8]}/{layout.name}"
    push(registry.host, layout.path, repository)

    via_layout = _only_target(audit_json(f"oci-layout:{layout.path}:v1").report)
    via_registry = _only_target(audit_json(f"{registry.host}/{repository}:v1").report)
    layout_sigs = {s["digest"] for s in via_layout["nodes"][0]["signatures"]}
    registry_sigs = {s["digest"] for s in via_registry["nodes"][0]["signatures"]}
    assert layout.fallback is not None
    assert registry_sigs == set(layout.fallback)
    assert layout_sigs == set(layout.in_layout)
    (only_in_layout,) = layout_sigs - registry_sigs
    assert registry_sigs < layout_sigs
    assert only_in_layout not in layout.fallback
    # Apart from that signature the two graphs are the same.
    assert _without_signatures(graph_view(via_layout)) == _without_signatures(
        graph_view(via_registry)
    )


# -- the real Docker buildx layout -------------------------------------------------------------


def _buildx_expected(extracted: Path) -> tuple[str, list[dict[str, Any]]]:
    """The graph the buildx layout must give, read from its own index (not from the auditor)."""
    (root,) = json.loads((extracted / "index.json").read_bytes())["manifests"]
    index_digest = str(root["digest"])
    blob = extracted / "blobs" / "sha256" / index_digest.split(":", 1)[1]
    children = json.loads(blob.read_bytes())["manifests"]
    nodes = [expected_node(index_digest, "index", status="unsigned")]
    for child in children:
        platform = child["platform"]
        text = f"{platform['os']}/{platform['architecture']}"
        annotations = child.get("annotations", {})
        is_attestation = annotations.get(mt.ANNOTATION_REFERENCE_TYPE) == mt.ATTESTATION_MANIFEST
        nodes.append(
            expected_node(
                child["digest"],
                "attestation" if is_attestation else "platform",
                platform=text,
                parent=index_digest,
                attestation_for=annotations.get(mt.ANNOTATION_REFERENCE_DIGEST),
                status="unsigned",
            )
        )
    return index_digest, nodes


@pytest.fixture(scope="module")
def buildx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("buildx")
    with tarfile.open(BUILDX_TAR) as archive:
        archive.extractall(target, filter="data")
    return target


def test_buildx_tar_reads_as_layout(buildx_dir: Path) -> None:
    index_digest, expected = _buildx_expected(buildx_dir)
    # What the fixture is documented to be: two platforms and two attestations.
    assert [(n["kind"], n["platform"]) for n in expected] == [
        ("index", None),
        ("platform", "linux/amd64"),
        ("platform", "linux/arm64"),
        ("attestation", "unknown/unknown"),
        ("attestation", "unknown/unknown"),
    ]
    assert [n["attestation_for"] for n in expected[3:]] == [
        expected[1]["digest"],
        expected[2]["digest"],
    ]

    run = audit_json(f"oci-layout:{BUILDX_TAR}")
    assert_report_lines(run)  # one stderr line per finished target, nothing else
    target = _only_target(run.report)
    # No ref.name in a buildx layout: its root is audited by digest.
    assert target["reference"] == f"oci-layout:{BUILDX_TAR}@{index_digest}"
    assert target["digest"] == index_digest
    assert target["media_type"] == mt.OCI_INDEX
    assert graph_view(target) == expected
    assert run.code == 1  # nothing is signed

    extracted = _only_target(audit_json(f"oci-layout:{buildx_dir}").report)
    assert graph_view(extracted) == expected


@pytest.mark.registry
def test_buildx_layout_pushed_gives_the_same_graph(
    buildx_dir: Path, registry: RunningRegistry
) -> None:
    index_digest, expected = _buildx_expected(buildx_dir)
    repository = f"buildx-{uuid.uuid4().hex[:8]}/hello"
    pushed = push(registry.host, buildx_dir, repository, default_tag="latest")
    assert pushed.tags == {"latest": index_digest}

    run = audit_json(f"{registry.host}/{repository}")
    assert_report_lines(run)  # one stderr line per finished target, nothing else
    target = _only_target(run.report)
    assert target["reference"] == f"{registry.host}/{repository}:latest"
    assert target["digest"] == index_digest
    assert graph_view(target) == expected
    from_tar = _only_target(audit_json(f"oci-layout:{BUILDX_TAR}").report)
    assert graph_view(from_tar) == graph_view(target)
