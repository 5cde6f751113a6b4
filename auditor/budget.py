"""Whole-target limits: how many nodes and how many bytes one target may cost, in total.

Per-part limits (manifest size, children per index, depth) do not bound a target: an index
of 1,000 indexes of 1,000 children each passes every one of them and still means a million
fetches and gigabytes. :class:`BudgetedSource` wraps a target's source for the length of one
audit and charges every node *announced* (an index's children, a node's referrers) and every
byte fetched against a :class:`TargetBudget`. Nodes are charged when announced, not when
fetched, so a tree too large to audit is refused after its first few indexes, not at its end.
Once the budget is spent every later request fails at once, and the audit reports the target
as ``error`` with the budget's own message.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.errors import GraphLimitExceeded, TooLarge
from auditor.model import Descriptor
from auditor.oci.manifest import ImageIndex
from auditor.source import FetchedManifest, ManifestSource


class TargetBudgetExceeded(GraphLimitExceeded):
    """A target needs more nodes or bytes than ``limits.max_*_per_target`` allow."""


@dataclass
class TargetBudget:
    """Nodes and bytes one target may use; ``exceeded`` holds the first overrun's message."""

    max_nodes: int
    max_bytes: int
    nodes: int = 1  # the root
    bytes: int = 0
    exceeded: str | None = None

    def check(self) -> None:
        if self.exceeded is not None:
            raise TargetBudgetExceeded(self.exceeded)

    def charge_nodes(self, count: int, where: str) -> None:
        self.nodes += count
        if self.nodes > self.max_nodes and self.exceeded is None:
            self.exceeded = (
                f"target needs more than {self.max_nodes} nodes "
                f"(limits.max_nodes_per_target), stopped at {where}"
            )
        self.check()

    def charge_bytes(self, count: int, where: str) -> None:
        self.bytes += count
        if self.bytes > self.max_bytes and self.exceeded is None:
            self.exceeded = (
                f"target needs more than {self.max_bytes} bytes "
                f"(limits.max_bytes_per_target), stopped at {where}"
            )
        self.check()

    @property
    def bytes_left(self) -> int:
        return max(0, self.max_bytes - self.bytes)


class BudgetedSource:
    """A ManifestSource that charges a TargetBudget for everything read through it."""

    def __init__(self, source: ManifestSource, budget: TargetBudget) -> None:
        self._source = source
        self.budget = budget

    @property
    def name(self) -> str:
        return self._source.name

    async def list_repositories(self) -> list[str]:
        return await self._source.list_repositories()

    async def list_tags(self, repository: str) -> list[str]:
        return await self._source.list_tags(repository)

    async def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        self.budget.check()
        fetched = await self._source.get_manifest(repository, reference)
        self.budget.charge_bytes(len(fetched.raw), reference)
        if isinstance(fetched.manifest, ImageIndex):
            self.budget.charge_nodes(len(fetched.manifest.manifests), reference)
        return fetched

    async def get_blob(self, repository: str, digest: str, max_bytes: int) -> bytes:
        self.budget.check()
        # Never read more than the budget has left: the read stops at the overrun.
        limit = min(max_bytes, self.budget.bytes_left)
        try:
            blob = await self._source.get_blob(repository, digest, limit)
        except TooLarge:
            if limit < max_bytes:
                self.budget.charge_bytes(limit + 1, digest)
            raise
        self.budget.charge_bytes(len(blob), digest)
        return blob

    async def get_referrers(
        self, repository: str, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor]:
        self.budget.check()
        found = await self._source.get_referrers(repository, digest, artifact_type)
        self.budget.charge_nodes(len(found), f"referrers of {digest}")
        return found
