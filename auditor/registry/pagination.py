"""Follow ``Link: <...>; rel="next"`` pagination (catalog, tags, referrers) with hard bounds."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from auditor.errors import GraphLimitExceeded, RegistryError
from auditor.registry.transport import RegistryTransport, raise_for_status

T = TypeVar("T")

MAX_PAGES = 1000
# The target holds no "<" (RFC 3986 never allows it): each "<" starts one scan that stops at
# the next one, so a header of many unclosed "<" costs linear time, not quadratic.
_LINK = re.compile(r"<([^<>]*)>\s*((?:;\s*[^;,]*)*)")


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` target of a Link header, or None."""
    if not header:
        return None
    for match in _LINK.finditer(header):
        params = match.group(2)
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').split():
                return match.group(1).strip()
    return None


async def collect_pages(
    transport: RegistryTransport,
    path: str,
    *,
    params: Mapping[str, str] | None,
    scope: str,
    what: str,
    limit: int,
    extract: Callable[[bytes, str], list[T]],
    max_items: int,
    item_name: str,
    headers: Mapping[str, str] | None = None,
) -> list[T]:
    """Every item over all pages; GraphLimitExceeded past ``max_items`` or past ``limit`` bytes
    over all pages (the pages together hold no more than one page may: counts alone let a
    thousand pages of one huge item each through), RegistryError on a loop.

    ``extract(body, what)`` parses one page. The first request raises through the normal
    status mapping; callers that need to inspect a first-page 404 do that request themselves.
    """
    items: list[T] = []
    url = transport.url(path)
    seen: set[str] = set()
    total = 0
    page_params = params
    for _ in range(MAX_PAGES):
        reply = await transport.request(
            "GET", url, scope=scope, what=what, limit=limit, params=page_params, headers=headers
        )
        raise_for_status(reply, what)
        total += len(reply.body)
        if total > limit:
            raise GraphLimitExceeded(f"{what}: more than {limit} bytes over all pages")
        items.extend(extract(reply.body, what))
        if len(items) > max_items:
            raise GraphLimitExceeded(f"{what}: more than {max_items} {item_name}")
        link = next_link(reply.headers.get("link"))
        if link is None:
            return items
        url = transport.url(link)
        if str(url) in seen:
            raise RegistryError(f"{what}: pagination loops back to {url.path}")
        seen.add(str(url))
        page_params = None  # the Link URL carries its own query
    raise GraphLimitExceeded(f"{what}: more than {MAX_PAGES} pages of {item_name}")
