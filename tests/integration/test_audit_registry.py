"""``auditor audit now`` end to end against the real docker-registry (distribution 2.8).

Layouts are built and signed here (tests/support/scenarios.py), pushed with the project's
pusher, and the JSON report is compared node by node with what was made: digests, kinds,
platforms, parents, statuses and the exact signature digests per node.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditor.oci import mediatypes as mt
from auditor.oci.digest import fallback_tag, is_fallback_tag
from auditor.registry.push import PushedLayout
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import (
    NOTATION_LAYOUTS,
    SignedSample,
    assert_report_lines,
    audit_json,
    build_signed_sample,
    expected_node,
    graph_view,
    isolate_environment,
    notation_layout,
    notation_layout_names,
    push,
    sample_graph,
)

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not NOTATION_LAYOUTS.is_dir(), reason="../shared/fixtures not present"),
]

TRUSTED_STATUSES = {
    "nested": "unsigned",
    "index": "signed",
    "linux/amd64": "signed",
    "linux/arm64/v8": "invalid",
    "linux/ppc64le": "unsigned",
    "attestation": "unsigned",
}
# No trust policy: whatever carries a signature is "unverified", whoever signed it.
UNTRUSTED_STATUSES = {
    **TRUSTED_STATUSES,
    **dict.fromkeys(("index", "linux/amd64", "linux/arm64/v8"), "unverified"),
}
TIMESTAMP_LAYOUTS = ("e2e-with-timestamped-signature", "e2e-with-invalid-timestamped-signature")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedSample:
    return build_signed_sample(tmp_path_factory.mktemp("signed-sample"))


@pytest.fixture(scope="module")
def sample_repo(registry: RunningRegistry, signed: SignedSample) -> str:
    """``host/repo`` holding the signed sample, fallback tags maintained like notation does."""
    repository = f"it/sample-{uuid.uuid4().hex[:8]}"
    pushed = push(registry.host, signed.path, repository, update_fallback_tags=True)
    assert set(pushed.tags) == {"v1", "v1-nested", "v1-single"}
    # The repository really holds fallback tags, so the whole-repo audit must skip them.
    assert pushed.fallback_tags
    assert all(is_fallback_tag(t) for t in pushed.fallback_tags)
    return f"{registry.host}/{repository}"


@dataclass(frozen=True)
class NotationRepos:
    """Every notation layout pushed as is (``as_is``); the timestamp layouts also pushed with
    ``update_fallback_tags=True`` (``updated``) and once more with their fallback tag removed
    afterwards (``untagged``). Values are ``host/repo``."""

    as_is: dict[str, str]
    pushed: dict[str, PushedLayout]
    updated: dict[str, str]
    untagged: dict[str, str]


@pytest.fixture(scope="module")
def notation_repos(registry: RunningRegistry) -> NotationRepos:
    run = uuid.uuid4().hex[:8]
    repos = NotationRepos({}, {}, {}, {})
    for name in notation_layout_names():
        repository = f"notation-{run}/{name}"
        repos.pushed[name] = push(registry.host, NOTATION_LAYOUTS / name, repository)
        repos.as_is[name] = f"{registry.host}/{repository}"
    for name in TIMESTAMP_LAYOUTS:
        repository = f"notation-{run}-updated/{name}"
        push(registry.host, NOTATION_LAYOUTS / name, repository, update_fallback_tags=True)
        repos.updated[name] = f"{registry.host}/{repository}"

        repository = f"notation-{run}-untagged/{name}"
        pushed = push(registry.host, NOTATION_LAYOUTS / name, repository)
        (index_digest,) = pushed.fallback_tags.values()
        # Deleting the fallback index by digest removes its tag (distribution has no tag
        # delete); the signature manifest itself stays in the repository.
        gone = httpx.delete(f"{registry.url}/v2/{repository}/manifests/{index_digest}")
        assert gone.status_code == 202, gone.text
        tags = httpx.get(f"{registry.url}/v2/{repository}/tags/list").json()["tags"]
        assert tags == ["v1"]
        repos.untagged[name] = f"{registry.host}/{repository}"
    return repos


def _trust(signed: SignedSample) -> list[str]:
    return ["--trust-policy", str(signed.trust_policy), "--trust-store", str(signed.trust_store)]


def _only_target(report: dict[str, Any]) -> dict[str, Any]:
    (target,) = report["targets"]
    assert isinstance(target, dict)
    return target


def _assert_signature_details(signed: SignedSample, target: dict[str, Any], verified: bool) -> None:
    """Each signature's format is the envelope it was made with; status follows the signer."""
    seen = 0
    for node in target["nodes"]:
        for signature in node["signatures"]:
            digest = signature["digest"]
            assert signature["format"] == signed.formats[digest]
            if verified:
                assert signature["status"] == ("valid" if digest in signed.trusted else "invalid")
            else:
                assert signature["status"] == "unverified"
            seen += 1
    assert seen == sum(len(signed.signatures_of(n["digest"])) for n in target["nodes"])


