"""``auditor sign`` beyond the plain registry round trip.

* notation's own e2e key: our signatures over notation's e2e image are judged by the verifier
  exactly as notation's signature over the same image is, under the e2e trust policies;
* ``oci-layout:`` targets, signed in place;
* RFC 3161 timestamps from a real TSA on 127.0.0.1 (tests/support/tsa_server.py), and a TSA
  that misbehaves;
* a registry with the referrers API: distribution 2.8 has none, so the ``OCI-Subject`` header
  is added to its manifest-PUT answers by a forwarding transport (the only injected part);
* hostile answers while publishing: a fallback tag that is not an index; a registry (behind a
  fault proxy on 127.0.0.1, tests/support/hostile.py) that hangs on a manifest PUT or
  answers 500.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditor.errors import MalformedContent
from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.digest import fallback_tag
from auditor.registry.client import RegistryClient
from auditor.registry.push import push_manifest
from auditor.signing.keys import load_signing_key
from devkit.samples import SampleLayout, write_sample_layout
from tests.support.hostile import FaultProxy, Request, Response, Rule, fault_proxy
from tests.support.paths import FIXTURES
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import CliRun, audit_json, isolate_environment, push, run_cli
from tests.support.tsa_server import Tsa, serve_tsa

E2E = FIXTURES / "notation-e2e"
LOCALKEYS = E2E / "config" / "localkeys"
POLICIES = E2E / "config" / "trustpolicies"
E2E_KEY = ["--key", str(LOCALKEYS / "e2e.key"), "--cert", str(LOCALKEYS / "e2e.crt")]

pytestmark = pytest.mark.skipif(not E2E.is_dir(), reason="../shared/fixtures not present")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path)


def _store(root: Path, cert: str) -> Path:
    folder = root / "x509" / "ca" / "e2e"
    folder.mkdir(parents=True)
    shutil.copy(LOCALKEYS / cert, folder / cert)
    return root


def _signature_views(run: CliRun) -> list[dict[str, Any]]:
    (target,) = run.report["targets"]
    (node,) = target["nodes"]
    keep = ("status", "failed_validation", "reason", "signer", "warnings", "timestamped")
    return [{k: s[k] for k in keep} for s in node["signatures"]]


@pytest.mark.parametrize(
    ("policy", "cert"),
    [
        ("trustpolicy.json", "e2e.crt"),
        ("valid_trusted_identity_trustpolicy.json", "e2e.crt"),
        ("permissive_trustpolicy.json", "e2e.crt"),
        ("audit_trustpolicy.json", "new_e2e.crt"),
        ("trustpolicy.json", "new_e2e.crt"),
    ],
)
def test_e2e_key_signatures_are_judged_like_notations_own(
    tmp_path: Path, policy: str, cert: str
) -> None:
    layout = tmp_path / "e2e"
    shutil.copytree(E2E / "registry" / "oci_layout" / "e2e", layout)
    signed = run_cli(["sign", f"oci-layout:{layout}:v1", *E2E_KEY, "--format", "json"])
    assert signed.code == 0, signed.stderr
    (node,) = signed.report["nodes"]
    assert node["outcome"] == "signed"

    store = _store(tmp_path / "store", cert)
    trust = ["--trust-policy", str(POLICIES / policy), "--trust-store", str(store)]
    ours = audit_json(f"oci-layout:{layout}:v1", *trust)
    notations = audit_json(
        f"oci-layout:{E2E / 'registry' / 'oci_layout' / 'e2e-valid-signature'}:v1", *trust
    )
    assert ours.code == notations.code
    assert _signature_views(ours) == _signature_views(notations)
    assert ours.report["targets"][0]["nodes"][0]["status"] == (
        notations.report["targets"][0]["nodes"][0]["status"]
    )


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleLayout:
    return write_sample_layout(tmp_path_factory.mktemp("unsigned"), name="targets")


def _identity(root: Path, *extra: str) -> tuple[list[str], list[str]]:
    made = run_cli(["keys", "generate-test", "t", "--dir", str(root), "--key-type", "ec256",
                    *extra])
    assert made.code == 0, made.stderr
    keys = ["--key", str(root / "localkeys/t.key"), "--cert", str(root / "localkeys/t.crt")]
    trust = ["--trust-policy", str(root / "trustpolicy.oci.json"),
             "--trust-store", str(root / "truststore")]
    return keys, trust


def test_oci_layout_target_signed_in_place(tmp_path: Path, sample: SampleLayout) -> None:
    layout = tmp_path / "layout"
    shutil.copytree(sample.path, layout)
    keys, trust = _identity(tmp_path / "id")
    ref = f"oci-layout:{layout}:v1"
    assert audit_json(ref, *trust).code == 1
    run = run_cli(["sign", ref, *keys, *trust, "-r", "--format", "json"])
    assert run.code == 0, run.stderr
    assert sorted(n["outcome"] for n in run.report["nodes"]) == ["signed"] * 4 + ["skipped"]
    audit = audit_json(ref, *trust)
    assert audit.code == 0
    again = run_cli(["sign", ref, *keys, *trust, "-r", "--format", "json"])
    assert {n["outcome"] for n in again.report["nodes"]} == {"skipped"}
    tar = tmp_path / "layout.tar"
    shutil.make_archive(str(tar.with_suffix("")), "tar", layout)
    refused = run_cli(["sign", f"oci-layout:{tar}:v1", *keys])
    assert refused.code == 3
    assert "must be a directory" in refused.stderr


def _timestamp_policy(identity: Path, tsa: Tsa) -> None:
    """Trust the TSA root and demand timestamps, in the generated policy."""
    folder = identity / "truststore" / "x509" / "tsa" / "test-tsa"
    folder.mkdir(parents=True)
    (folder / "root.pem").write_bytes(tsa.root_pem())
    path = identity / "trustpolicy.oci.json"
    policy = json.loads(path.read_text())
    statement = policy["trustPolicies"][0]
    statement["trustStores"].append("tsa:test-tsa")
    statement["signatureVerification"]["verifyTimestamp"] = "always"
    path.write_text(json.dumps(policy))


@pytest.mark.parametrize("fmt", ["jws", "cose"])
def test_timestamped_signatures_from_a_local_tsa(
    tmp_path: Path, sample: SampleLayout, fmt: str
) -> None:
    layout = tmp_path / "layout"
    shutil.copytree(sample.path, layout)
    keys, trust = _identity(tmp_path / "id")
    with serve_tsa(Tsa()) as tsa:
        _timestamp_policy(tmp_path / "id", tsa)
        root = tmp_path / "tsa-root.pem"
        root.write_bytes(tsa.root_pem())
        run = run_cli([
            "sign", f"oci-layout:{layout}:v1-single", *keys, "--signature-format", fmt,
            "--timestamp-url", tsa.url, "--timestamp-root-cert", str(root), "--format", "json",
        ])
        assert run.code == 0, run.stderr
        assert tsa.hits == 1
    audit = audit_json(f"oci-layout:{layout}:v1-single", *trust)
    assert audit.code == 0, audit.stdout
    (signature,) = audit.report["targets"][0]["nodes"][0]["signatures"]
    assert signature["status"] == "valid"
    assert signature["timestamped"] is True


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("http500", "HTTP 500"),
        ("garbage", "not a timestamp response"),
        ("rejection", "not granted"),
        ("wrong_imprint", "not over this signature"),
    ],
)
def test_a_misbehaving_tsa_fails_the_node_and_publishes_nothing(
    tmp_path: Path, sample: SampleLayout, mode: str, message: str
) -> None:
    layout = tmp_path / "layout"
    shutil.copytree(sample.path, layout)
    before = (layout / "index.json").read_bytes()
    keys, _ = _identity(tmp_path / "id")
    with serve_tsa(Tsa(mode=mode)) as tsa:  # type: ignore[arg-type]
        root = tmp_path / "tsa-root.pem"
        root.write_bytes(tsa.root_pem())
        run = run_cli([
            "sign", f"oci-layout:{layout}:v1-single", *keys, "--timestamp-url", tsa.url,
            "--timestamp-root-cert", str(root), "--format", "json",
        ])
    assert run.code == 1
    (node,) = run.report["nodes"]
    assert node["outcome"] == "failed"
    assert message in node["reason"]
    assert tsa.url in node["reason"]
    assert (layout / "index.json").read_bytes() == before


def _acknowledge_subject(request: Request, answer: Response) -> Response | None:
    """What an OCI 1.1 registry with the referrers API adds to a referrer's manifest PUT."""
    if request.method != "PUT" or "/manifests/" not in request.path or answer.status != 201:
        return None
    subject = json.loads(request.body).get("subject")
    if not subject:
        return None
    return Response(answer.status, [*answer.headers, ("OCI-Subject", subject["digest"])],
                    answer.body)


