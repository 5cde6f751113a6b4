"""Turn what the user asked for (CLI references, config registries and layouts) into pinned targets.

Expansion talks to sources (catalog, tags lists) but decides with pure functions, so the tag
filtering rules are tested without a registry.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from auditor.audit import AuditTarget
from auditor.config import AuditorConfig, LayoutConfig, RegistryConfig, TagFilter
from auditor.coverage import error_target
from auditor.errors import AuditorError, ErrorCategory
from auditor.layout.reader import OciLayoutSource
from auditor.listed import ListedTagsSource
from auditor.model import Descriptor, NoteKind, ReportNote, TargetResult
from auditor.oci.attachments import AttachmentTag, attachment_tag, impostor_reason
from auditor.oci.manifest import ImageIndex
from auditor.oci.reference import (
    ImageReference,
    LayoutReference,
    Reference,
    RegistryPattern,
    is_valid_repository,
    is_valid_tag,
    parse_target,
)
from auditor.source import ManifestSource

_GLOB_CHARS = frozenset("*?[")


_ATTACHMENT_CHECKS = 8  # attachment-named tags checked at once
_MAX_LISTED_REFERRERS = 1000  # a fallback index listing more is audited, not trusted


def filter_tags(tags: Iterable[str], tag_filter: TagFilter) -> list[str]:
    """Tags matching include and not exclude, sorted by name (no limit yet)."""
    return sorted(
        {
            t
            for t in tags
            if any(fnmatch.fnmatchcase(t, pat) for pat in tag_filter.include)
            and not any(fnmatch.fnmatchcase(t, pat) for pat in tag_filter.exclude)
        }
    )


_SEMVER = re.compile(
    r"v?(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?(?:\.(0|[1-9][0-9]*))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    re.ASCII,
)
_MAX_VERSION_DIGITS = 18  # longer numbers are not versions (a date-time or a hash)
# distribution's tag grammar: at most 128 characters. Tags come from the registry unchecked; a
# longer one is no version, so no pre-release number reaches int() past its digit limit.
_MAX_TAG_LENGTH = 128

VersionKey = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


def version_key(tag: str) -> VersionKey | None:
    """The tag as a semantic version (``v`` prefix, missing minor/patch as 0, build metadata
    ignored), ordered as semver orders them (a pre-release before its release); None when the
    tag is not a version."""
    if len(tag) > _MAX_TAG_LENGTH:
        return None
    match = _SEMVER.fullmatch(tag)
    if match is None or any(len(g or "") > _MAX_VERSION_DIGITS for g in match.groups()[:3]):
        return None
    major, minor, patch, pre = match.groups()
    identifiers = tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in (pre or "").split(".") if pre
    )
    return (int(major), int(minor or 0), int(patch or 0), 0 if pre else 1, identifiers)


def newest_first(tags: Iterable[str]) -> list[str]:
    """Version tags newest first (semantic-version order), then every other tag by name,
    descending (date-stamped names sort newest first). Push time is not used: distribution
    2.8's tags list and an OCI layout's index carry none."""
    unique = sorted(set(tags), reverse=True)
    versions = [(k, t) for t in unique if (k := version_key(t)) is not None]
    versions.sort(key=lambda pair: pair[0], reverse=True)  # stable: ties keep name order
    named = {t for _, t in versions}
    return [t for _, t in versions] + [t for t in unique if t not in named]


@dataclass(frozen=True)
class TagSelection:
    """The tags to audit (by name) and how many candidates ``limit`` left out."""

    tags: list[str]
    candidates: int
    left_out: list[str]


def choose_tags(
    tags: Iterable[str], tag_filter: TagFilter, attachments: Collection[str] = frozenset()
) -> TagSelection:
    """Filtered, less the genuine ``attachments``; past ``limit``, the newest (see
    :func:`newest_first`) are kept and the rest counted, never dropped silently.

    Only tags whose content was checked to be what their name says (see
    :mod:`auditor.oci.attachments`) are left out as attachments; a name alone never hides one.
    """
    candidates = [t for t in filter_tags(tags, tag_filter) if t not in attachments]
    if len(candidates) <= tag_filter.limit:
        return TagSelection(candidates, len(candidates), [])
    ordered = newest_first(candidates)
    kept = ordered[: tag_filter.limit]
    return TagSelection(sorted(kept), len(candidates), ordered[tag_filter.limit :])


def select_tags(
    tags: Iterable[str], tag_filter: TagFilter, attachments: Collection[str] = frozenset()
) -> list[str]:
    """The tags :func:`choose_tags` keeps, by name."""
    return choose_tags(tags, tag_filter, attachments).tags


def tags_left_out_note(subject: str, selection: TagSelection, limit: int) -> ReportNote:
    shown = ", ".join(selection.left_out[:5])
    more = f" and {len(selection.left_out) - 5} more" if len(selection.left_out) > 5 else ""
    count = len(selection.left_out)
    return ReportNote(
        NoteKind.TAGS_LEFT_OUT,
        subject,
        f"{subject}: {count} of {selection.candidates} tags not audited: tags.limit is "
        f"{limit}, the newest were kept (version order, then name); left out: {shown}{more}",
        left_out=count,
    )


async def genuine_attachments(
    source: ManifestSource, repository: str, tags: Iterable[str]
) -> set[str]:
    """The attachment-named tags among ``tags`` whose content is what their name says.

    A tag that cannot be read, or whose content is anything else, is not returned: it is
    audited like any tag (and a read failure becomes that target's error).
    """
    claims = [c for c in map(attachment_tag, tags) if c is not None]
    slots = asyncio.Semaphore(_ATTACHMENT_CHECKS)

    async def check(claim: AttachmentTag) -> str | None:
        async with slots:
            try:
                genuine = await _is_genuine(source, repository, claim)
            except AuditorError:
                return None
        return claim.tag if genuine else None

    found = await asyncio.gather(*(check(c) for c in claims))
    return {tag for tag in found if tag is not None}


async def _is_genuine(source: ManifestSource, repository: str, claim: AttachmentTag) -> bool:
    manifest = (await source.get_manifest(repository, claim.tag)).manifest
    subjects: list[Descriptor | None] = []
    if claim.kind == "referrers" and isinstance(manifest, ImageIndex):
        if len(manifest.manifests) > _MAX_LISTED_REFERRERS:
            return False
        for entry in manifest.manifests:
            listed = await source.get_manifest(repository, entry.digest)
            subjects.append(listed.manifest.subject)
    return impostor_reason(claim, manifest, subjects) is None


_REPOSITORY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-/")


def is_glob(pattern: str) -> bool:
    return bool(_GLOB_CHARS & set(pattern))


def glob_can_match_a_repository(pattern: str) -> bool:
    """False when no repository name can match: outside ``[...]`` sets, the glob has a
    character distribution never allows in a name (uppercase, space, ``:``...). What
    ``config check`` can know without asking the registry's catalog."""
    depth = 0
    for ch in pattern:
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        elif not depth and ch not in "*?" and ch not in _REPOSITORY_CHARS:
            return False
    return True


def select_repositories(catalog: Iterable[str], patterns: Sequence[str]) -> list[str]:
    return sorted({r for r in catalog if any(fnmatch.fnmatchcase(r, p) for p in patterns)})


class SourceFactory(Protocol):
    """Where targets get their sources; the composition root implements it."""

    async def registry(self, host: str) -> ManifestSource: ...

    def layout(self, path: Path) -> OciLayoutSource: ...


@dataclass(frozen=True)
class Expander:
    """Expands references into pinned AuditTargets; failures become error TargetResults.

    ``layout_scope`` (``audit now --scope``) is the trust policy scope of the ``oci-layout:``
    references given; without it a referenced layout takes the ``scope:`` of the configured
    layout at the same path, if any. What the expansion leaves out (tags past ``tags.limit``,
    globs that match nothing) is appended to ``notes``, for the report.
    """

    sources: SourceFactory
    config: AuditorConfig
    layout_scope: str | None = None
    notes: list[ReportNote] = field(default_factory=list)

    async def from_arguments(self, texts: Sequence[str]) -> list[AuditTarget | TargetResult]:
        out: list[AuditTarget | TargetResult] = []
        for text in texts:
            target = parse_target(text)
            if isinstance(target, RegistryPattern):
                out.extend(await self.expand_pattern(target))
            else:
                out.extend(await self.expand(target))
        return out

    async def from_config(self) -> list[AuditTarget | TargetResult]:
        out: list[AuditTarget | TargetResult] = []
        for registry in self.config.registries:
            out.extend(await self._expand_registry(registry))
        for layout in self.config.layouts:
            out.extend(await self._expand_layout(layout))
        return out

    async def from_registry(self, registry: RegistryConfig) -> list[AuditTarget | TargetResult]:
        """Every target of one configured registry (repositories, globs, tag filter)."""
        return await self._expand_registry(registry)

    async def from_layout(self, layout: LayoutConfig) -> list[AuditTarget | TargetResult]:
        return await self._expand_layout(layout)

    async def expand(self, reference: Reference) -> list[AuditTarget | TargetResult]:
        if isinstance(reference, LayoutReference):
            path = Path(reference.path)
            configured = self.config.layout_for(path)
            scope = self.layout_scope or (configured.scope if configured else None)
            return await self._expand_layout(
                LayoutConfig(path=path, scope=scope), pinned=reference
            )
        source = await self.sources.registry(reference.registry)
        if reference.ref is not None:
            return [AuditTarget(reference, source, reference.repository)]
        registry = self.config.registry_for(reference.registry)
        tag_filter = registry.tags if registry else TagFilter()
        return await self._expand_repository(source, reference, tag_filter)

    async def expand_pattern(self, target: RegistryPattern) -> list[AuditTarget | TargetResult]:
        """A whole registry, or the repositories its catalog lists that match a glob, under
        the config's tag filter for that host (default: every tag, ``tags.limit``). A glob
        that matches nothing is an error target: auditing nothing must not pass."""
        source = await self.sources.registry(target.registry)
        try:
            catalog = await source.list_repositories()
        except AuditorError as exc:
            return [_failed(str(target), exc)]
        repositories = select_repositories(catalog, [target.pattern])
        if not repositories:
            return [
                error_target(
                    str(target),
                    f"no repository in {target.registry}'s catalog matches {target.pattern!r} "
                    f"({len(catalog)} listed)",
                    category=ErrorCategory.NOT_FOUND,
                )
            ]
        registry = self.config.registry_for(target.registry)
        tag_filter = registry.tags if registry else TagFilter()
        out: list[AuditTarget | TargetResult] = []
        for repo in repositories:
            reference = ImageReference(target.registry, repo)
            out.extend(await self._expand_repository(source, reference, tag_filter))
        return out

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
            for pattern in patterns:
                if not select_repositories(catalog, [pattern]):
                    self.notes.append(_no_match(registry.host, pattern, len(catalog)))
        for repo in repositories:
            reference = ImageReference(registry.host, repo)
            out.extend(await self._expand_repository(source, reference, registry.tags))
        return out

    async def _expand_repository(
        self, source: ManifestSource, reference: ImageReference, tag_filter: TagFilter
    ) -> list[AuditTarget | TargetResult]:
        if not is_valid_repository(reference.repository):
            # A name from a catalog (or a config) goes into request paths: "../x" or "a?b"
            # would address something else on the registry. Refused, and said.
            shown = repr(reference.repository[:100])
            return [
                error_target(
                    f"{reference.registry}/{shown}",
                    f"{reference.registry}: {shown} is not a valid repository name "
                    "(distribution's grammar): not audited",
                    category=ErrorCategory.INVALID,
                )
            ]
        try:
            tags = await source.list_tags(reference.repository)
        except AuditorError as exc:
            return [_failed(str(reference), exc)]
        candidates = filter_tags(tags, tag_filter)
        # A listed name goes into a request path as a catalog name does: refused, and said.
        invalid = [_invalid_tag(reference, t) for t in candidates if not is_valid_tag(t)]
        candidates = [t for t in candidates if is_valid_tag(t)]
        attachments = await genuine_attachments(source, reference.repository, candidates)
        selection = choose_tags(candidates, tag_filter, attachments)
        chosen = selection.tags
        if selection.left_out:
            self.notes.append(tags_left_out_note(str(reference), selection, tag_filter.limit))
        if not chosen:
            # Auditing nothing must not look like a clean pass.
            return [*invalid, _nothing(str(reference), len(tags))]
        # The listing also says which nodes have a fallback (or signature) tag at all.
        listed = ListedTagsSource(source, reference.repository, set(tags))
        return [
            *invalid,
            *(AuditTarget(reference.with_tag(t), listed, reference.repository) for t in chosen),
        ]

    async def _expand_layout(
        self, layout: LayoutConfig, pinned: LayoutReference | None = None
    ) -> list[AuditTarget | TargetResult]:
        reference = pinned or LayoutReference(str(layout.path))
        try:
            source = self.sources.layout(layout.path)
            if reference.ref is not None:
                return [AuditTarget(reference, source, "", layout.scope)]
            candidates = filter_tags(await source.list_tags(""), layout.tags)
            attachments = await genuine_attachments(source, "", candidates)
            selection = choose_tags(candidates, layout.tags, attachments)
            tags = selection.tags
            if selection.left_out:
                note = tags_left_out_note(str(reference), selection, layout.tags.limit)
                self.notes.append(note)
            # A layout written by buildx may carry no ref.name at all: audit its roots by digest.
            untagged = source.untagged_roots() if not tags else []
        except AuditorError as exc:
            return [_failed(str(reference), exc)]
        pinned_refs = [reference.with_tag(t) for t in tags]
        pinned_refs += [reference.with_digest(d) for d in untagged]
        if not pinned_refs:
            return [_nothing(str(reference), 0)]
        return [AuditTarget(ref, source, "", layout.scope) for ref in pinned_refs]


def _invalid_tag(reference: ImageReference, tag: str) -> TargetResult:
    shown = repr(tag[:100])
    return error_target(
        f"{reference}:{shown}",
        f"{reference}: tag {shown} is not a valid tag (distribution's grammar): not audited",
        category=ErrorCategory.INVALID,
    )


def _failed(reference: str, exc: AuditorError) -> TargetResult:
    return error_target(reference, str(exc), category=exc.category)


def _no_match(host: str, pattern: str, catalog_size: int) -> ReportNote:
    return ReportNote(
        NoteKind.NO_REPOSITORY_MATCHED,
        f"{host}/{pattern}",
        f"{host}: repository glob {pattern!r} matched none of the {catalog_size} repositories "
        "in the catalog: nothing audited for it",
    )


def _nothing(reference: str, tag_count: int) -> TargetResult:
    return error_target(
        reference,
        f"no image to audit: {tag_count} tags, none selected by the tag filter "
        "(referrers fallback and cosign tags holding what their names say are not audited)",
        category=ErrorCategory.NOT_FOUND,
    )