# -- the signed multi-platform sample ---------------------------------------------------------


def test_tag_with_trust_policy_gives_exact_graph(signed: SignedSample, sample_repo: str) -> None:
    run = audit_json(f"{sample_repo}:v1", *_trust(signed))
    assert run.code == 1, run.stderr  # linux/arm64/v8 invalid, linux/ppc64le unsigned
    assert_report_lines(run)  # one stderr line per finished target, nothing else
    target = _only_target(run.report)
    assert target["reference"] == f"{sample_repo}:v1"
    assert target["digest"] == signed.sample.index.digest
    assert target["media_type"] == mt.OCI_INDEX
    assert target["status"] == "noncompliant"
    assert target["error"] is None
    assert graph_view(target) == sample_graph(signed, TRUSTED_STATUSES)
    _assert_signature_details(signed, target, verified=True)
    # Two signatures on the index: the trusted one and the stranger's, both reported.
    index_node = target["nodes"][0]
    assert len(index_node["signatures"]) == 2
    assert {s["status"] for s in index_node["signatures"]} == {"valid", "invalid"}
    summary = run.report["summary"]["nodes"]
    assert (summary["signed"], summary["invalid"], summary["unsigned"]) == (2, 1, 2)


def test_digest_form_gives_the_same_graph(signed: SignedSample, sample_repo: str) -> None:
    digest = signed.sample.index.digest
    run = audit_json(f"{sample_repo}@{digest}", *_trust(signed))
    assert run.code == 1, run.stderr
    target = _only_target(run.report)
    assert target["reference"] == f"{sample_repo}@{digest}"
    assert target["digest"] == digest
    assert graph_view(target) == sample_graph(signed, TRUSTED_STATUSES)


def test_whole_repository_audits_every_tag_but_fallback_tags(
    signed: SignedSample, sample_repo: str
) -> None:
    run = audit_json(sample_repo, *_trust(signed))
    assert run.code == 1, run.stderr
    targets = {t["reference"]: t for t in run.report["targets"]}
    assert list(targets) == [f"{sample_repo}:{tag}" for tag in ("v1", "v1-nested", "v1-single")]
    sample = signed.sample

    v1 = targets[f"{sample_repo}:v1"]
    assert v1["digest"] == sample.index.digest
    assert graph_view(v1) == sample_graph(signed, TRUSTED_STATUSES)

    nested = targets[f"{sample_repo}:v1-nested"]
    assert nested["digest"] == sample.nested_index.digest
    assert graph_view(nested) == sample_graph(
        signed, TRUSTED_STATUSES, root=sample.nested_index.digest
    )

    single = targets[f"{sample_repo}:v1-single"]
    assert single["digest"] == sample.single.digest
    assert single["media_type"] == mt.OCI_MANIFEST
    assert single["status"] == "compliant"
    assert graph_view(single) == [
        expected_node(
            sample.single.digest,
            "manifest",
            status="signed",
            signatures=signed.signatures_of(sample.single.digest),
        )
    ]
    for target in targets.values():
        _assert_signature_details(signed, target, verified=True)


def test_without_trust_policy_signatures_are_unverified_never_signed(
    signed: SignedSample, sample_repo: str
) -> None:
    run = audit_json(sample_repo)
    assert_report_lines(run)  # one stderr line per finished target, nothing else
    targets = {t["reference"]: t for t in run.report["targets"]}
    v1 = targets[f"{sample_repo}:v1"]
    assert graph_view(v1) == sample_graph(signed, UNTRUSTED_STATUSES)
    nested = targets[f"{sample_repo}:v1-nested"]
    assert graph_view(nested) == sample_graph(
        signed, UNTRUSTED_STATUSES, root=signed.sample.nested_index.digest
    )
    single = targets[f"{sample_repo}:v1-single"]
    assert [(n["digest"], n["status"]) for n in single["nodes"]] == [
        (signed.sample.single.digest, "unverified")
    ]
    for target in targets.values():
        _assert_signature_details(signed, target, verified=False)
        for node in target["nodes"]:
            assert node["status"] not in ("signed", "invalid")
    assert run.report["summary"]["nodes"]["signed"] == 0
    # Unsigned platforms are findings whether or not anything could be verified.
    assert run.code == 1


