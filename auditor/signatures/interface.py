"""The extension point for signature formats: what the audit knows about a kind of signature.

The orchestrator (``audit.py``), the crawler and the graph know signatures only through this
interface: which referrers a format claims, under which tags it finds signatures that are not
referrers, and how it fetches and verifies one signature for a subject. Notation's
implementation is ``auditor/notary/format.py``; a new format (cosign) is one new package that
implements :class:`SignatureFormat` and one entry in the composition root's list of formats
(``auditor/app.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from auditor.model import Descriptor, SignatureResult
from auditor.source import ManifestSource


class SignatureFormat(Protocol):
    """One signature format (Notary Project, cosign, ...), as the orchestrator sees it."""

    @property
    def name(self) -> str:
        """The format's name in results that are not about one envelope (``notation``)."""
        ...

    @property
    def verifies(self) -> bool:
        """False when the format has no trust configuration: its results are ``unverified``."""
        ...

    def claims(self, referrer: Descriptor) -> bool:
        """True when ``referrer`` is a signature of this format.

        Decided from the descriptor alone (pure): its artifact type (the crawler fills a missing
        one in from the manifest, so a fallback index cannot hide a signature), or, for a
        manifest found under one of :meth:`signature_tags`, the tag it was found under (the
        crawler records it as the descriptor's ``org.opencontainers.image.ref.name``).
        """
        ...

    def signature_tags(self, subject_digest: str) -> Sequence[str]:
        """Tags under which this format keeps signatures of ``subject_digest`` outside the
        referrers API (cosign's legacy ``sha256-<hex>.sig``); empty when it uses referrers only."""
        ...

    def skips(self, scope: str) -> bool:
        """True when the trust configuration opts ``scope`` out of verification entirely."""
        ...

    async def fetch_and_verify(
        self,
        source: ManifestSource,
        repository: str,
        scope: str,
        subject: Descriptor,
        signature: Descriptor,
    ) -> SignatureResult:
        """Fetch the signature ``signature`` of ``subject`` from ``source`` and judge it.

        Never raises for what the registry sent: a signature that cannot be fetched is an
        ``error`` result, one that is malformed is ``invalid``.
        """
        ...


def claiming_format(
    formats: Sequence[SignatureFormat], referrer: Descriptor
) -> SignatureFormat | None:
    """The first registered format that claims ``referrer``, if any."""
    return next((f for f in formats if f.claims(referrer)), None)