@pytest.mark.registry
def test_a_registry_with_the_referrers_api_gets_no_fallback_tag(
    registry: RunningRegistry, sample: SampleLayout, tmp_path: Path
) -> None:
    repository = f"sign/ref-{uuid.uuid4().hex[:8]}"
    push(registry.host, sample.path, repository)
    keys, _ = _identity(tmp_path / "id")
    with fault_proxy(registry.url) as proxy:
        proxy.rules = [_acknowledge_subject, _relocate(proxy)]
        run = run_cli(["sign", f"{proxy.host}/{repository}:v1", *keys, "-r", "--format", "json"])
        puts = [r.path for r in proxy.requests if r.method == "PUT" and "/manifests/" in r.path]
    assert run.code == 0, run.stderr
    signed = [n for n in run.report["nodes"] if n["outcome"] == "signed"]
    assert len(signed) == 4
    assert {n["via"] for n in signed} == {"referrers API"}
    # Fallback tags are read (the crawl asks for referrers) but never written.
    assert len(puts) == 4  # the four signature manifests, by digest
    assert not [p for p in puts if "/manifests/sha256-" in p]
    listed = asyncio.run(_tags(registry.host, repository))
    assert not [t for t in listed if t.startswith("sha256-")]


async def _tags(host: str, repository: str) -> list[str]:
    async with httpx.AsyncClient(timeout=10) as http:
        return await RegistryClient(host, http).list_tags(repository)


