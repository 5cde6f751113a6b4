"""What a crawl saw, keyed by digest: the hand-off from the I/O crawler to the pure graph builder.

Keeping it content-addressed means the builder needs no source at all, and a snapshot can be
replayed in tests exactly as crawled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from auditor.errors import ErrorCategory
from auditor.model import Descriptor
from auditor.oci.manifest import FetchedManifest

V = TypeVar("V")


def _frozen(value: Mapping[str, V] | None) -> Mapping[str, V]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The root digest, every manifest fetched, every node's referrers and every error.

    ``described`` holds the image manifests an index listed that were not fetched (the crawl's
    ``verify_children_exist`` is off): they are known by their index descriptor only, which is
    what a signature covers.

    ``errors`` holds, per digest, the one-line reasons it could not be fetched or a guard
    tripped on it (a node can have several: its referrers failed and its index is too wide).
    """

    reference: str
    root: str
    manifests: Mapping[str, FetchedManifest] = field(default_factory=dict)
    referrers: Mapping[str, tuple[Descriptor, ...]] = field(default_factory=dict)
    errors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    described: Mapping[str, Descriptor] = field(default_factory=dict)
    error_categories: Mapping[str, ErrorCategory] = field(default_factory=dict)
    """Per digest in ``errors``: the kind of its first failure (absent: ``invalid``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "manifests", _frozen(self.manifests))
        object.__setattr__(self, "described", _frozen(self.described))
        object.__setattr__(self, "referrers", _frozen(self.referrers))
        object.__setattr__(self, "errors", _frozen(self.errors))
        object.__setattr__(self, "error_categories", _frozen(self.error_categories))
