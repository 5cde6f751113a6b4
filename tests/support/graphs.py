"""The graph as the audit builds it with notation registered: referrers split by its claim.

``build_graph`` takes the registered formats' claim as an argument (the graph knows no format);
tests that build graphs directly use notation's, as the composition root does.
"""

from __future__ import annotations

from auditor.model import ImageGraph
from auditor.notary.format import is_notation_signature
from auditor.oci.graph import GraphLimits, build_graph
from auditor.oci.snapshot import Snapshot


def notation_graph(
    snapshot: Snapshot, reference: str, limits: GraphLimits | None = None
) -> ImageGraph:
    return build_graph(snapshot, reference, limits, is_signature=is_notation_signature)
