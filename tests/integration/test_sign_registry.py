"""``auditor sign`` end to end on the real docker-registry (distribution 2.8, no referrers API).

Unsigned sample images are pushed, signed through the CLI with keys made by ``auditor keys
generate-test``, then audited through the CLI with that trust configuration: every selected
node must come out ``signed``, every other one ``unsigned``. The same for ``--platform``,
``--no-index``, ``--missing``, re-runs, ``--dry-run``, and two signers at once.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditor.errors import NotFound
from auditor.oci.digest import fallback_tag
from auditor.registry.client import RegistryClient
from devkit.samples import SampleLayout, write_sample_layout
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import CliRun, audit_json, isolate_environment, push, run_cli

pytestmark = pytest.mark.registry


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleLayout:
    return write_sample_layout(tmp_path_factory.mktemp("unsigned"), name="sign-it")


@dataclass(frozen=True)
class Identity:
    """Files made by ``auditor keys generate-test`` in ``root``."""

    root: Path
    name: str

    @property
    def key_args(self) -> list[str]:
        keys = self.root / "localkeys"
        return ["--key", str(keys / f"{self.name}.key"), "--cert", str(keys / f"{self.name}.crt")]

    @property
    def trust_args(self) -> list[str]:
        return [
            "--trust-policy", str(self.root / "trustpolicy.oci.json"),
            "--trust-store", str(self.root / "truststore"),
        ]


def make_identity(root: Path, name: str, key_type: str = "ec256") -> Identity:
    made = run_cli(["keys", "generate-test", name, "--dir", str(root), "--key-type", key_type])
    assert made.code == 0, made.stderr
    return Identity(root, name)


def fresh_repo(registry: RunningRegistry, sample: SampleLayout) -> str:
    repository = f"sign/app-{uuid.uuid4().hex[:8]}"
    push(registry.host, sample.path, repository)
    return f"{registry.host}/{repository}"


def sign(ref: str, who: Identity, *extra: str) -> CliRun:
    return run_cli(["sign", ref, *who.key_args, *who.trust_args, "--format", "json", *extra])


def statuses(run: CliRun, sample: SampleLayout) -> dict[str, str]:
    """Node status by name (index, platform string, attestation) from an audit report."""
    names = {sample.index.digest: "index", sample.attestation.digest: "attestation"}
    names |= {d.digest: p for p, d in sample.platforms.items()}
    (target,) = run.report["targets"]
    return {names[n["digest"]]: n["status"] for n in target["nodes"]}


def outcomes(run: CliRun, sample: SampleLayout) -> dict[str, str]:
    names = {sample.index.digest: "index", sample.attestation.digest: "attestation"}
    names |= {d.digest: p for p, d in sample.platforms.items()}
    return {names[n["digest"]]: n["outcome"] for n in run.report["nodes"]}


ALL_PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/ppc64le")


@pytest.mark.parametrize(
    ("key_type", "fmt"),
    [("rsa2048", "jws"), ("ec256", "cose"), ("ec384", "jws"), ("rsa3072", "cose")],
)
def test_recursive_round_trip(
    registry: RunningRegistry, sample: SampleLayout, tmp_path: Path, key_type: str, fmt: str
) -> None:
    ref = fresh_repo(registry, sample) + ":v1"
    who = make_identity(tmp_path / "keys", "release", key_type)
    run = sign(ref, who, "--recursive", "--signature-format", fmt)
    assert run.code == 0, run.stderr + run.stdout
    assert outcomes(run, sample) == {
        "index": "signed", **dict.fromkeys(ALL_PLATFORMS, "signed"), "attestation": "skipped"
    }
    # distribution 2.8 has no referrers API: each signature is listed in its fallback tag.
    assert {n["via"] for n in run.report["nodes"] if n["outcome"] == "signed"} == {"fallback tag"}
    audit = audit_json(ref, *who.trust_args)
    assert audit.code == 0, audit.stdout
    assert statuses(audit, sample) == {
        "index": "signed", **dict.fromkeys(ALL_PLATFORMS, "signed"), "attestation": "unsigned"
    }
    (target,) = audit.report["targets"]
    formats = {s["format"] for n in target["nodes"] for s in n["signatures"]}
    assert formats == {f"notation/{fmt}"}


def test_platform_no_index_and_attestations(
    registry: RunningRegistry, sample: SampleLayout, tmp_path: Path
) -> None:
    ref = fresh_repo(registry, sample) + ":v1"
    who = make_identity(tmp_path / "keys", "ci")
    run = sign(ref, who, "-r", "--platform", "linux/arm64", "--no-index")
    assert run.code == 0, run.stderr
    assert outcomes(run, sample) == {
        "index": "skipped", "linux/amd64": "skipped", "linux/arm64/v8": "signed",
        "linux/ppc64le": "skipped", "attestation": "skipped",
    }
    assert statuses(audit_json(ref, *who.trust_args), sample) == {
        "index": "unsigned", "linux/amd64": "unsigned", "linux/arm64/v8": "signed",
        "linux/ppc64le": "unsigned", "attestation": "unsigned",
    }
    run = sign(ref, who, "-r", "--platform", "linux/amd64,linux/ppc64le", "--include-attestations")
    assert outcomes(run, sample) == {
        "index": "signed", "linux/amd64": "signed", "linux/arm64/v8": "skipped",
        "linux/ppc64le": "signed", "attestation": "signed",
    }
    assert set(statuses(audit_json(ref, *who.trust_args), sample).values()) == {"signed"}


def test_missing_fixes_the_ratify_case(
    registry: RunningRegistry, sample: SampleLayout, tmp_path: Path
) -> None:
    """Index signed, platforms not (what ratify's users meet); --missing signs exactly those."""
    ref = fresh_repo(registry, sample) + ":v1"
    who = make_identity(tmp_path / "keys", "fixer")
    assert sign(ref, who).code == 0  # the index only, as `notation sign` would
    before = audit_json(ref, *who.trust_args)
    assert before.code == 1
    (target,) = before.report["targets"]
    assert sorted(f["kind"] for f in target["findings"]) == ["unsigned-platform"] * 3

    plan = sign(ref, who, "--missing", "--dry-run")
    assert plan.code == 0
    assert outcomes(plan, sample) == {
        "index": "skipped", **dict.fromkeys(ALL_PLATFORMS, "would sign"), "attestation": "skipped"
    }
    assert audit_json(ref, *who.trust_args).code == 1  # the dry run signed nothing

    fixed = sign(ref, who, "--missing")
    assert fixed.code == 0
    assert outcomes(fixed, sample) == {
        "index": "skipped", **dict.fromkeys(ALL_PLATFORMS, "signed"), "attestation": "skipped"
    }
    after = audit_json(ref, *who.trust_args)
    assert after.code == 0
    assert after.report["targets"][0]["findings"] == []
    again = sign(ref, who, "--missing")
    assert set(outcomes(again, sample).values()) == {"skipped"}


def _fallback_entries(host: str, repository: str, digest: str) -> list[str]:
    async def read() -> list[str]:
        async with httpx.AsyncClient(timeout=10) as http:
            fetched = await RegistryClient(host, http).get_manifest(
                repository, fallback_tag(digest)
            )
            manifests: Any = getattr(fetched.manifest, "manifests", [])
            return [d.digest for d in manifests]

    return asyncio.run(read())


def test_reruns_are_idempotent_dry_run_writes_nothing_force_signs_again(
    registry: RunningRegistry, sample: SampleLayout, tmp_path: Path
) -> None:
    ref = fresh_repo(registry, sample) + ":v1"
    repository = ref.split("/", 1)[1].rsplit(":", 1)[0]
    who = make_identity(tmp_path / "keys", "again", "rsa2048")
    plan = sign(ref, who, "-r", "--dry-run")
    assert set(outcomes(plan, sample).values()) == {"would sign", "skipped"}
    with pytest.raises(NotFound):
        _fallback_entries(registry.host, repository, sample.index.digest)

    first = sign(ref, who, "-r")
    assert first.code == 0
    listed = _fallback_entries(registry.host, repository, sample.index.digest)
    assert len(listed) == 1

    second = sign(ref, who, "-r")
    assert second.code == 0
    attestation = sample.attestation.digest
    reasons = {n["reason"] for n in second.report["nodes"] if n["digest"] != attestation}
    assert all(r.startswith("already signed by this certificate") for r in reasons)
    assert _fallback_entries(registry.host, repository, sample.index.digest) == listed

    # Another certificate is not "this certificate": it signs.
    other = make_identity(tmp_path / "other-keys", "other")
    assert outcomes(sign(ref, other, "-r"), sample)["index"] == "signed"
    forced = sign(ref, who, "-r", "--force")
    assert outcomes(forced, sample)["index"] == "signed"
    assert len(_fallback_entries(registry.host, repository, sample.index.digest)) == 3


def test_two_signers_at_once_both_survive_in_the_fallback_index(
    registry: RunningRegistry, sample: SampleLayout, tmp_path: Path
) -> None:
    ref = fresh_repo(registry, sample) + ":v1"
    repository = ref.split("/", 1)[1].rsplit(":", 1)[0]
    signers = [make_identity(tmp_path / f"keys{i}", f"signer{i}") for i in range(3)]
    runs: dict[str, CliRun] = {}
    barrier = threading.Barrier(len(signers))

    def work(who: Identity) -> None:
        barrier.wait()
        runs[who.name] = sign(ref, who, "-r", "--include-attestations")

    threads = [threading.Thread(target=work, args=(w,)) for w in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(runs) == len(signers), "a signer did not finish within the bound"
    assert all(r.code == 0 for r in runs.values()), [r.stderr for r in runs.values()]
    nodes = [sample.index, *sample.platforms.values(), sample.attestation]
    for node in nodes:
        listed = set(_fallback_entries(registry.host, repository, node.digest))
        made = {
            n["signature"] for r in runs.values() for n in r.report["nodes"]
            if n["digest"] == node.digest
        }
        assert len(made) == len(signers)
        assert made <= listed, f"{node.digest}: lost {made - listed}"


def test_errors_are_named_and_exit_codes_hold(
    registry: RunningRegistry, sample: SampleLayout, tmp_path: Path
) -> None:
    ref = fresh_repo(registry, sample)
    who = make_identity(tmp_path / "keys", "err")

    def sign_args(*args: str) -> CliRun:
        return run_cli(["sign", *args])

    cases: Sequence[tuple[list[str], str]] = [
        ([ref, *who.key_args], "name a tag or digest"),
        ([ref + ":v1", *who.key_args, "--platform", "linux/amd64"], "add --recursive"),
        ([ref + ":v1", *who.key_args, "-r", "--platform", "linux/s390x"], "linux/s390x: not in"),
        ([ref + ":nope", *who.key_args], "nope"),
        ([ref + ":v1", *who.key_args, "--missing"], "needs a trust policy"),
        ([ref + ":v1", *who.key_args, "--expiry", "soon"], "--expiry"),
        ([ref + ":v1", *who.key_args, "--timestamp-url", "http://127.0.0.1:9/"], "go together"),
    ]
    for args, message in cases:
        run = sign_args(*args)
        assert run.code in (1, 2, 3), args
        assert message in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr
