"""Referrers of a digest: the OCI referrers API, else the ``sha256-<hex>`` fallback tag.

Distribution 2.8 has no referrers API and answers it with a plain-text 404; a registry that
has the API answers 200 with an (possibly empty) index even for unknown subjects. So a 404
that is not a JSON ``NAME_UNKNOWN`` (and 400/405/406/501) means "no API here".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import quote

from auditor.errors import GraphLimitExceeded, MalformedContent, NotFound
from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.digest import fallback_tag
from auditor.oci.manifest import ImageIndex, Manifest, parse_manifest
from auditor.registry.exchange import Reply
from auditor.registry.pagination import collect_pages, next_link
from auditor.registry.transport import (
    RegistryTransport,
    RepositoryNotFound,
    error_codes,
    raise_for_status,
)

_UNSUPPORTED = frozenset({400, 404, 405, 406, 501})


def index_entries(body: bytes, what: str) -> list[Descriptor]:
    """The ``manifests`` of a referrers index."""
    manifest = parse_manifest(body, mt.OCI_INDEX, where=what)
    if not isinstance(manifest, ImageIndex):
        raise MalformedContent(f"{what}: referrers answer is not an image index")
    return list(manifest.manifests)


def filter_artifact_type(
    descriptors: Sequence[Descriptor], artifact_type: str | None
) -> list[Descriptor]:
    if artifact_type is None:
        return list(descriptors)
    return [d for d in descriptors if d.artifact_type == artifact_type]


def api_missing(reply: Reply) -> bool:
    """Whether a first-page answer says the registry has no referrers API."""
    if reply.status not in _UNSUPPORTED:
        return False
    codes = {code for code, _ in error_codes(reply.body)}
    return "NAME_UNKNOWN" not in codes


async def from_api(
    transport: RegistryTransport,
    repository: str,
    digest: str,
    artifact_type: str | None,
    *,
    what: str,
    limit: int,
    max_items: int,
) -> list[Descriptor] | None:
    """Referrers through the API, following Link pages; None when the API is missing.

    The filter is applied here as well: a registry may ignore ``artifactType`` (it then
    omits the ``OCI-Filters-Applied`` header).
    """
    path = f"/v2/{repository}/referrers/{quote(digest, safe=':')}"
    params = {"artifactType": artifact_type} if artifact_type else None
    scope = f"repository:{repository}:pull"
    headers = {"Accept": mt.OCI_INDEX}
    reply = await transport.request(
        "GET", path, scope=scope, what=what, limit=limit, params=params, headers=headers
    )
    if api_missing(reply):
        return None
    raise_for_status(reply, what)
    entries = index_entries(reply.body, what)
    link = next_link(reply.headers.get("link"))
    if link is not None:
        entries += await collect_pages(
            transport,
            link,
            params=None,
            scope=scope,
            what=what,
            limit=limit,
            extract=index_entries,
            max_items=max_items,
            item_name="referrers",
            headers=headers,
        )
    if len(entries) > max_items:
        raise GraphLimitExceeded(f"{what}: more than {max_items} referrers")
    return filter_artifact_type(entries, artifact_type)


async def from_fallback_tag(
    get_manifest: Callable[[str, str], Awaitable[Manifest]],
    repository: str,
    digest: str,
    artifact_type: str | None,
    *,
    what: str,
    max_items: int,
) -> list[Descriptor]:
    """Referrers listed by the fallback tag's index; a missing tag means none."""
    try:
        manifest = await get_manifest(repository, fallback_tag(digest))
    except RepositoryNotFound:
        raise
    except NotFound:
        return []
    if not isinstance(manifest, ImageIndex):
        raise MalformedContent(f"{what}: fallback tag {fallback_tag(digest)} is not an index")
    if len(manifest.manifests) > max_items:
        raise GraphLimitExceeded(f"{what}: more than {max_items} referrers")
    return filter_artifact_type(manifest.manifests, artifact_type)
