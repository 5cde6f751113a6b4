"""Recording a run in the state store around an audit (``audit now --state``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.model import AuditReport
from auditor.state.store import Store

if TYPE_CHECKING:
    from auditor.app import App

CLI_SOURCE = "cli"


def open_state(path: Path) -> Store:
    return Store.open(path)


async def record_cli_run(store: Store, app: App, references: Sequence[str]) -> AuditReport:
    """Audit with the store's caches and record the run (not replacing other results: a CLI
    run may audit a subset). A store that cannot record the run is a StateError, as the user
    asked for the run to be kept."""
    run_id = await asyncio.to_thread(store.start_run, CLI_SOURCE, "cli")
    try:
        report = await app.audit(references)
    except BaseException:
        await asyncio.to_thread(store.abandon_run, run_id, "the audit did not finish")
        raise
    await asyncio.to_thread(
        store.finish_run, run_id, CLI_SOURCE, report.targets, replace_source=False
    )
    return report
