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


MAX_REPOSITORY_LENGTH = 255  # distribution's limit on a whole repository name


def is_valid_repository(name: str) -> bool:
    """A repository name by distribution's grammar (lowercase components joined by ``/``,
    at most 255 characters): what a catalog may list and what goes into a request path."""
    return (
        0 < len(name) <= MAX_REPOSITORY_LENGTH
        and all(_REPO_COMPONENT.fullmatch(c) for c in name.split("/"))
    )


def is_valid_tag(name: str) -> bool:
    """A tag by distribution's grammar (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``): what a tags
    list may name and what goes into a request path (``..`` or an empty name would address
    something else)."""
    return bool(_TAG.fullmatch(name))


def is_valid_host(text: str) -> bool:
    """``host[:port]`` as references spell it (a bracketed IPv6 address included)."""
    return bool(_HOST.fullmatch(text))


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
    if sep and head and "/" not in tail and _TAG.fullmatch(tail):
        body, tag = head, tail
    if not body:
        raise InvalidReference(f"reference {text!r}: no layout path")
    return LayoutReference(body, tag, digest)


def _looks_like_host(component: str) -> bool:
    """Docker's rule for the first ``/``-separated component of a reference: a registry host
    when it has a ``.`` or a ``:`` (a port), or is ``localhost`` (or a bracketed IPv6
    address); otherwise the reference is a Docker Hub repository (``team/app``)."""
    return "." in component or ":" in component or component == "localhost" or component[:1] == "["


def _is_bare_host(text: str) -> bool:
    """A TARGET with no ``/`` names a whole registry only when it cannot be a Docker Hub
    image: a valid ``host[:port]`` whose host has a ``.``, is ``localhost`` or is bracketed.
    ``node:20`` stays Docker Hub's image (a numeric tag is not a port: write ``HOST:PORT/``
    to mean that host), and so does ``ubuntu:22.04`` (not a port at all)."""
    if not _HOST.fullmatch(text):
        return False
    name = hostname(text)
    return "." in name or name == "localhost" or name.startswith("[")


@dataclass(frozen=True)
class RegistryPattern:
    """A whole registry (``pattern`` ``*``) or the repositories matching a glob, listed from
    its catalog: ``HOST[:PORT]``, ``HOST/``, ``HOST/*``, ``HOST/team/*``."""

    registry: str
    pattern: str = "*"

    def __str__(self) -> str:
        return f"{self.registry}/{self.pattern}"


Target = Reference | RegistryPattern
_GLOB = frozenset("*?[")
_PATTERN = re.compile(r"^[a-z0-9._/*?\[\]!-]+$")


def parse_target(text: str) -> Target:
    """A ``TARGET`` argument: an image reference, or a registry / repository glob.

    The rule that tells a host from a Docker Hub name is Docker's (see :func:`_looks_like_host`)
    with one addition for a lone component (:func:`_is_bare_host`). A repository glob needs a
    registry host: Docker Hub has no catalog to list.
    """
    original = text.strip()
    if not original or original.startswith(LAYOUT_PREFIX):
        return parse_reference(original)
    body = original
    for scheme in ("https://", "http://"):
        body = body.removeprefix(scheme)
    first, slash, rest = body.partition("/")
    if "@" in first:
        return parse_reference(original)  # refuses credentials without echoing them
    if not slash:
        return RegistryPattern(_registry_host(first, original)) if _is_bare_host(first) else (
            parse_reference(original)
        )
    globbed = bool(_GLOB & set(rest))
    if not _looks_like_host(first):
        if globbed:
            raise InvalidReference(
                f"target {original!r}: a repository glob needs a registry host "
                "(HOST/team/*); Docker Hub has no catalog to list"
            )
        return parse_reference(original)
    if rest and not globbed:
        return parse_reference(original)
    pattern = rest or "*"
    if ":" in pattern or "@" in pattern:
        raise InvalidReference(
            f"target {original!r}: a repository glob takes no tag or digest "
            "(every tag of each matching repository is audited)"
        )
    if not _PATTERN.fullmatch(pattern):
        raise InvalidReference(f"target {original!r}: {pattern!r} is not a repository glob")
    return RegistryPattern(_registry_host(first, original), pattern)


def _registry_host(host: str, original: str) -> str:
    if not _HOST.fullmatch(host):
        raise InvalidReference(f"target {original!r}: {host!r} is not a valid registry host")
    if host.lower() in _DOCKER_HUB_ALIASES:
        raise InvalidReference(
            f"target {original!r}: Docker Hub has no catalog to list; name a repository "
            "(docker.io/library/alpine)"
        )
    return host


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
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"reference {original!r}: {tag!r} is not a valid tag")
    first, _, remainder = text.partition("/")
    if remainder and _looks_like_host(first):
        registry, repository = first, remainder
    else:
        registry, repository = DOCKER_HUB, text
    if not _HOST.fullmatch(registry):
        raise InvalidReference(f"reference {original!r}: {registry!r} is not a valid registry host")
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in repository:
            repository = f"library/{repository}"
    if not repository or not all(_REPO_COMPONENT.fullmatch(c) for c in repository.split("/")):
        raise InvalidReference(
            f"reference {original!r}: {repository!r} is not a valid repository name"
        )
    return ImageReference(registry, repository, tag, digest)
