"""The generic webhook message: a versioned JSON body, signed when a secret is configured.

Pure: an :class:`Alert` (and optionally the target's result, for the report excerpt) in,
body bytes and headers out. The receiver de-duplicates by ``delivery_id`` (also sent as the
``X-Auditor-Delivery`` header): a retried delivery carries the same id. With a secret, the
``X-Auditor-Signature: sha256=<hex>`` header is the HMAC-SHA256 of the exact body bytes, as
GitHub's ``X-Hub-Signature-256``, so a receiver can check it before parsing anything.

Schema (``schema_version`` 1; fields are only ever added within a version)::

    {"schema_version": 1, "delivery_id", "at", "target", "digest", "transition", "rule",
     "findings": {"opened": [F], "still_open": [F], "resolved": [F]},
     "expiring": [{"node", "kind", "platform", "valid_until"}],
     "node_changes": [{"node", "platform", "before", "after"}],
     "error", "error_since",
     "report": null | the target as in the JSON report (``auditor audit now --format json``)}
    F = a finding as in the JSON report: {"kind", "node", "platform", "rule", "message"}
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from auditor.daemon.alerts.diff import Alert
from auditor.formats.common import rfc3339
from auditor.formats.json import finding_dict, target_dict
from auditor.model import TargetResult

SCHEMA_VERSION = 1
SIGNATURE_HEADER = "X-Auditor-Signature"
DELIVERY_HEADER = "X-Auditor-Delivery"


def _when(value: datetime | None) -> str | None:
    return rfc3339(value) if value else None


def webhook_payload(
    alert: Alert, delivery_id: str, result: TargetResult | None = None
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "delivery_id": delivery_id,
        "at": _when(alert.at),
        "target": alert.target,
        "digest": alert.digest,
        "transition": alert.transition.value,
        "rule": alert.rule,
        "findings": {
            "opened": [finding_dict(p) for p in alert.opened],
            "still_open": [finding_dict(p) for p in alert.still_open],
            "resolved": [finding_dict(p) for p in alert.resolved],
        },
        "expiring": [
            {
                "node": e.node,
                "kind": e.kind,
                "platform": e.platform,
                "valid_until": _when(e.valid_until),
            }
            for e in alert.expiring
        ],
        "node_changes": [
            {"node": c.node, "platform": c.platform, "before": c.before, "after": c.after}
            for c in alert.node_changes
        ],
        "error": alert.error,
        "error_since": _when(alert.error_since),
        "report": target_dict(result) if result is not None else None,
    }


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(body: bytes, secret: str) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(body: bytes, delivery_id: str, secret: str | None) -> dict[str, str]:
    out = {"Content-Type": "application/json", DELIVERY_HEADER: delivery_id}
    if secret:
        out[SIGNATURE_HEADER] = signature(body, secret)
    return out