@pytest.mark.registry
def test_a_fallback_tag_that_is_not_an_index_is_named_and_nothing_is_signed_over_it(
    registry: RunningRegistry, sample: SampleLayout, tmp_path: Path
) -> None:
    repository = f"sign/hostile-{uuid.uuid4().hex[:8]}"
    push(registry.host, sample.path, repository)
    amd64 = sample.platforms["linux/amd64"]
    raw = (sample.path / "blobs" / "sha256" / amd64.digest.split(":")[1]).read_bytes()
    tag = fallback_tag(sample.index.digest)

    async def plant() -> None:
        # Someone put an image manifest where the index's fallback index belongs.
        async with httpx.AsyncClient(timeout=10) as http:
            client = RegistryClient(registry.host, http)
            await push_manifest(client, repository, tag, raw, mt.OCI_MANIFEST)

    asyncio.run(plant())
    keys, _ = _identity(tmp_path / "id")
    run = run_cli(["sign", f"{registry.host}/{repository}:v1", *keys, "-r", "--format", "json"])
    assert run.code == 1
    assert "Traceback" not in run.stderr
    by_digest = {n["digest"]: n for n in run.report["nodes"]}
    index = by_digest[sample.index.digest]
    # The crawl already could not read the index's referrers: it is not signed over.
    assert index["outcome"] == "failed"
    assert f"fallback tag {tag} is not an index" in index["reason"]
    assert by_digest[amd64.digest]["outcome"] == "signed"  # the others are unaffected

    # And the publisher itself refuses to merge into it (the tag changed after the crawl).
    key = load_signing_key(Path(keys[1]), Path(keys[3]))

    async def publish_directly() -> None:
        from auditor.notary.sign import sign_jws, signature_manifest
        from auditor.signing.publish import RegistryPublisher

        subject = Descriptor(mt.OCI_INDEX, sample.index.digest, sample.index.size)
        envelope = sign_jws(subject, key.key, key.chain, signing_time=datetime.now(UTC))
        manifest, blobs = signature_manifest(subject, envelope, mt.JWS_ENVELOPE)
        async with httpx.AsyncClient(timeout=10) as http:
            publisher = RegistryPublisher(RegistryClient(registry.host, http), repository)
            await publisher.publish(subject, manifest, blobs)

    with pytest.raises(MalformedContent, match=f"{tag}: fallback tag does not point at an index"):
        asyncio.run(publish_directly())


def _relocate(proxy: FaultProxy) -> Rule:
    """Upload ``Location``s name the registry behind the proxy; point them at the proxy."""

    def rule(_request: Request, answer: Response) -> Response | None:
        if not any(k.lower() == "location" for k, _ in answer.headers):
            return None
        headers = [
            (k, v.replace(proxy.upstream, proxy.url) if k.lower() == "location" else v)
            for k, v in answer.headers
        ]
        return Response(answer.status, headers, answer.body)

    return rule


def _fault(method: str, path_part: str, answer: Response) -> Rule:
    def rule(request: Request, _answer: Response) -> Response | None:
        return answer if request.method == method and path_part in request.path else None

    return rule


@pytest.mark.registry
@pytest.mark.parametrize(
    ("method", "path_part", "answer", "message"),
    [
        # Headers promising a body that never comes.
        ("PUT", "/manifests/sha256:", Response(201, [("Content-Length", "64")], hang=True),
         "ReadTimeout"),
        ("PUT", "/manifests/sha256-", Response(500, body=b"injected"), "HTTP 500"),
        ("POST", "/blobs/uploads/", Response(500, body=b"injected"), "HTTP 500"),
    ],
    ids=["manifest-put-hangs", "fallback-put-500", "upload-500"],
)
def test_a_registry_failing_the_push_fails_the_nodes_by_name_within_bounds(
    registry: RunningRegistry,
    sample: SampleLayout,
    tmp_path: Path,
    method: str,
    path_part: str,
    answer: Response,
    message: str,
) -> None:
    repository = f"sign/faulty-{uuid.uuid4().hex[:8]}"
    push(registry.host, sample.path, repository)
    keys, _ = _identity(tmp_path / "id")
    config = tmp_path / "auditor.yaml"
    config.write_text("limits:\n  timeout_seconds: 1\n")
    with fault_proxy(registry.url) as proxy:
        proxy.rules = [_fault(method, path_part, answer), _relocate(proxy)]
        started = time.monotonic()
        run = run_cli([
            "sign", f"{proxy.host}/{repository}:v1-single", *keys, "--config", str(config),
            "--format", "json",
        ])
        elapsed = time.monotonic() - started
        hits = [r for r in proxy.requests if r.method == method and path_part in r.path]
        at_fault = proxy.host
    assert hits
    assert elapsed < 20, f"signing took {elapsed:.1f}s against a failing registry"
    assert run.code == 1, run.stderr
    assert "Traceback" not in run.stderr
    (node,) = run.report["nodes"]
    assert node["outcome"] == "failed"
    assert message in node["reason"]
    assert at_fault in node["reason"]  # the registry at fault is named
