"""Cached signature verdicts are used again only while nothing they depend on changed.

Through the real registry and the state store: a re-audit takes verdicts from the store; a
changed trust store re-verifies; a certificate expiring makes the cached verdict stale (and the
audit then says so); with a real OCSP responder, the verdict is re-checked when the revocation
answer it relied on passes its nextUpdate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditor.app import App
from auditor.config import AuditorConfig, parse_config
from auditor.model import Descriptor, NodeStatus, SignatureStatus, TargetResult
from auditor.notary.revocation import RevocationChecker
from auditor.notary.sign import sign_jws, signature_manifest
from auditor.notary.trustpolicy import parse_trust_policy
from auditor.notary.verifier import Verifier
from auditor.oci.manifest import ImageManifest, parse_manifest
from auditor.oci.mediatypes import JWS_ENVELOPE as JWS_MEDIA_TYPE
from auditor.state.caches import StoreVerdictCache
from auditor.state.store import Store
from auditor.verdicts import MemoryVerdictCache
from devkit.testpki import make_pki
from tests.support.daemon import SignedIndexImage
from tests.support.pki_servers import (
    OCSP_DIR,
    OcspResponder,
    load_cert,
    load_chain,
    load_key,
    serve,
)
from tests.support.registry_server import RunningRegistry


def _config(image: SignedIndexImage) -> AuditorConfig:
    return parse_config(
        {"trust": {"policy": str(image.policy), "store": str(image.store)}}, "test"
    )


def _index_status(target: TargetResult) -> NodeStatus:
    return next(n.status for n in target.nodes if n.node.kind.value == "index")


@pytest.mark.registry
def test_reaudit_reuses_stored_verdicts_until_the_trust_store_changes(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    image = SignedIndexImage.create(tmp_path, registry.host, "cache/trust")
    asyncio.run(_trust_store_change(image, registry, tmp_path))


async def _trust_store_change(
    image: SignedIndexImage, registry: RunningRegistry, tmp_path: Path
) -> None:
    reference = f"{registry.host}/{image.repository}:v1"
    store = Store.open(tmp_path / "state.db")
    try:
        async with App(_config(image), store=store) as app:
            first = (await app.audit([reference])).targets[0]
        assert _index_status(first) is NodeStatus.SIGNED
        # A new App (a restart) on the same state: the verdict comes from the store.
        async with App(_config(image), store=store) as app:
            cache = app.auditor.cache
            assert isinstance(cache, StoreVerdictCache)
            second = (await app.audit([reference])).targets[0]
            assert cache.hits == 1
            assert _index_status(second) is NodeStatus.SIGNED
            assert app.refresh_trust() is False

            # The trusted CA is swapped for another one: same paths, different files.
            stranger = make_pki(name="someone else", slot=2)
            for old in image.store.rglob("*.pem"):
                old.unlink()
            stranger.write_trust_store(image.store, "release")
            assert app.refresh_trust() is True
            assert isinstance(app.auditor.cache, StoreVerdictCache)
            third = (await app.audit([reference])).targets[0]
            assert app.auditor.cache.hits == 0
        assert _index_status(third) is NodeStatus.INVALID
    finally:
        store.close()


@pytest.mark.registry
def test_a_cached_verdict_goes_stale_when_its_certificate_expires(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    image = SignedIndexImage.create(tmp_path, registry.host, "cache/expiry")
    # Re-sign the index with a leaf that expires a few seconds from now.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    pki = make_pki(name="short lived", slot=3, not_before=start,
                   leaf_validity=timedelta(hours=1, seconds=6))
    from devkit.signing import sign_in_layout

    for old in image.store.rglob("*.pem"):
        old.unlink()
    pki.write_trust_store(image.store, "release")
    sign_in_layout(image.sample.path, image.sample.index, pki.leaf.key, pki.chain,
                   signing_time=datetime.now(UTC).replace(microsecond=0))
    image.push()
    reference = f"{registry.host}/{image.repository}:v1"
    store = Store.open(tmp_path / "state.db")
    try:
        asyncio.run(_expiry(image, reference, store, pki.leaf.cert.not_valid_after_utc))
    finally:
        store.close()


async def _expiry(
    image: SignedIndexImage, reference: str, store: Store, leaf_end: datetime
) -> None:
    async with App(_config(image), store=store) as app:
        target = (await app.audit([reference])).targets[0]
        index = next(n for n in target.nodes if n.node.kind.value == "index")
        good = [s for s in index.signatures if s.status is SignatureStatus.VALID]
        assert index.status is NodeStatus.SIGNED
        assert good
        assert good[0].recheck_at == leaf_end
        assert good[0].valid_until == leaf_end
        wait = (leaf_end - datetime.now(UTC)).total_seconds()
        assert 0 < wait < 20
        await asyncio.sleep(wait + 0.5)  # until the certificate has expired: a bound, not a poll
        later = (await app.audit([reference])).targets[0]
    index = next(n for n in later.nodes if n.node.kind.value == "index")
    assert index.status is NodeStatus.INVALID
    assert any("expired" in s.reason for s in index.signatures), index.signatures


SUBJECT = Descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + "34" * 32, 321)


@pytest.fixture
def responder() -> Iterator[OcspResponder]:
    chain = load_chain(OCSP_DIR / "certchain_with_ocsp.pem")
    server = OcspResponder(
        issuer=load_cert(OCSP_DIR / "root.crt"),
        responder_cert=load_cert(OCSP_DIR / "ocsp.crt"),
        responder_key=load_key(OCSP_DIR / "ocsp.key"),
        answers={chain[0].serial_number: "good"},
        next_update=timedelta(minutes=10),
    )
    with serve(responder=server):
        yield server


def test_a_verdict_is_rechecked_when_its_revocation_answer_goes_stale(
    responder: OcspResponder, tmp_path: Path
) -> None:
    folder = tmp_path / "x509" / "ca" / "ocsp-root"
    folder.mkdir(parents=True)
    (folder / "root.crt").write_bytes((OCSP_DIR / "root.crt").read_bytes())
    policy = parse_trust_policy(json.dumps({
        "version": "1.0",
        "trustPolicies": [{
            "name": "ocsp", "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:ocsp-root"],
            "trustedIdentities": ["x509.subject: C=US, ST=State, O=Organization"],
        }],
    }))
    chain = load_chain(OCSP_DIR / "certchain_with_ocsp.pem")
    envelope = sign_jws(SUBJECT, load_key(OCSP_DIR / "leaf.key"), chain,  # type: ignore[arg-type]
                        signing_time=datetime.now(UTC))
    raw, _ = signature_manifest(SUBJECT, envelope, JWS_MEDIA_TYPE)
    manifest = parse_manifest(raw)
    assert isinstance(manifest, ImageManifest)
    checker = RevocationChecker(
        url_rewrite=lambda url: url.replace("http://localhost:10087", responder.base)
    )
    with checker:
        verifier = Verifier(policy, tmp_path, revocation=checker)
        before = datetime.now(UTC)
        result = verifier.verify("r.example/app", SUBJECT, manifest, envelope, "sha256:" + "9" * 64)
    assert result.status is SignatureStatus.VALID, result.reason
    assert result.recheck_at is not None
    # The OCSP answer's nextUpdate (10 minutes), well before any certificate expiry, decides.
    assert before + timedelta(minutes=9) < result.recheck_at < before + timedelta(minutes=11)
    assert result.valid_until is None or result.valid_until > result.recheck_at

    clock = [datetime.now(UTC)]
    cache = MemoryVerdictCache(now=lambda: clock[0])
    key = ("sha256:" + "9" * 64, SUBJECT.digest, "r.example/app")
    cache.put(key, result)
    assert cache.get(key) == result
    clock[0] = result.recheck_at + timedelta(seconds=1)
    assert cache.get(key) is None

    store = Store.open(tmp_path / "state.db")
    try:
        stored = StoreVerdictCache(store, "trust-hash", now=lambda: clock[0])
        stored.put(key, result)
        assert stored.get(key) is None  # already stale at this clock
        clock[0] = result.recheck_at - timedelta(minutes=1)
        assert stored.get(key) == result
    finally:
        store.close()
