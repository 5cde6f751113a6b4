"""A node's status from signature results alone, through the one real rule (coverage.node_status).

Verifier tests have results but no graph; this wraps them in the smallest node they describe.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditor.coverage import node_status
from auditor.model import Descriptor, GraphNode, NodeKind, NodeStatus, SignatureResult
from auditor.oci import mediatypes as mt

SUBJECT_DIGEST = "sha256:" + "5" * 64


def status_of(results: Sequence[SignatureResult]) -> tuple[NodeStatus, str]:
    signatures = tuple(Descriptor(mt.OCI_MANIFEST, r.digest, 1) for r in results)
    node = GraphNode(SUBJECT_DIGEST, mt.OCI_MANIFEST, 1, NodeKind.MANIFEST, signatures=signatures)
    return node_status(node, results, verified=True)