# -- notation's e2e layouts, pushed ------------------------------------------------------------


@pytest.mark.parametrize("name", notation_layout_names() if NOTATION_LAYOUTS.is_dir() else [])
def test_notation_layout_via_registry(name: str, notation_repos: NotationRepos) -> None:
    """Through the registry, a node's signatures are exactly what its fallback tag lists.

    A layout's own fallback tag is pushed as the layout has it; a layout without one gets the
    tag notation would have written when signing (every referrer found through ``subject``).
    """
    layout = notation_layout(name)
    pushed = notation_repos.pushed[name]
    expected = list(layout.fallback if layout.fallback is not None else layout.in_layout)
    if expected:
        assert list(pushed.fallback_tags) == [fallback_tag(layout.image)]
    run = audit_json(f"{notation_repos.as_is[name]}:v1")
    assert_report_lines(run)  # one stderr line per finished target, nothing else
    target = _only_target(run.report)
    assert target["reference"] == f"{notation_repos.as_is[name]}:v1"
    assert target["digest"] == layout.image
    assert target["media_type"] == layout.image_media_type
    (node,) = target["nodes"]
    assert node["kind"] == "manifest"
    assert node["digest"] == layout.image
    assert (node["platform"], node["parent"], node["attestation_for"]) == (None, None, None)
    assert sorted(s["digest"] for s in node["signatures"]) == expected
    assert node["other_referrers"] == []
    if name == "e2e-invalid-signature":
        # Its "envelope" layer is a plain tar: known bad without any trust policy. The node
        # stays "unverified" (no trust policy: nothing is ever "signed" or judged per node).
        (signature,) = node["signatures"]
        assert (signature["status"], signature["format"]) == ("invalid", "notation")
        assert "0 envelope layers" in signature["reason"]
        assert node["status"] == "unverified"
    elif expected:
        assert {s["status"] for s in node["signatures"]} == {"unverified"}
        assert {s["format"] for s in node["signatures"]} == {"notation/jws"}
        assert node["status"] == "unverified"
    else:
        assert node["status"] == "unsigned"
        assert run.code == 1


def test_multiple_signatures_registry_sees_only_the_fallback_listed_one(
    notation_repos: NotationRepos,
) -> None:
    layout = notation_layout("e2e-valid-multiple-signatures")
    assert layout.fallback is not None
    assert len(layout.fallback) == 1
    assert len(layout.in_layout) == 2
    run = audit_json(f"{notation_repos.as_is[layout.name]}:v1")
    (node,) = _only_target(run.report)["nodes"]
    assert [s["digest"] for s in node["signatures"]] == list(layout.fallback)


@pytest.mark.parametrize("name", TIMESTAMP_LAYOUTS)
def test_timestamp_layouts_are_found_only_through_a_fallback_tag(
    name: str, notation_repos: NotationRepos
) -> None:
    """The layout lists its signature only through ``subject``; distribution 2.8 has no
    referrers API, so the registry shows it only where a fallback tag lists it."""
    layout = notation_layout(name)
    assert layout.fallback is None
    assert len(layout.in_layout) == 1

    for repo in (notation_repos.as_is[name], notation_repos.updated[name]):
        run = audit_json(f"{repo}:v1")
        (node,) = _only_target(run.report)["nodes"]
        assert node["digest"] == layout.image
        assert [s["digest"] for s in node["signatures"]] == list(layout.in_layout)
        assert [s["format"] for s in node["signatures"]] == ["notation/jws"]
        assert node["status"] == "unverified"

    without_tag = audit_json(f"{notation_repos.untagged[name]}:v1")
    (node,) = _only_target(without_tag.report)["nodes"]
    assert node["digest"] == layout.image
    assert node["signatures"] == []
    assert node["status"] == "unsigned"
    assert without_tag.code == 1
    # The signature manifest is in the repository all the same: only its listing is gone.
    (signature,) = layout.in_layout
    repo = notation_repos.untagged[name]
    host, _, repository = repo.partition("/")
    fetched = httpx.get(
        f"http://{host}/v2/{repository}/manifests/{signature}",
        headers={"Accept": mt.OCI_MANIFEST},
    )
    assert fetched.status_code == 200
