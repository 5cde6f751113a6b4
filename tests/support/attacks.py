"""Attack scenes: a sample image signed with a trusted key, then rewritten by an attacker.

The attacker controls what the registry (or the layout) holds: manifests, fallback tag
indexes, signature manifests and envelopes, but not the trust store's private keys. A
:class:`Scene` starts from the deterministic sample layout (devkit.samples), signs what the
test asks for with a trusted or an untrusted PKI, and offers the forgeries the tests need:
signature manifests with any subject, layers or envelope, referrer descriptors that lie,
envelopes assembled without the signer's own safety checks, odd certificates. An
:class:`Auditing` runs ``auditor audit now`` on the scene through the real registry (pushed to
a fresh repository) or through ``oci-layout:``, so every attack meets both sources.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from auditor.layout.writer import add_to_fallback_index, tag_manifest, write_blob, write_manifest
from auditor.model import Descriptor
from auditor.notary import jws
from auditor.notary.crypto import PrivateKey, algorithm_for_key, sign_bytes
from auditor.notary.decoded import H_EXPIRY, H_SIGNING_AGENT, H_SIGNING_SCHEME, H_SIGNING_TIME
from auditor.notary.sign import TargetLike, payload_bytes
from auditor.oci import mediatypes as mt
from auditor.oci.manifest import descriptor_json
from devkit.samples import SampleLayout, write_sample_layout
from devkit.signing import sign_in_layout
from devkit.testpki import Issued, TestPKI, make_key, make_pki
from tests.support.registry_server import RunningRegistry
from tests.support.scenarios import CliRun, audit_json, push

STORE_NAME = "attacks"
EMPTY_CONFIG = b"{}"


@dataclass(frozen=True)
class Target:
    """What the payload of a forged envelope claims was signed."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str]


def target_of(descriptor: Descriptor, **changes: Any) -> Target:
    """``descriptor`` as a payload target, with fields replaced (``size=...``, ...)."""
    fields: dict[str, Any] = {
        "media_type": descriptor.media_type,
        "digest": descriptor.digest,
        "size": descriptor.size,
        "annotations": {},
    }
    fields.update(changes)
    return Target(**fields)


def forge_jws(
    target: TargetLike,
    key: PrivateKey,
    chain: Sequence[x509.Certificate],
    *,
    signing_time: datetime,
    expiry: datetime | None = None,
) -> bytes:
    """A notation-shaped JWS envelope signed by ``key``, *without* the signer's chain checks.

    The production signer refuses malformed chains; an attacker does not, so the tests build
    such envelopes here (the signature itself is real: made with ``key`` over the payload).
    """
    alg = algorithm_for_key(key)
    crit = [H_SIGNING_SCHEME]
    protected: dict[str, Any] = {
        "alg": alg.name,
        "cty": mt.NOTARY_PAYLOAD,
        H_SIGNING_SCHEME: "notary.x509",
        H_SIGNING_TIME: jws.rfc3339(signing_time),
    }
    if expiry is not None:
        protected[H_EXPIRY] = jws.rfc3339(expiry)
        crit.append(H_EXPIRY)
    protected["crit"] = crit
    unprotected = {
        "x5c": [_b64std(c.public_bytes(Encoding.DER)) for c in chain],
        H_SIGNING_AGENT: "attacker/1.0",
    }
    return jws.assemble(
        protected, payload_bytes(target), lambda data: sign_bytes(key, alg, data), unprotected
    )


def forge_jws_header(
    target: TargetLike,
    key: PrivateKey,
    chain: Sequence[x509.Certificate],
    protected: Mapping[str, Any],
) -> bytes:
    """A JWS envelope with exactly the protected header given (for malformed-header attacks)."""
    alg = algorithm_for_key(key)
    unprotected = {"x5c": [_b64std(c.public_bytes(Encoding.DER)) for c in chain]}
    return jws.assemble(
        protected, payload_bytes(target), lambda data: sign_bytes(key, alg, data), unprotected
    )


