"""A repository's tag list, taken this run, answering "is there a fallback tag?" without asking.

On a registry without the referrers API, every node costs a ``GET`` of its ``sha256-<hex>``
fallback tag (and each format's signature tags, such as cosign's ``sha256-<hex>.sig``), most of
them 404 for unsigned nodes. The expander has just listed the repository's tags (every page,
attachment tags included) to pick the targets, so a node whose tag is not in that list has
none: :class:`ListedTagsSource` answers those lookups from the list with no request.

The list is the one taken to make these very targets, so it is as fresh as the targets
themselves: a signature pushed after the listing is seen by the next run, as a tag pushed after
the listing is. It is only used once the registry has answered that it has no referrers API
(``referrers_api is False``: the probe still happens, once, the usual way), and only for the
repository it was listed from.
"""

from __future__ import annotations

from collections.abc import Set

from auditor.errors import NotFound
from auditor.model import Descriptor
from auditor.oci.attachments import attachment_tag
from auditor.oci.digest import fallback_tag
from auditor.source import FetchedManifest, ManifestSource


def referrers_api_of(source: ManifestSource) -> bool | None:
    """What the source learned about the referrers API (None: unknown, or not a registry)."""
    known = getattr(source, "referrers_api", None)
    return known if isinstance(known, bool) else None


class ListedTagsSource:
    """``inner`` for the targets expanded from one listing of ``repository``'s ``tags``."""

    def __init__(self, inner: ManifestSource, repository: str, tags: Set[str]) -> None:
        self.inner = inner
        self.repository = repository
        self.tags = frozenset(tags)
        self.skipped = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def referrers_api(self) -> bool | None:
        return referrers_api_of(self.inner)

    async def list_repositories(self) -> list[str]:
        return await self.inner.list_repositories()

    async def list_tags(self, repository: str) -> list[str]:
        return await self.inner.list_tags(repository)

    def _unlisted(self, repository: str, tag: str) -> bool:
        return (
            repository == self.repository
            and attachment_tag(tag) is not None
            and tag not in self.tags
        )

    async def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        if self._unlisted(repository, reference):
            self.skipped += 1
            raise NotFound(
                f"{self.name}/{repository}:{reference}: not in the repository's tag list"
            )
        return await self.inner.get_manifest(repository, reference)

    async def get_blob(self, repository: str, digest: str, max_bytes: int) -> bytes:
        return await self.inner.get_blob(repository, digest, max_bytes)

    async def get_referrers(
        self, repository: str, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor]:
        if referrers_api_of(self.inner) is False and self._unlisted(
            repository, fallback_tag(digest)
        ):
            self.skipped += 1
            return []
        return await self.inner.get_referrers(repository, digest, artifact_type)
