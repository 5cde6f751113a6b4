"""The Slack message for one alert: Block Kit, inside Slack's limits, nothing dropped silently.

Pure: an :class:`Alert` in, the JSON body of an incoming-webhook POST out. Slack refuses a
message with more than 50 blocks or a section text over 3,000 characters and cuts a header
at 150; long lists are therefore packed into as few sections as fit, and whatever still does
not fit is summarised in a last line that says how many were left out and where to see them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from auditor.daemon.alerts.diff import Alert, Expiring, Transition
from auditor.model import Finding

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 3000

_HEADLINES = {
    Transition.OPENED: "Unsigned or invalid images",
    Transition.UPDATED: "Partly fixed, problems remain",
    Transition.RESOLVED: "Resolved",
    Transition.REMINDER: "Still open",
    Transition.EXPIRING: "Signatures expiring soon",
    Transition.AUDIT_ERROR: "Cannot be audited",
    Transition.AUDIT_RECOVERED: "Can be audited again",
}


def escape(text: str) -> str:
    """Slack's mrkdwn control characters; registry strings are never markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _problem_line(p: Finding) -> str:
    where = escape(p.platform) if p.platform else "image"
    digest = f" `{escape(p.node)}`" if p.node else ""
    return f"• *{where}*{digest} {escape(p.kind)}: {escape(p.message)}"


def _expiring_line(e: Expiring) -> str:
    where = escape(e.platform) if e.platform else escape(e.kind)
    when = e.valid_until.strftime("%Y-%m-%d %H:%M UTC")
    return f"• *{where}* `{escape(e.node)}` signature stops counting at {when}"


def _lines(alert: Alert) -> list[tuple[str, list[str]]]:
    groups: list[tuple[str, list[str]]] = []
    if alert.error and alert.transition is Transition.AUDIT_ERROR:
        since = alert.error_since.strftime("%Y-%m-%d %H:%M UTC") if alert.error_since else "?"
        groups.append((f"*Error since {since}*", [escape(_cut(alert.error, 1000))]))
    if alert.opened:
        groups.append(("*New*", [_problem_line(p) for p in alert.opened]))
    if alert.still_open:
        groups.append(("*Still open*", [_problem_line(p) for p in alert.still_open]))
    if alert.resolved:
        groups.append(("*Fixed*", [_problem_line(p) for p in alert.resolved]))
    if alert.expiring:
        groups.append(("*Expiring*", [_expiring_line(e) for e in alert.expiring]))
    return groups


def _pack(groups: list[tuple[str, list[str]]], budget: int) -> tuple[list[dict[str, Any]], int]:
    """Section blocks for the groups within ``budget`` blocks, and how many lines did not fit."""
    items: list[tuple[str, bool]] = []
    for title, lines in groups:
        items.append((title, False))
        items.extend((_cut(line, MAX_SECTION_TEXT), True) for line in lines)
    blocks: list[dict[str, Any]] = []
    text = ""
    for i, (line, _) in enumerate(items):
        if text and len(text) + 1 + len(line) > MAX_SECTION_TEXT:
            blocks.append(_section(text))
            if len(blocks) >= budget:
                return blocks, sum(1 for _, c in items[i:] if c)
            text = ""
        text = f"{text}\n{line}" if text else line
    if text:
        blocks.append(_section(text))
    return blocks, 0


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def slack_message(alert: Alert, public_url: str | None = None) -> dict[str, Any]:
    """The incoming-webhook body (``text`` is the notification fallback)."""
    headline = _HEADLINES[alert.transition]
    title = _cut(f"{headline}: {alert.target}", MAX_HEADER_TEXT)
    context: list[dict[str, Any]] = []
    if alert.rule:
        context.append({"type": "mrkdwn", "text": _cut(f"Rule: {escape(alert.rule)}", 2000)})
    if alert.digest:
        context.append({"type": "mrkdwn", "text": f"Digest: `{escape(alert.digest)}`"})
    link = None
    if public_url:
        link = f"{public_url.rstrip('/')}/targets/{quote(alert.target, safe='')}"
    # header + context + (link) + (summary line) leave the rest for sections.
    reserved = 1 + (1 if context else 0) + (1 if link else 0) + 1
    sections, left_out = _pack(_lines(alert), MAX_BLOCKS - reserved)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}}
    ]
    if context:
        blocks.append({"type": "context", "elements": context})
    blocks.extend(sections)
    if left_out:
        where = f"<{link}|the auditor's page>" if link else "the audit report"
        blocks.append(_section(f"…and {left_out} more not shown here: see {where}."))
    if link:
        blocks.append(_section(f"<{link}|Open {escape(alert.target)} in the auditor>"))
    counts = f"{len(alert.opened)} new, {len(alert.still_open)} open, {len(alert.resolved)} fixed"
    fallback = _cut(f"{title} ({counts})", MAX_FALLBACK_TEXT)
    return {"text": fallback, "blocks": blocks}