def _b64std(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Notary"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def certificate(
    *,
    subject: x509.Name,
    key: PrivateKey,
    issuer_name: x509.Name,
    issuer_key: PrivateKey,
    not_before: datetime,
    not_after: datetime,
    ca: bool,
    serial: int,
) -> x509.Certificate:
    """One certificate meeting the Notary Project profile (CA or code-signing leaf)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA384())


@dataclass
class Scene:
    """A sample layout under attack, its PKIs, trust store and trust policy.

    ``trusted`` is the PKI whose root is in the trust store; ``stranger`` is not trusted.
    The default trust policy is one strict statement for ``*``.
    """

    workdir: Path
    sample: SampleLayout
    trusted: TestPKI
    stranger: TestPKI
    store: Path
    policy: Path
    now: datetime

    @classmethod
    def build(cls, workdir: Path) -> Scene:
        # A unique name makes every digest unique, so tampering with the registry's shared
        # blob store in one test cannot touch another test's content.
        sample = write_sample_layout(workdir / "layout", name=f"attack-{uuid.uuid4().hex}")
        trusted = make_pki(name="attacks-release", validity=timedelta(days=30))
        stranger = make_pki(name="attacks-stranger", validity=timedelta(days=30), slot=1)
        store = workdir / "truststore"
        trusted.write_trust_store(store, STORE_NAME)
        scene = cls(
            workdir=workdir,
            sample=sample,
            trusted=trusted,
            stranger=stranger,
            store=store,
            policy=workdir / "trustpolicy.json",
            now=datetime.now(UTC).replace(microsecond=0),
        )
        scene.write_policy([statement("strict-all", ["*"], "strict")])
        return scene

    @property
    def layout(self) -> Path:
        return self.sample.path

    @property
    def index(self) -> Descriptor:
        return self.sample.index

    def platform(self, name: str) -> Descriptor:
        return self.sample.platforms[name]

    def trust_args(self) -> list[str]:
        return ["--trust-policy", str(self.policy), "--trust-store", str(self.store)]

    def write_policy(self, statements: list[dict[str, Any]]) -> None:
        doc = {"version": "1.0", "trustPolicies": statements}
        self.policy.write_text(json.dumps(doc, indent=2))

    # -- genuine signatures ------------------------------------------------------------------

    def sign(
        self,
        subject: Descriptor,
        *,
        trusted: bool = True,
        fmt: str = "jws",
        signing_time: datetime | None = None,
        expiry: datetime | None = None,
    ) -> Descriptor:
        """Sign ``subject`` as notation would and record it (index.json + fallback tag)."""
        pki = self.trusted if trusted else self.stranger
        return sign_in_layout(
            self.layout,
            subject,
            pki.leaf.key,
            pki.chain,
            signing_time=signing_time or self.now,
            envelope_format=fmt,
            expiry=expiry,
        )

    def sign_required(self) -> dict[str, Descriptor]:
        """Trusted signatures on the index and every platform: a compliant image under ``both``."""
        signed = {"index": self.sign(self.index)}
        for name, descriptor in self.sample.platforms.items():
            signed[name] = self.sign(descriptor)
        return signed

    # -- forgeries ---------------------------------------------------------------------------

    def blob(self, digest: str) -> bytes:
        return (self.layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()

    def manifest_json(self, digest: str) -> dict[str, Any]:
        doc = json.loads(self.blob(digest))
        assert isinstance(doc, dict)
        return doc

    def envelope_of(self, signature: Descriptor) -> tuple[str, bytes]:
        """(media type, bytes) of a signature manifest's envelope layer."""
        (layer,) = self.manifest_json(signature.digest)["layers"]
        return str(layer["mediaType"]), self.blob(str(layer["digest"]))

    def signature_manifest(
        self,
        *,
        subject: Descriptor | None,
        layers: Sequence[tuple[str, bytes]],
        listed_under: Descriptor | None,
        layer_sizes: Sequence[int | None] | None = None,
        nonce: str | None = None,
    ) -> Descriptor:
        """Write a signature manifest with exactly these layers (media type, bytes).

        ``subject`` None leaves it out; ``listed_under`` adds the manifest to that digest's
        fallback tag index (as a Notary signature, whatever the manifest really is);
        ``layer_sizes`` lets a layer descriptor lie about its size; ``nonce`` varies the digest.
        """
        config = Descriptor(mt.NOTARY_SIGNATURE, write_blob(self.layout, EMPTY_CONFIG), 2)
        layer_json = []
        for i, (media_type, data) in enumerate(layers):
            size = layer_sizes[i] if layer_sizes is not None else None
            digest = write_blob(self.layout, data)
            layer_json.append(
                descriptor_json(Descriptor(media_type, digest, len(data) if size is None else size))
            )
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": descriptor_json(config),
            "layers": layer_json,
        }
        if subject is not None:
            doc["subject"] = descriptor_json(
                Descriptor(subject.media_type, subject.digest, subject.size)
            )
        if nonce is not None:
            doc["annotations"] = {"attack.nonce": nonce}
        written = write_manifest(self.layout, doc)
        tag_manifest(self.layout, written, None)
        if listed_under is not None:
            self.list_as_signature(listed_under, written)
        return written

    def list_as_signature(self, subject: Descriptor, referrer: Descriptor) -> None:
        """Add ``referrer`` to ``subject``'s fallback tag index, claiming it is a signature."""
        add_to_fallback_index(
            self.layout,
            subject.digest,
            Descriptor(
                referrer.media_type,
                referrer.digest,
                referrer.size,
                artifact_type=mt.NOTARY_SIGNATURE,
            ),
        )

    def forged(
        self,
        envelope: bytes,
        *,
        subject: Descriptor,
        media_type: str = mt.JWS_ENVELOPE,
        nonce: str | None = None,
    ) -> Descriptor:
        """A one-envelope signature manifest on ``subject``, listed in its fallback index."""
        return self.signature_manifest(
            subject=subject, layers=[(media_type, envelope)], listed_under=subject, nonce=nonce
        )

    def leaf(
        self,
        issuer: Issued,
        *,
        common_name: str,
        not_before: datetime,
        not_after: datetime,
        slot: int = 7,
    ) -> Issued:
        """A code-signing leaf issued by ``issuer`` with the validity given."""
        key = make_key("rsa3072", slot)
        cert = certificate(
            subject=_name(common_name),
            key=key,
            issuer_name=issuer.cert.subject,
            issuer_key=issuer.key,
            not_before=not_before,
            not_after=not_after,
            ca=False,
            serial=uuid.uuid4().int >> 64,
        )
        return Issued(cert=cert, key=key)


