"""Registry notifications, read as hints of what to re-audit: the pure parser.

Three shapes arrive at ``POST /events``: CNCF distribution's notification envelope
(``application/vnd.docker.distribution.events.v1+json``, sent by Debian's docker-registry),
Harbor's webhooks (its ``Default`` format and its ``CloudEvents`` format), and a plain
``{"reference": "host/repo:tag"}`` for anything else (a CI job after ``notation sign``).

An event is never trusted for what it says about content: only *which repository* (and which
tag) changed is taken from it, and the daemon re-reads the registry. Only pushes and deletes
count: distribution notifies every pull and HEAD too, the daemon's own reads included, and a
daemon that re-audited on those would audit forever. Blob pushes are ignored (a manifest push
always follows). Everything else is counted as ignored, never an error: a registry sending an
event kind we do not use is not misbehaving.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from auditor.errors import AuditorError, InvalidReference
from auditor.oci import mediatypes as mt
from auditor.oci.digest import is_valid_digest
from auditor.oci.reference import ImageReference, parse_reference

DISTRIBUTION_EVENTS = "application/vnd.docker.distribution.events.v1+json"
MAX_EVENTS_PER_REQUEST = 1000


class EventError(AuditorError):
    """A notification body that cannot be read at all (answered 400)."""


class Action(StrEnum):
    PUSH = "push"
    DELETE = "delete"


@dataclass(frozen=True)
class RegistryEvent:
    """Something was pushed to or deleted from ``registry/repository`` (``tag`` when known)."""

    registry: str
    repository: str
    action: Action
    source: str
    tag: str | None = None

    @property
    def scope(self) -> str:
        return f"{self.registry}/{self.repository}"


@dataclass(frozen=True)
class ParsedEvents:
    events: tuple[RegistryEvent, ...]
    ignored: int


def authorized(header: str | None, secrets: Iterable[str]) -> bool:
    """``Authorization`` is ``Bearer <secret>`` or, as Harbor's auth header sends it, the
    secret itself. Compared in constant time; no configured secret means nobody."""
    if not header:
        return False
    offered = header.strip()
    candidates = [offered]
    if offered[:7].lower() == "bearer ":
        candidates.append(offered[7:].strip())
    return any(
        hmac.compare_digest(c.encode(), s.encode()) for s in secrets if s for c in candidates
    )


def parse_events(body: bytes) -> ParsedEvents:
    """The events in one notification body, whichever of the three shapes it has."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise EventError(f"event body is not JSON: {_short(exc)}") from None
    if not isinstance(data, dict):
        raise EventError("event body is not a JSON object")
    if "events" in data:
        return _distribution(data["events"])
    if "specversion" in data:
        return _harbor_cloudevents(data)
    if "event_data" in data and "type" in data:
        return _harbor_default(data)
    if "reference" in data:
        return _plain(data["reference"])
    raise EventError(
        "event body is neither a distribution notification, a Harbor webhook nor "
        '{"reference": "host/repo:tag"}'
    )


# --- the shapes -------------------------------------------------------------------------------


def _distribution(events: object) -> ParsedEvents:
    if not isinstance(events, list):
        raise EventError("distribution notification: 'events' is not a list")
    _bounded(events)
    out: list[RegistryEvent] = []
    ignored = 0
    for raw in events:
        event = _distribution_event(raw)
        if event is None:
            ignored += 1
        else:
            out.append(event)
    return ParsedEvents(tuple(out), ignored)


def _distribution_event(raw: object) -> RegistryEvent | None:
    if not isinstance(raw, dict):
        return None
    action = raw.get("action")
    target = raw.get("target")
    if action not in ("push", "delete") or not isinstance(target, dict):
        return None
    media_type = target.get("mediaType")
    repository = target.get("repository")
    # A delete names no media type; a push of a blob names a layer's type: skip those.
    if action == "push" and media_type not in mt.MANIFEST_TYPES:
        return None
    request = raw.get("request")
    host = request.get("host") if isinstance(request, dict) else None
    if not isinstance(host, str) or not host:
        url = target.get("url")
        host = urlsplit(url).netloc if isinstance(url, str) else None
    tag = target.get("tag")
    return _event(host, repository, Action(action), "distribution", tag)


def _harbor_default(data: Mapping[str, Any]) -> ParsedEvents:
    kind = data.get("type")
    action = {"PUSH_ARTIFACT": Action.PUSH, "DELETE_ARTIFACT": Action.DELETE}.get(str(kind))
    return _harbor(action, data.get("event_data"), "harbor")


def _harbor_cloudevents(data: Mapping[str, Any]) -> ParsedEvents:
    kind = data.get("type")
    action = {"harbor.artifact.pushed": Action.PUSH, "harbor.artifact.deleted": Action.DELETE}
    return _harbor(action.get(str(kind)), data.get("data"), "harbor-cloudevents")


def _harbor(action: Action | None, payload: object, source: str) -> ParsedEvents:
    if action is None:
        return ParsedEvents((), 1)
    if not isinstance(payload, dict):
        raise EventError(f"{source} webhook: no event data")
    resources = payload.get("resources")
    repository = payload.get("repository")
    full_name = repository.get("repo_full_name") if isinstance(repository, dict) else None
    if not isinstance(resources, list) or not resources:
        raise EventError(f"{source} webhook: no resources")
    _bounded(resources)
    out: list[RegistryEvent] = []
    ignored = 0
    for resource in resources:
        url = resource.get("resource_url") if isinstance(resource, dict) else None
        ref = _reference(url) if isinstance(url, str) else None
        if ref is None or (isinstance(full_name, str) and ref.repository != full_name):
            ignored += 1
            continue
        tag = resource.get("tag")
        event = _event(ref.registry, ref.repository, action, source, tag)
        if event is None:
            ignored += 1
        else:
            out.append(event)
    return ParsedEvents(tuple(out), ignored)


def _plain(reference: object) -> ParsedEvents:
    if not isinstance(reference, str):
        raise EventError("'reference' is not a string")
    ref = _reference(reference)
    if ref is None:
        raise EventError(f"'reference' is not a registry image reference: {reference[:200]!r}")
    event = _event(ref.registry, ref.repository, Action.PUSH, "reference", ref.tag)
    return ParsedEvents((event,) if event else (), 0 if event else 1)


# --- helpers ----------------------------------------------------------------------------------


def _event(
    host: object, repository: object, action: Action, source: str, tag: object
) -> RegistryEvent | None:
    if not isinstance(host, str) or not isinstance(repository, str):
        return None
    ref = _reference(f"{host}/{repository}")
    if ref is None or ref.repository != repository:
        return None
    # Harbor names a push by digest with the digest as its "tag".
    clean_tag = tag if isinstance(tag, str) and tag and not is_valid_digest(tag) else None
    if clean_tag is not None and _reference(f"{ref.scope}:{clean_tag}") is None:
        clean_tag = None
    return RegistryEvent(ref.registry, ref.repository, action, source, clean_tag)


def _reference(text: str) -> ImageReference | None:
    if len(text) > 1024:
        return None
    try:
        ref = parse_reference(text)
    except InvalidReference:
        return None
    return ref if isinstance(ref, ImageReference) else None


def _bounded(items: list[Any]) -> None:
    if len(items) > MAX_EVENTS_PER_REQUEST:
        raise EventError(f"{len(items)} events in one request: more than {MAX_EVENTS_PER_REQUEST}")


def _short(exc: BaseException) -> str:
    return str(exc)[:200]
