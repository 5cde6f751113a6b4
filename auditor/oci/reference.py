"""Image references: ``host[:port]/repo[:tag|@digest]`` and ``oci-layout:PATH[:tag|@digest]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from auditor.errors import InvalidReference
from auditor.oci.digest import is_valid_digest

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_REPO_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$"
)
LAYOUT_PREFIX = "oci-layout:"
# Plain http is used for these without asking (``::1`` as well as ``[::1]``: a host may come
# bracketed from a reference or bare from elsewhere).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def hostname(host: str) -> str:
    """``host[:port]`` without its port (``[::1]:5000`` -> ``[::1]``; a bare ``::1`` is kept)."""
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """True when ``host[:port]`` names this machine (plain http is allowed there)."""
    return hostname(host).lower() in LOOPBACK_HOSTS


@dataclass(frozen=True)
class ImageReference:
    """A reference into a registry. ``tag`` and ``digest`` are both None for a whole repository."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def host(self) -> str:
        """Host without port (``[::1]`` keeps its brackets)."""
        return hostname(self.registry)

    @property
    def scope(self) -> str:
        """``host/repository``, the unit trust policies and coverage rules match on."""
        return f"{self.registry}/{self.repository}"

    @property
    def ref(self) -> str | None:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return self.digest or self.tag

    def with_tag(self, tag: str) -> ImageReference:
        return ImageReference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> ImageReference:
        return ImageReference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = self.scope
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True)
class LayoutReference:
    """An OCI image layout directory on disk, optionally narrowed to a tag or digest."""

    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def scope(self) -> str:
        return f"{LAYOUT_PREFIX}{self.path}"

    @property
    def ref(self) -> str | None:
        return self.digest or self.tag

    def with_tag(self, tag: str) -> LayoutReference:
        return LayoutReference(self.path, tag, None)

    def with_digest(self, digest: str) -> LayoutReference:
        return LayoutReference(self.path, self.tag, digest)

    def __str__(self) -> str:
        text = self.scope
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


Reference = ImageReference | LayoutReference


def _split_digest(text: str, original: str) -> tuple[str, str | None]:
    if "@" not in text:
        return text, None
    rest, digest = text.rsplit("@", 1)
    if not is_valid_digest(digest):
        raise InvalidReference(f"reference {original!r}: {digest!r} is not a valid digest")
    return rest, digest


def parse_layout_reference(text: str) -> LayoutReference:
    """``oci-layout:PATH[:tag|@digest]``; a tag is what follows the last ':' outside the path."""
    body = text[len(LAYOUT_PREFIX) :]
    body, digest = _split_digest(body, text)
    tag = None
    head, sep, tail = body.rpartition(":")
    if sep and head and "/" not in tail and _TAG.match(tail):
        body, tag = head, tail
    if not body:
        raise InvalidReference(f"reference {text!r}: no layout path")
    return LayoutReference(body, tag, digest)


def parse_reference(text: str) -> Reference:
    """Parse a user-supplied reference; raises InvalidReference naming the text on any defect."""
    original = text.strip()
    if not original:
        raise InvalidReference("empty image reference")
    if original.startswith(LAYOUT_PREFIX):
        return parse_layout_reference(original)
    text = original
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme) :]
    if "/" in text and "@" in text.split("/", 1)[0]:
        # user:password@host: never echoed (it is a secret), never accepted.
        raise InvalidReference(
            "a reference must not carry credentials (user:password@host); give them in the "
            "config's registries[].auth:"
        )
    text, digest = _split_digest(text, original)
    tag = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidReference(f"reference {original!r}: {tag!r} is not a valid tag")
    first, _, remainder = text.partition("/")
    looks_like_host = "." in first or ":" in first or first == "localhost" or first[:1] == "["
    if remainder and looks_like_host:
        registry, repository = first, remainder
    else:
        registry, repository = DOCKER_HUB, text
    if not _HOST.match(registry):
        raise InvalidReference(f"reference {original!r}: {registry!r} is not a valid registry host")
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in repository:
            repository = f"library/{repository}"
    if not repository or not all(_REPO_COMPONENT.match(c) for c in repository.split("/")):
        raise InvalidReference(
            f"reference {original!r}: {repository!r} is not a valid repository name"
        )
    return ImageReference(registry, repository, tag, digest)
