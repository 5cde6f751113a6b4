"""The graph as the audit builds it with notation registered: referrers split by its claim.

``build_graph`` takes the registered formats' claim as an argument (the graph knows no format);
tests that build graphs directly use notation's, as the composition root does, and the
config model's default limits unless they give their own.
"""

from __future__ import annotations

from auditor.config import DEFAULT_LIMITS
from auditor.model import ImageGraph
from auditor.notary.format import is_notation_signature
from auditor.oci.graph import GraphLimits, build_graph
from auditor.oci.snapshot import Snapshot


def notation_graph(
    snapshot: Snapshot, reference: str, limits: GraphLimits | None = None
) -> ImageGraph:
    limits = limits or DEFAULT_LIMITS.graph_limits()
    return build_graph(snapshot, reference, limits, is_signature=is_notation_signature)
