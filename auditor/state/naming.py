"""The labels a target is grouped by (registry, repository, tag), from its reference. Pure."""

from __future__ import annotations

from auditor.errors import InvalidReference
from auditor.oci.reference import LayoutReference, parse_reference


def target_labels(reference: str, source: str) -> tuple[str, str, str]:
    """``(registry, repository, tag)``; a layout's registry is ``oci-layout:PATH`` and its
    repository is empty. A reference that does not parse (an expansion failure such as
    ``host/team/*``) keeps its text as the repository under the source it came from."""
    try:
        parsed = parse_reference(reference)
    except InvalidReference:
        return source, reference, ""
    if isinstance(parsed, LayoutReference):
        return parsed.scope, "", parsed.tag or parsed.digest or ""
    return parsed.registry, parsed.repository, parsed.tag or parsed.digest or ""


def registry_source(host: str) -> str:
    """The key of one registry host in runs and results: the daemon's unit of scheduling."""
    return f"registry:{host}"


def layout_source(path: str) -> str:
    return f"layout:{path}"


def source_key(reference: str, fallback: str) -> str:
    """Which source a target belongs to, from its reference (``fallback`` if it does not
    parse), so results of CLI, API and scheduled runs of one registry line up."""
    try:
        parsed = parse_reference(reference)
    except InvalidReference:
        return fallback
    if isinstance(parsed, LayoutReference):
        return layout_source(parsed.path)
    return registry_source(parsed.registry)
