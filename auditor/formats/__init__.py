"""Report formats: an AuditReport in, text out (pure; the CLI writes it where asked).

Formats are picked by the ``Format`` enum; ``render`` handles every member (mypy checks it
with ``assert_never`` and a test renders each one), so a new format cannot be half-wired.
"""

from __future__ import annotations

from enum import StrEnum
from typing import assert_never

from auditor.formats import html as html_format
from auditor.formats import json as json_format
from auditor.formats import sarif as sarif_format
from auditor.formats import table as table_format
from auditor.model import AuditReport


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    HTML = "html"


def render(
    report: AuditReport,
    fmt: Format,
    *,
    quiet: bool = False,
    color: bool = False,
    width: int | None = None,
    category: str | None = None,
    workspace: str | None = None,
) -> str:
    """Render ``report``; ``quiet``, ``color`` and ``width`` only shape the table, ``category`` and
    ``workspace`` only SARIF (its analysis name and the directory its paths are relative to)."""
    match fmt:
        case Format.TABLE:
            return table_format.render(report, quiet=quiet, color=color, width=width)
        case Format.JSON:
            return json_format.render(report)
        case Format.SARIF:
            return sarif_format.render(report, category=category, workspace=workspace)
        case Format.HTML:
            return html_format.render(report)
        case _:
            assert_never(fmt)