def write_image(layout: Path, text: str) -> Descriptor:
    """A minimal image manifest (empty config, one small layer) whose bytes depend on ``text``."""
    config = Descriptor(mt.OCI_EMPTY, write_blob(layout, EMPTY_CONFIG), len(EMPTY_CONFIG))
    data = text.encode()
    layer = Descriptor("application/octet-stream", write_blob(layout, data), len(data))
    return write_manifest(
        layout,
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": descriptor_json(config),
            "layers": [descriptor_json(layer)],
        },
    )


def write_config(path: Path, document: Mapping[str, Any]) -> Path:
    """An auditor config file (JSON is valid YAML)."""
    path.write_text(json.dumps(document))
    return path


def tamper_file(path: Path) -> None:
    """Flip one byte in the middle of a stored file (same length, different digest)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] = (data[middle] + 1) % 256
    path.write_bytes(bytes(data))


def statement(
    name: str,
    scopes: list[str],
    level: str,
    *,
    stores: Sequence[str] = (f"ca:{STORE_NAME}",),
) -> dict[str, Any]:
    """One trust policy statement (trusted identities ``*``; no stores for ``skip``)."""
    doc: dict[str, Any] = {
        "name": name,
        "registryScopes": scopes,
        "signatureVerification": {"level": level},
    }
    if level != "skip":
        doc["trustStores"] = list(stores)
        doc["trustedIdentities"] = ["*"]
    return doc


@dataclass
class Auditing:
    """Runs the CLI on a scene through one source: ``registry`` (pushed) or ``layout``."""

    mode: str
    registry: RunningRegistry | None

    def reference(self, scene: Scene, tag: str = "v1") -> str:
        """Where the scene's ``tag`` is reachable; pushes the layout to a fresh repository."""
        if self.mode == "layout":
            return f"oci-layout:{scene.layout}:{tag}"
        return f"{self.push(scene)}:{tag}"

    def push(self, scene: Scene) -> str:
        """Push the scene to a fresh repository of the registry; returns ``host/repository``."""
        assert self.registry is not None, "only the registry mode pushes"
        repository = f"attacks/{uuid.uuid4().hex[:12]}"
        push(self.registry.host, scene.layout, repository)
        return f"{self.registry.host}/{repository}"

    def run(self, scene: Scene, *extra: str, tag: str = "v1") -> CliRun:
        return audit_json(self.reference(scene, tag), *scene.trust_args(), *extra)


def only_target(run: CliRun) -> dict[str, Any]:
    targets = run.report["targets"]
    assert len(targets) == 1, targets
    target = targets[0]
    assert isinstance(target, dict)
    return target


def node(target: Mapping[str, Any], digest: str) -> dict[str, Any]:
    """The report node with ``digest`` (exactly one)."""
    found = [n for n in target["nodes"] if n["digest"] == digest]
    assert len(found) == 1, f"{digest} appears {len(found)} times"
    result = found[0]
    assert isinstance(result, dict)
    return result


def statuses(target: Mapping[str, Any]) -> dict[str, str]:
    return {n["digest"]: n["status"] for n in target["nodes"]}


def signature_results(target: Mapping[str, Any], digest: str) -> list[tuple[str, str | None]]:
    """(status, failed_validation) of each signature result of a node, sorted."""
    return sorted((s["status"], s["failed_validation"]) for s in node(target, digest)["signatures"])

