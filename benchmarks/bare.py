"""The bare minimal client: the baseline a cold audit is measured against (issue 12).

A concurrent httpx client (8 requests in flight, the auditor's default per-registry limit)
making only the obvious minimal requests: the tags list of each repository, the manifest of
each tag, a referrers lookup per node (distribution 2.8 has no referrers API: the
``sha256-<hex>`` fallback tag), and the signature manifest and envelope blob of each
signature. It verifies nothing and bounds nothing: it is the floor of "fetch what an audit
obviously needs". Run as its own process (``python -m benchmarks.bare URL REPO...``) so its
CPU time and peak RSS are measured like the auditor's.
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
NOTATION = "application/vnd.cncf.notary.signature"


async def _get(http: httpx.AsyncClient, gate: asyncio.Semaphore, path: str) -> httpx.Response:
    async with gate:
        return await http.get(path, headers={"Accept": ACCEPT})


async def _node(http: httpx.AsyncClient, gate: asyncio.Semaphore, repo: str, digest: str) -> int:
    """Referrers lookup of one node, then each signature's manifest and envelope."""
    reply = await _get(http, gate, f"/v2/{repo}/manifests/sha256-{digest.split(':', 1)[1]}")
    if reply.status_code == 404:
        return 0
    signatures = [
        d for d in reply.json().get("manifests", []) if d.get("artifactType") == NOTATION
    ]

    async def one(sig: dict[str, str]) -> None:
        manifest = (await _get(http, gate, f"/v2/{repo}/manifests/{sig['digest']}")).json()
        await _get(http, gate, f"/v2/{repo}/blobs/{manifest['layers'][0]['digest']}")

    await asyncio.gather(*(one(s) for s in signatures))
    return len(signatures)


async def _tag(http: httpx.AsyncClient, gate: asyncio.Semaphore, repo: str, tag: str,
               seen: set[str]) -> int:
    """A tag's manifest, then the referrers of each node not already looked at (two tags
    naming the same image share its nodes)."""
    reply = await _get(http, gate, f"/v2/{repo}/manifests/{tag}")
    nodes = [reply.headers["docker-content-digest"]]
    nodes += [d["digest"] for d in json.loads(reply.content).get("manifests", [])]
    fresh = [n for n in nodes if n not in seen]
    seen.update(fresh)
    return sum(await asyncio.gather(*(_node(http, gate, repo, n) for n in fresh)))


async def _repository(http: httpx.AsyncClient, gate: asyncio.Semaphore, repo: str) -> int:
    tags = (await _get(http, gate, f"/v2/{repo}/tags/list")).json().get("tags") or []
    tags = [t for t in tags if not t.startswith("sha256-")]
    seen: set[str] = set()
    return sum(await asyncio.gather(*(_tag(http, gate, repo, t, seen) for t in tags)))


async def run(url: str, repositories: list[str], concurrency: int = 8) -> int:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        found = await asyncio.gather(*(_repository(http, gate, r) for r in repositories))
    return sum(found)


if __name__ == "__main__":
    print(asyncio.run(run(sys.argv[1], sys.argv[2:])))
