"""The README's demo: a real local registry seeded with generated, partly signed images, audited.

Everything is made here, offline: sample multi-platform images (devkit.samples), a throw-away
test PKI, notation-format signatures on some nodes, a trust policy and store. The registry is
Debian's docker-registry on 127.0.0.1 with storage in a temporary folder.

Part two is the ratify case: an image whose index is signed (as ``notation sign`` signs the
digest it is given) while its platform images are not. ``auditor keys generate-test`` makes
the identity, ``auditor sign`` signs the index only, ``audit now`` finds the platforms
unsigned, ``auditor sign --missing`` signs exactly those, and the audit comes back clean.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from auditor.cli import main as cli_main
from auditor.registry.client import RegistryClient
from auditor.registry.push import push_layout
from devkit.devregistry import LocalRegistry, local_registry
from devkit.samples import NESTED_TAG, SINGLE_TAG, TAG, SampleLayout, write_sample_layout
from devkit.signing import sign_in_layout
from devkit.testpki import TestPKI, make_pki

REPOSITORY = "demo/app"
RATIFY_REPOSITORY = "demo/ratify"


@dataclass(frozen=True)
class DemoSetup:
    layout: SampleLayout
    trust_policy: Path
    trust_store: Path
    config: Path


def _sign_samples(sample: SampleLayout, trusted: TestPKI, stranger: TestPKI) -> None:
    """Sign some nodes, so the audit has something of every kind to say.

    index v1: signed (trusted); linux/amd64: signed (trusted, COSE); linux/arm64/v8: signed by
    an untrusted key (invalid); linux/ppc64le: unsigned; the single-manifest tag: signed.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    path = sample.path
    good = trusted.leaf
    sign_in_layout(path, sample.index, good.key, trusted.chain, signing_time=now)
    sign_in_layout(
        path, sample.platforms["linux/amd64"], good.key, trusted.chain,
        signing_time=now, envelope_format="cose",
    )
    sign_in_layout(
        path, sample.platforms["linux/arm64/v8"], stranger.leaf.key, stranger.chain,
        signing_time=now,
    )
    sign_in_layout(path, sample.single, good.key, trusted.chain, signing_time=now)


def prepare(workdir: Path, registry_host: str) -> DemoSetup:
    """Write the sample layout, signatures, trust policy, trust store and config in workdir."""
    sample = write_sample_layout(workdir / "layout", name="demo")
    trusted = make_pki(name="demo-release", validity=timedelta(days=30))
    stranger = make_pki(name="unknown-signer", validity=timedelta(days=30), slot=1)
    _sign_samples(sample, trusted, stranger)
    store = workdir / "truststore"
    trusted.write_trust_store(store, "demo")
    subject = trusted.leaf.cert.subject.rfc4514_string()
    policy = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "demo",
                "registryScopes": [f"{registry_host}/{REPOSITORY}"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:demo"],
                "trustedIdentities": [f"x509.subject: {_notation_subject(subject)}"],
            }
        ],
    }
    policy_path = workdir / "trustpolicy.oci.json"
    policy_path.write_text(json.dumps(policy, indent=2))
    config_path = workdir / "auditor.yaml"
    config_path.write_text(
        "registries:\n"
        f"  - url: http://{registry_host}\n"
        f"    repositories: [{REPOSITORY}]\n"
        "trust:\n"
        f"  policy: {policy_path}\n"
        f"  store: {store}\n"
        "coverage:\n"
        f'  - scope: "{registry_host}/demo/*"\n'
        "    require: both\n"
    )
    return DemoSetup(sample, policy_path, store, config_path)


def _notation_subject(rfc4514: str) -> str:
    """notation writes subjects as ``C=US, ST=WA, O=..., CN=...`` (comma and space)."""
    return ", ".join(reversed(rfc4514.split(",")))


async def seed(registry: LocalRegistry, setup: DemoSetup) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        client = RegistryClient(registry.host, http)
        await push_layout(client, setup.layout.path, REPOSITORY, update_fallback_tags=True)


