"""Reading ../shared/fixtures/cosign as the reference tools left it.

containers/image stores a signature as ``\\x00sigstore-json\\n`` + JSON ``{mimeType, payload
(base64), annotations}``: exactly the parts of one layer of a cosign ``.sig`` manifest (media
type, blob, annotations). Some fixture files were git symlinks and arrive as one line of
text naming their target (``../dir-img-cosign-valid/signature-1``); ``resolve`` follows them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import FIXTURES

COSIGN = FIXTURES / "cosign"
CONTAINERS_IMAGE = COSIGN / "containers-image"
TOOLKIT = COSIGN / "docker-actions-toolkit"
TRUSTED_ROOT = COSIGN / "sigstore-trusted-root" / "trusted_root.json"
COSIGN_TESTDATA = COSIGN / "cosign-testdata" / "cosign" / "testdata"
ATTESTATION_BUNDLE = COSIGN_TESTDATA / "oci-attestation.sigstore.json"
ATTESTATION_ROOT = COSIGN_TESTDATA / "trusted_root_pgi.json"
SIGSTORE_MAGIC = b"\x00sigstore-json\n"

# The identity Fulcio certified in both docker/actions-toolkit sign outputs.
TOOLKIT_IDENTITY = (
    "https://github.com/docker/github-builder-experimental/.github/workflows/build.yml"
    "@refs/heads/build-reusable-workflow"
)
TOOLKIT_ISSUER = "https://token.actions.githubusercontent.com"


def resolve(path: Path) -> Path:
    """Follow a symlink that was checked out as a text file holding its target."""
    for _ in range(4):
        data = path.read_bytes()
        if len(data) > 200 or not data.startswith(b"../"):
            return path
        path = (path.parent / data.decode().strip()).resolve()
    return path


@dataclass(frozen=True)
class LegacySignature:
    media_type: str
    payload: bytes
    annotations: dict[str, str]


def legacy_signature(folder: str, n: int = 1) -> LegacySignature:
    data = resolve(CONTAINERS_IMAGE / folder / f"signature-{n}").read_bytes()
    assert data.startswith(SIGSTORE_MAGIC), folder
    doc = json.loads(data[len(SIGSTORE_MAGIC) :])
    return LegacySignature(doc["mimeType"], base64.b64decode(doc["payload"]), doc["annotations"])


def legacy_manifest(folder: str) -> bytes:
    return resolve(CONTAINERS_IMAGE / folder / "manifest.json").read_bytes()


@dataclass(frozen=True)
class ToolkitOutput:
    """One cosign v3 keyless signing: subject manifest, bundle, referrer manifest (raw bytes)."""

    subject: bytes
    subject_digest: str
    bundle: bytes
    bundle_digest: str
    referrer: bytes
    referrer_digest: str


def _named(folder: Path, prefix: str) -> tuple[bytes, str]:
    (path,) = folder.glob(f"{prefix}.sha256-*.json")
    hexdigest = path.name.removeprefix(f"{prefix}.sha256-").removesuffix(".json")
    return path.read_bytes(), f"sha256:{hexdigest}"


def toolkit_output_path(n: int, prefix: str = "bundle") -> Path:
    (path,) = (TOOLKIT / f"sign-output{n}").glob(f"{prefix}.sha256-*.json")
    return path


def toolkit_output(n: int) -> ToolkitOutput:
    folder = TOOLKIT / f"sign-output{n}"
    subject, subject_digest = _named(folder, "subject-manifest")
    bundle, bundle_digest = _named(folder, "bundle")
    referrer, referrer_digest = _named(folder, "referrer-manifest")
    return ToolkitOutput(subject, subject_digest, bundle, bundle_digest, referrer, referrer_digest)
