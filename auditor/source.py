"""The one interface the crawler needs from wherever manifests live (a registry or a layout).

Both the httpx registry client and the OCI layout reader implement it, so the graph, the
verifier and the coverage policy never know which one they are looking at.
"""

from __future__ import annotations

from typing import Protocol

from auditor.model import Descriptor
from auditor.oci.manifest import FetchedManifest

# FetchedManifest lives in oci/ (the pure core must not import this module); it is part of
# this interface, so it is exported here too.
__all__ = ["FetchedManifest", "ManifestSource"]


class ManifestSource(Protocol):
    """Read access to one registry host or one layout. ``repository`` is ignored by layouts."""

    @property
    def name(self) -> str:
        """Names the source in messages (``127.0.0.1:5000``, ``oci-layout:/path``)."""
        ...

    async def list_repositories(self) -> list[str]:
        """Every repository (registry catalog, following pagination)."""
        ...

    async def list_tags(self, repository: str) -> list[str]:
        """Every tag of a repository, following pagination, fallback tags included."""
        ...

    async def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        """A manifest by tag or digest; digest-checked, size-limited, parsed."""
        ...

    async def get_blob(self, repository: str, digest: str, max_bytes: int) -> bytes:
        """A blob, digest-checked; raises TooLarge past ``max_bytes``."""
        ...

    async def get_referrers(
        self, repository: str, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Referrers of ``digest``: referrers API, else the ``sha256-<hex>`` fallback tag index."""
        ...
