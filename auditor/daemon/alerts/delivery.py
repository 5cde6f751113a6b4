"""Sending alert messages: the I/O edge of the alerts (Slack and generic webhooks).

A message is rendered once, when the alert is decided, and stored as pending (without the
sink's URL or secret: those stay in the configuration). Delivery then posts it, retrying
5xx, 429 and transport failures with backoff inside a bounded time; what still fails stays
pending for the next run, and a sink's messages go out in the order they were decided, so a
receiver that was down gets every one, in order, once it is up. A 4xx other than 408/429 is
the receiver refusing the message itself (a revoked Slack webhook, a payload it rejects):
retrying would block every later message, so it is counted as ``rejected`` and dropped.

Nothing here raises into the audit: every failure is an :class:`Outcome` with a reason that
names the sink, never its URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from auditor.config import AlertsConfig
from auditor.daemon.alerts import webhook
from auditor.daemon.alerts.diff import Alert
from auditor.daemon.alerts.slack import slack_message
from auditor.errors import ConfigError
from auditor.model import TargetResult
from auditor.registry.retry import RETRY_STATUSES, RetryPolicy
from auditor.registry.secret import Secret

DEFAULT_TIMEOUT_SECONDS = 10.0
DELIVERY_POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=5.0)


class SinkKind(StrEnum):
    SLACK = "slack"
    WEBHOOK = "webhook"


class Outcome(StrEnum):
    """``auditor_alerts_sent_total{result}`` values."""

    SENT = "sent"
    FAILED = "failed"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Sink:
    """Where messages go; ``name`` is the metric label and log field (never the URL)."""

    name: str
    kind: SinkKind
    url: Secret
    secret: Secret | None = None

    def render(
        self,
        alert: Alert,
        delivery_id: str,
        result: TargetResult | None,
        public_url: str | None,
    ) -> dict[str, Any]:
        """The JSON document stored as pending and posted later."""
        if self.kind is SinkKind.SLACK:
            return slack_message(alert, public_url)
        return webhook.webhook_payload(alert, delivery_id, result)

    def request(self, delivery_id: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = webhook.encode(payload)
        if self.kind is SinkKind.SLACK:
            return body, {"Content-Type": "application/json"}
        secret = self.secret.reveal() if self.secret else None
        return body, webhook.headers(body, delivery_id, secret)


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    reason: str
    status: int | None = None


async def deliver(
    client: httpx.AsyncClient,
    sink: Sink,
    delivery_id: str,
    payload: dict[str, Any],
    *,
    deadline: float = DEFAULT_TIMEOUT_SECONDS,
    policy: RetryPolicy = DELIVERY_POLICY,
) -> Delivery:
    """Post one message with bounded retries; never raises."""
    body, headers = sink.request(delivery_id, payload)

    async def attempt() -> tuple[int, str | None]:
        # A deadline on the whole exchange; as a transport timeout it is retried like one.
        # The answer's body is never read: a receiver cannot make us hold anything it sends.
        try:
            async with (
                asyncio.timeout(deadline),
                client.stream("POST", sink.url.reveal(), content=body, headers=headers) as answer,
            ):
                return answer.status_code, answer.headers.get("retry-after")
        except TimeoutError:
            raise httpx.TimeoutException(f"no answer within {deadline} s") from None

    try:
        status, _ = await policy.run(attempt, lambda a: a, f"alert sink {sink.name}")
    except Exception as exc:
        return Delivery(Outcome.FAILED, _scrub(str(exc), sink))
    if 200 <= status < 300:
        return Delivery(Outcome.SENT, "delivered", status)
    if status in RETRY_STATUSES or status == 408:
        return Delivery(Outcome.FAILED, f"alert sink {sink.name} answered {status}", status)
    return Delivery(
        Outcome.REJECTED, f"alert sink {sink.name} refused the message: {status}", status
    )


def _scrub(text: str, sink: Sink) -> str:
    """Error texts from the HTTP stack may quote the URL, which is a secret for Slack."""
    url = sink.url.reveal()
    text = text.replace(url, f"<{sink.name} url>") if url else text
    return " ".join(text.split())[:300] or f"alert sink {sink.name}: delivery failed"


def build_sinks(config: AlertsConfig, env: Mapping[str, str]) -> list[Sink]:
    """The configured sinks with their secrets read now (a missing variable is a config error)."""

    def read(name: str, where: str) -> Secret:
        value = env.get(name)
        if not value:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return Secret(value)

    sinks: list[Sink] = []
    if config.slack is not None:
        url = read(config.slack.webhook_url_env, "alerts.slack.webhook_url_env")
        sinks.append(Sink("slack", SinkKind.SLACK, url))
    for i, hook in enumerate(config.webhooks):
        where = f"alerts.webhooks[{i}]"
        url = read(hook.url_env, f"{where}.url_env") if hook.url_env else Secret(str(hook.url))
        secret = read(hook.secret_env, f"{where}.secret_env") if hook.secret_env else None
        sinks.append(Sink(f"webhook:{hook.name or i}", SinkKind.WEBHOOK, url, secret))
    return sinks
