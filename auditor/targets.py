"""Turn what the user asked for (CLI references, config registries and layouts) into pinned targets.

Expansion talks to sources (catalog, tags lists) but decides with pure functions, so the tag
filtering rules are tested without a registry.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from auditor.audit import AuditTarget
from auditor.config import AuditorConfig, LayoutConfig, RegistryConfig, TagFilter
from auditor.coverage import error_target
from auditor.errors import AuditorError
from auditor.layout.reader import OciLayoutSource
from auditor.model import TargetResult
from auditor.oci.digest import is_attachment_tag
from auditor.oci.reference import ImageReference, LayoutReference, Reference, parse_reference
from auditor.source import ManifestSource

_GLOB_CHARS = frozenset("*?[")


def is_auditable_tag(tag: str) -> bool:
    """Referrers fallback tags (``sha256-<hex>``) and cosign tags (``.sig/.att/.sbom``) are
    attachments, not images to audit."""
    return not is_attachment_tag(tag)


def select_tags(tags: Iterable[str], tag_filter: TagFilter) -> list[str]:
    """Auditable tags matching include and not exclude, sorted by name, at most ``limit``."""
    chosen = sorted(
        {
            t
            for t in tags
            if is_auditable_tag(t)
            and any(fnmatch.fnmatchcase(t, pat) for pat in tag_filter.include)
            and not any(fnmatch.fnmatchcase(t, pat) for pat in tag_filter.exclude)
        }
    )
    return chosen[: tag_filter.limit]


def select_repositories(catalog: Iterable[str], patterns: Sequence[str]) -> list[str]:
    return sorted({r for r in catalog if any(fnmatch.fnmatchcase(r, p) for p in patterns)})


class SourceFactory(Protocol):
    """Where targets get their sources; the composition root implements it."""

    async def registry(self, host: str) -> ManifestSource: ...

    def layout(self, path: Path) -> OciLayoutSource: ...


@dataclass(frozen=True)
class Expander:
    """Expands references into pinned AuditTargets; failures become error TargetResults."""

    sources: SourceFactory
    config: AuditorConfig

    async def from_arguments(self, texts: Sequence[str]) -> list[AuditTarget | TargetResult]:
        out: list[AuditTarget | TargetResult] = []
        for text in texts:
            out.extend(await self.expand(parse_reference(text)))
        return out

    async def from_config(self) -> list[AuditTarget | TargetResult]:
        out: list[AuditTarget | TargetResult] = []
        for registry in self.config.registries:
            out.extend(await self._expand_registry(registry))
        for layout in self.config.layouts:
            out.extend(await self._expand_layout(layout))
        return out

    async def expand(self, reference: Reference) -> list[AuditTarget | TargetResult]:
        if isinstance(reference, LayoutReference):
            return await self._expand_layout(
                LayoutConfig(path=Path(reference.path)), pinned=reference
            )
        source = await self.sources.registry(reference.registry)
        if reference.ref is not None:
            return [AuditTarget(reference, source, reference.repository)]
        registry = self.config.registry_for(reference.registry)
        tag_filter = registry.tags if registry else TagFilter()
        return await self._expand_repository(source, reference, tag_filter)

    async def _expand_registry(self, registry: RegistryConfig) -> list[AuditTarget | TargetResult]:
        source = await self.sources.registry(registry.host)
        repositories = [p for p in registry.repositories if not _GLOB_CHARS & set(p)]
        patterns = [p for p in registry.repositories if _GLOB_CHARS & set(p)]
        out: list[AuditTarget | TargetResult] = []
        if patterns:
            try:
                catalog = await source.list_repositories()
            except AuditorError as exc:
                return [_failed(f"{registry.host}/{','.join(patterns)}", exc)]
            repositories = sorted(set(repositories) | set(select_repositories(catalog, patterns)))
        for repo in repositories:
            reference = ImageReference(registry.host, repo)
            out.extend(await self._expand_repository(source, reference, registry.tags))
        return out

    async def _expand_repository(
        self, source: ManifestSource, reference: ImageReference, tag_filter: TagFilter
    ) -> list[AuditTarget | TargetResult]:
        try:
            tags = await source.list_tags(reference.repository)
        except AuditorError as exc:
            return [_failed(str(reference), exc)]
        chosen = select_tags(tags, tag_filter)
        if not chosen:
            # Auditing nothing must not look like a clean pass.
            return [_nothing(str(reference), len(tags))]
        return [AuditTarget(reference.with_tag(t), source, reference.repository) for t in chosen]

    async def _expand_layout(
        self, layout: LayoutConfig, pinned: LayoutReference | None = None
    ) -> list[AuditTarget | TargetResult]:
        reference = pinned or LayoutReference(str(layout.path))
        try:
            source = self.sources.layout(layout.path)
            if reference.ref is not None:
                return [AuditTarget(reference, source, "")]
            tags = select_tags(await source.list_tags(""), layout.tags)
            # A layout written by buildx may carry no ref.name at all: audit its roots by digest.
            untagged = source.untagged_roots() if not tags else []
        except AuditorError as exc:
            return [_failed(str(reference), exc)]
        pinned_refs = [reference.with_tag(t) for t in tags]
        pinned_refs += [reference.with_digest(d) for d in untagged]
        if not pinned_refs:
            return [_nothing(str(reference), 0)]
        return [AuditTarget(ref, source, "") for ref in pinned_refs]


def _failed(reference: str, exc: AuditorError) -> TargetResult:
    return error_target(reference, str(exc))


def _nothing(reference: str, tag_count: int) -> TargetResult:
    return error_target(
        reference,
        f"no image to audit: {tag_count} tags, none selected by the tag filter "
        "(referrer and cosign tags are never audited)",
    )
