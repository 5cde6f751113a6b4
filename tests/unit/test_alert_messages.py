"""Slack Block Kit and generic webhook messages: content, limits, signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from auditor.daemon.alerts.diff import Alert, Expiring, Transition
from auditor.daemon.alerts.slack import MAX_BLOCKS, MAX_HEADER_TEXT, MAX_SECTION_TEXT, slack_message
from auditor.daemon.alerts.webhook import encode, headers, signature, webhook_payload
from auditor.model import Finding

AT = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
RULE = "policy both for 127.0.0.1:5000/*"


def _problem(i: int, platform: str = "linux/arm64") -> Finding:
    digest = f"sha256:{i:064x}"
    return Finding("unsigned-platform", f"{digest} has no Notary signature", RULE, digest, platform)


def _alert(n: int, transition: Transition = Transition.OPENED, target: str = "reg/app:v1") -> Alert:
    return Alert(
        target=target,
        transition=transition,
        at=AT,
        digest="sha256:" + "9" * 64,
        rule=RULE,
        opened=tuple(_problem(i) for i in range(n)),
    )


def _texts(message: dict[str, object]) -> str:
    return json.dumps(message)


def test_slack_names_every_platform_with_digest_reason_and_rule() -> None:
    message = slack_message(_alert(2), public_url="https://auditor.example/")
    blocks = message["blocks"]
    assert blocks[0]["type"] == "header"
    assert "reg/app:v1" in blocks[0]["text"]["text"]
    body = _texts(message)
    for i in range(2):
        assert f"sha256:{i:064x}" in body
    assert "linux/arm64" in body
    assert "has no Notary signature" in body
    assert RULE in body
    assert "https://auditor.example/targets/reg%2Fapp%3Av1" in body
    assert message["text"].startswith("Unsigned or invalid images: reg/app:v1")


def test_slack_long_lists_are_summarised_within_limits_never_dropped() -> None:
    message = slack_message(_alert(2000))
    blocks = message["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(t) <= MAX_SECTION_TEXT for t in sections)
    shown = sum(t.count("• ") for t in sections)
    summary = sections[-1]
    assert summary.startswith("…and ")
    left_out = int(summary.split()[1])
    assert shown + left_out == 2000
    assert shown > 100


def test_slack_short_list_has_no_summary_line() -> None:
    blocks = slack_message(_alert(3))["blocks"]
    assert not any("more not shown" in json.dumps(b) for b in blocks)


def test_slack_header_is_cut_to_its_limit_and_markup_escaped() -> None:
    hostile = "reg/app:<script>&" + "x" * 300
    message = slack_message(_alert(1, target=hostile))
    assert len(message["blocks"][0]["text"]["text"]) <= MAX_HEADER_TEXT
    problem = Finding(
        "unsigned-platform",
        "<!channel> & <https://evil|click>",
        RULE,
        "sha256:" + "1" * 64,
        "linux/amd64",
    )
    alert = Alert("reg/app:v1", Transition.OPENED, AT, opened=(problem,))
    text = _texts(slack_message(alert))
    assert "<!channel>" not in text
    assert "&lt;!channel&gt;" in text


@pytest.mark.parametrize("transition", list(Transition))
def test_slack_every_transition_renders(transition: Transition) -> None:
    alert = Alert(
        "reg/app:v1",
        transition,
        AT,
        resolved=(_problem(1),),
        expiring=(Expiring("sha256:" + "2" * 64, "platform", "linux/amd64", AT),),
        error="connection refused",
        error_since=AT,
    )
    message = slack_message(alert)
    assert message["blocks"]
    assert message["text"]


def test_webhook_body_schema_and_hmac() -> None:
    alert = _alert(1)
    payload = webhook_payload(alert, "d-1")
    assert payload["schema_version"] == 1
    assert payload["delivery_id"] == "d-1"
    assert payload["transition"] == "opened"
    assert payload["findings"]["opened"][0] == {
        "kind": "unsigned-platform",
        "node": f"sha256:{0:064x}",
        "platform": "linux/arm64",
        "message": f"sha256:{0:064x} has no Notary signature",
        "rule": RULE,
        "waiver": None,
    }
    assert payload["at"] == "2026-11-02T08:30:00Z"
    body = encode(payload)
    assert json.loads(body) == payload
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature(body, "s3cret") == "sha256=" + expected
    sent = headers(body, "d-1", "s3cret")
    assert sent["X-Auditor-Signature"] == "sha256=" + expected
    assert sent["X-Auditor-Delivery"] == "d-1"
    assert "X-Auditor-Signature" not in headers(body, "d-1", None)
    # One flipped byte, another signature.
    assert signature(body.replace(b"opened", b"closed"), "s3cret") != sent["X-Auditor-Signature"]