def _show(args: list[str]) -> int:
    """Print the command as a person would type it, then run it in-process."""
    print(f"\n$ auditor {' '.join(args)}", flush=True)
    code = cli_main(args)
    print(f"(exit code {code})", flush=True)
    return code


def ratify_case(workdir: Path, registry: LocalRegistry, layout: Path) -> bool:
    """Index signed, platforms not; then ``auditor sign --missing``. True when all went as shown."""
    async def push() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            client = RegistryClient(registry.host, http)
            await push_layout(client, layout, RATIFY_REPOSITORY, tags=[TAG])

    asyncio.run(push())
    identity = workdir / "signer"
    ref = f"{registry.host}/{RATIFY_REPOSITORY}:{TAG}"
    config = workdir / "ratify.yaml"
    config.write_text(
        "trust:\n"
        f"  policy: {identity / 'trustpolicy.oci.json'}\n"
        f"  store: {identity / 'truststore'}\n"
        "coverage:\n"
        f'  - scope: "{registry.host}/{RATIFY_REPOSITORY}"\n'
        "    require: both\n"
    )
    keys = ["--key", str(identity / "localkeys" / "release.key"),
            "--cert", str(identity / "localkeys" / "release.crt")]
    print(
        f"\n--- Part two: the ratify case in {ref} (index signed, platforms not) ---",
        flush=True,
    )
    codes = [
        _show(["keys", "generate-test", "release", "--dir", str(identity), "--key-type", "ec256",
               "--scope", f"{registry.host}/{RATIFY_REPOSITORY}"]),
        _show(["sign", ref, *keys, "--config", str(config)]),
        _show(["audit", "now", ref, "--config", str(config), "--quiet"]),
        _show(["sign", ref, *keys, "--missing", "--config", str(config)]),
        _show(["audit", "now", ref, "--config", str(config)]),
    ]
    return codes == [0, 0, 1, 0, 0]


def run(workdir: Path, output_format: str) -> int:
    with local_registry(workdir / "registry") as registry:
        unsigned = write_sample_layout(workdir / "unsigned", name="ratify")
        setup = prepare(workdir, registry.host)
        asyncio.run(seed(registry, setup))
        print(
            f"Seeded {registry.url}/{REPOSITORY} with tags {TAG}, {NESTED_TAG}, {SINGLE_TAG}.\n"
            "Signed: index v1 and linux/amd64 (trusted), linux/arm64/v8 (untrusted key), "
            f"{SINGLE_TAG}; unsigned: linux/ppc64le, the attestation, the nested index.\n"
            f"$ auditor audit now --config {setup.config} --format {output_format}\n",
            flush=True,
        )
        code = cli_main(
            ["audit", "now", "--config", str(setup.config), "--format", output_format]
        )
        meaning = {0: "all compliant", 1: "findings", 2: "usage/config error", 3: "unchecked"}
        print(f"\nauditor exit code {code} ({meaning.get(code, '?')}).")
        fixed = ratify_case(workdir, registry, unsigned.path)
    # Part one's images are partly unsigned on purpose: findings (1) are the expected outcome;
    # part two must end compliant.
    return 0 if code == 1 and fixed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.demo", description=__doc__)
    parser.add_argument("--format", default="table", choices=["table", "json", "sarif"])
    parser.add_argument("--keep", type=Path, help="keep the demo's files in this folder")
    args = parser.parse_args(argv)
    if args.keep:
        if args.keep.exists() and any(args.keep.iterdir()):
            parser.error(f"--keep {args.keep}: folder is not empty")
        args.keep.mkdir(parents=True, exist_ok=True)
        return run(args.keep, args.format)
    with tempfile.TemporaryDirectory(prefix="auditor-demo-") as tmp:
        return run(Path(tmp), args.format)


if __name__ == "__main__":
    sys.exit(main())
