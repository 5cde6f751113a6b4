"""``audit now -v``: what the run is doing, as structured (key=value) lines on stderr.

One event per step a user wants to follow when a run is slow or empty: what will be read
(registries, where credentials come from, which limits), each target as it starts, each
registry response (method, URL without its query, status), and the summary. Never a
credential: the source of credentials is named ("flag", "config", "docker config"), never
their value, and URLs lose their query (a redirect to storage may carry a signed one).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TextIO

import httpx
import structlog

from auditor import logs
from auditor.app import run_registries
from auditor.config import AuditorConfig
from auditor.formats.table import summary_line
from auditor.model import AuditReport
from auditor.runflags import RunFlags


class VerboseLog:
    """The CLI's verbose events; its methods are the App's progress and response hooks."""

    def __init__(self, stream: TextIO) -> None:
        logs.configure(json=False, stream=stream, level=logging.INFO)
        self._log = structlog.get_logger("auditor")

    def start(self, config: AuditorConfig, targets: Sequence[str], flags: RunFlags) -> None:
        limits = config.limits
        self._log.info(
            "audit.start",
            targets=list(targets) or "the config's registries and layouts",
            request_deadline_seconds=limits.request_deadline_seconds,
            target_deadline_seconds=limits.target_deadline_seconds,
            platforms=[str(p) for p in flags.platforms] if flags.platforms else "the rules'",
        )
        # run_config has put command-line credentials on the run's one registry.
        hosts = run_registries(config, targets)
        for host in hosts:
            registry = config.registry_for(host)
            auth = registry.auth if registry else None
            if auth is None:
                source = "stored login (notation's or docker's), if any"
            elif flags.has_credentials:
                source = flags.credentials_from or "command line"
            else:
                source = "config auth"
            self._log.info(
                "registry",
                host=host,
                url=registry.url if registry else None,
                insecure=bool(registry and registry.insecure),
                ca_file=str(registry.ca_file) if registry and registry.ca_file else None,
                credentials=source,
            )

    def progress(self, line: str) -> None:
        """The auditor's per-target progress (``[i/n] reference``)."""
        position, _, reference = line.partition(" ")
        self._log.info("target.start", position=position.strip("[]"), reference=reference)

    def response(self, response: httpx.Response) -> None:
        url = response.request.url
        self._log.info(
            "registry.response",
            method=response.request.method,
            url=str(url.copy_with(query=None)),
            status=response.status_code,
        )

    def finished(self, report: AuditReport) -> None:
        self.finished_summary(summary_line(report))

    def finished_summary(self, line: str) -> None:
        """The end of a streamed run, which keeps its counts only."""
        self._log.info("audit.finished", summary=line)
