"""structlog set-up: JSON lines for ``auditor serve``, readable console lines for the CLI.

Standard-library loggers (uvicorn, APScheduler, Alembic) go through the same renderer, so a
daemon's stderr is one JSON object per line whatever wrote it. Events carry references,
counts, durations and reasons: never credentials (the error family's messages hold none).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

_shared: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(*, json: bool, stream: TextIO | None = None, level: int = logging.INFO) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    # JSON lines carry a traceback as one string field; the console renderer formats its own.
    exceptions: structlog.types.Processor = (
        structlog.processors.format_exc_info if json else structlog.processors.StackInfoRenderer()
    )
    structlog.configure(
        processors=[*_shared, exceptions, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_shared, exceptions],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries' chatter stays at warnings; the daemon's own events are the log.
    for noisy in ("apscheduler", "alembic", "uvicorn", "uvicorn.error", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
