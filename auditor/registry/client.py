"""The registry side of :class:`auditor.source.ManifestSource`, over the OCI distribution API.

Transport concerns (auth, retries, limits, error mapping) live in ``transport``; pagination
and referrers in their own modules. This class only knows the API's paths and checks what
comes back: every manifest and blob is digest-verified before anyone parses it.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from auditor import gojson
from auditor.config import DEFAULT_LIMITS
from auditor.errors import MalformedContent
from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.digest import compute_digest, is_valid_digest, verify_digest
from auditor.oci.manifest import FetchedManifest, Manifest, parse_manifest
from auditor.registry import referrers
from auditor.registry.auth import AuthProvider
from auditor.registry.exchange import Reply
from auditor.registry.pagination import collect_pages
from auditor.registry.retry import RegistryHealth, RetryPolicy
from auditor.registry.runcache import ENTRY_OVERHEAD, cached
from auditor.registry.transport import RegistryTransport, raise_for_status

DEFAULT_PAGE_SIZE = 100
MAX_TAGS = 10_000
MAX_REPOSITORIES = 10_000
_LIST_BODY_LIMIT = 4 * 1024 * 1024


def _string_list(body: bytes, what: str, key: str) -> list[str]:
    doc = gojson.loads(body, f"{what}: answer")
    values = gojson.fields(doc, (key,), what).get(key) if isinstance(doc, dict) else None
    if values is None:  # distribution sends "tags": null for a repository without tags
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise MalformedContent(f"{what}: {key!r} is not a list of strings")
    return list(values)


def _descriptor_bytes(desc: Descriptor) -> int:
    """What a descriptor from a registry costs the run cache: a fixed overhead plus the text
    the registry chose (annotations can fill a whole page of a referrers answer)."""
    text = sum(len(k) + len(v) for k, v in desc.annotations.items())
    return ENTRY_OVERHEAD + text + len(desc.media_type) + len(desc.artifact_type or "")


class RegistryClient:
    """Reads (and, via :mod:`auditor.registry.push`, writes) one registry host."""

    def __init__(
        self,
        host: str,
        http: httpx.AsyncClient,
        *,
        auth: AuthProvider | None = None,
        insecure: bool = False,
        scheme: str | None = None,
        max_manifest_bytes: int = DEFAULT_LIMITS.max_manifest_bytes,
        max_concurrency: int = DEFAULT_LIMITS.concurrency_per_registry,
        retry: RetryPolicy | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_tags: int = MAX_TAGS,
        max_repositories: int = MAX_REPOSITORIES,
        max_referrers: int = DEFAULT_LIMITS.max_referrers,
        request_deadline: float = DEFAULT_LIMITS.request_deadline_seconds,
        health: RegistryHealth | None = None,
    ) -> None:
        self.transport = RegistryTransport(
            host,
            http,
            auth=auth or AuthProvider.anonymous(),
            insecure=insecure,
            scheme=scheme,
            retry=retry,
            max_concurrency=max_concurrency,
            request_deadline=request_deadline,
            health=health,
        )
        self.max_manifest_bytes = max_manifest_bytes
        self.page_size = page_size
        self.max_tags = max_tags
        self.max_repositories = max_repositories
        self.max_referrers = max_referrers
        # None: not asked yet; False: the registry has no referrers API (do not ask again).
        self.referrers_api: bool | None = None

    def __repr__(self) -> str:
        return f"RegistryClient({self.name!r})"

    @property
    def name(self) -> str:
        return self.transport.host

    @property
    def base_url(self) -> str:
        return str(self.transport.base_url)

    def _what(self, repository: str, reference: str | None = None) -> str:
        if reference is None:
            return f"{self.name}/{repository}"
        sep = "@" if is_valid_digest(reference) else ":"
        return f"{self.name}/{repository}{sep}{reference}"

    async def list_repositories(self) -> list[str]:
        what = f"{self.name} catalog"
        return await collect_pages(
            self.transport,
            "/v2/_catalog",
            params={"n": str(self.page_size)},
            scope="registry:catalog:*",
            what=what,
            limit=_LIST_BODY_LIMIT,
            extract=lambda body, w: _string_list(body, w, "repositories"),
            max_items=self.max_repositories,
            item_name="repositories",
        )

    async def list_tags(self, repository: str) -> list[str]:
        return await collect_pages(
            self.transport,
            f"/v2/{repository}/tags/list",
            params={"n": str(self.page_size)},
            scope=f"repository:{repository}:pull",
            what=f"{self._what(repository)} tags",
            limit=_LIST_BODY_LIMIT,
            extract=lambda body, w: _string_list(body, w, "tags"),
            max_items=self.max_tags,
            item_name="tags",
        )

    async def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        """Fetch, digest-check, then parse; the descriptor's digest is the checked one.

        Once per run (auditor/registry/runcache.py): the expansion's read of a fallback tag
        answers the crawl's lookup of it, and a node two tags share is fetched once.
        """
        return await cached(
            ("manifest", self.name, repository, reference),
            lambda: self._get_manifest(repository, reference),
            lambda fetched: len(fetched.raw),
        )

    async def get_manifest_unless(
        self, repository: str, tag: str, digest: str
    ) -> FetchedManifest | None:
        """The manifest under ``tag``, or None when it still is ``digest`` (the caller holds
        that manifest already, digest-checked): ``If-None-Match`` with the digest, which
        distribution answers 304 without a body. Saves the body, not the request.
        """
        if is_valid_digest(tag) or not is_valid_digest(digest):
            raise MalformedContent(f"{self._what(repository, tag)}: not a tag and a digest")
        return await cached(
            ("manifest unless", self.name, repository, tag, digest),
            lambda: self._get_manifest_unless(repository, tag, digest),
            lambda fetched: len(fetched.raw) if fetched is not None else 0,
        )

    async def _get_manifest_unless(
        self, repository: str, tag: str, digest: str
    ) -> FetchedManifest | None:
        what = self._what(repository, tag)
        unless = {"If-None-Match": f'"{digest}"'}
        reply = await self._manifest_request(repository, tag, what, unless)
        if reply.status == 304:
            return None
        return self._manifest_reply(reply, tag, what)

    async def _get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        what = self._what(repository, reference)
        return self._manifest_reply(
            await self._manifest_request(repository, reference, what), reference, what
        )

    async def _manifest_request(
        self, repository: str, reference: str, what: str, extra: dict[str, str] | None = None
    ) -> Reply:
        return await self.transport.request(
            "GET",
            f"/v2/{repository}/manifests/{quote(reference, safe=':')}",
            scope=f"repository:{repository}:pull",
            what=what,
            limit=self.max_manifest_bytes,
            headers={"Accept": mt.MANIFEST_ACCEPT, **(extra or {})},
        )

    def _manifest_reply(self, reply: Reply, reference: str, what: str) -> FetchedManifest:
        """Check (status, digest) and parse a manifest answer; the digest is the checked one."""
        raise_for_status(reply, what)
        announced = reply.headers.get("docker-content-digest")
        if is_valid_digest(reference):
            verify_digest(reply.body, reference, what)
            digest = reference
        elif announced:
            verify_digest(reply.body, announced, f"{what} (Docker-Content-Digest)")
            digest = announced
        else:
            digest = compute_digest(reply.body)
        manifest = parse_manifest(reply.body, reply.content_type, where=what)
        content_type = reply.content_type
        media_type = content_type if content_type in mt.MANIFEST_TYPES else manifest.media_type
        descriptor = Descriptor(
            media_type=media_type,
            digest=digest,
            size=len(reply.body),
            artifact_type=manifest.artifact_type,
            annotations=manifest.annotations,
        )
        return FetchedManifest(descriptor=descriptor, raw=reply.body, manifest=manifest)

    async def get_blob(self, repository: str, digest: str, max_bytes: int) -> bytes:
        what = self._what(repository, digest)
        if not is_valid_digest(digest):
            raise MalformedContent(f"{what}: {digest!r} is not a valid digest")
        # Keyed by the limit too: an answer read under a larger limit must not pass a smaller.
        return await cached(
            ("blob", self.name, repository, digest, str(max_bytes)),
            lambda: self._get_blob(repository, digest, max_bytes, what),
            len,
        )

    async def _get_blob(self, repository: str, digest: str, max_bytes: int, what: str) -> bytes:
        reply = await self.transport.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scope=f"repository:{repository}:pull",
            what=what,
            limit=max_bytes,
        )
        raise_for_status(reply, what)
        verify_digest(reply.body, digest, what)
        return reply.body

    async def get_referrers(
        self, repository: str, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor]:
        what = f"{self._what(repository, digest)} referrers"
        if not is_valid_digest(digest):
            raise MalformedContent(f"{what}: {digest!r} is not a valid digest")
        found = await cached(
            ("referrers", self.name, repository, digest, artifact_type or ""),
            lambda: self._get_referrers(repository, digest, artifact_type, what),
            lambda found: sum(_descriptor_bytes(d) for d in found),
        )
        return list(found)

    async def _get_referrers(
        self, repository: str, digest: str, artifact_type: str | None, what: str
    ) -> tuple[Descriptor, ...]:
        if self.referrers_api is not False:
            found = await referrers.from_api(
                self.transport,
                repository,
                digest,
                artifact_type,
                what=what,
                limit=self.max_manifest_bytes,
                max_items=self.max_referrers,
            )
            if found is not None:
                self.referrers_api = True
                return tuple(found)
            self.referrers_api = False
        found = await referrers.from_fallback_tag(
            self._fetch_manifest,
            repository,
            digest,
            artifact_type,
            what=what,
            max_items=self.max_referrers,
        )
        return tuple(found)

    async def _fetch_manifest(self, repository: str, reference: str) -> Manifest:
        return (await self.get_manifest(repository, reference)).manifest
