"""A run's report per target: ``run_targets`` rows instead of one ``runs.report`` text.

Existing reports are split one run at a time (only one run's report is in memory), each target
re-encoded as the compact JSON the store writes; then ``runs.report`` is dropped.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_runs = sa.table(
    "runs",
    sa.column("id", sa.Integer),
    sa.column("result", sa.String),
    sa.column("report", sa.Text),
)
_run_targets = sa.table(
    "run_targets",
    sa.column("run_id", sa.Integer),
    sa.column("position", sa.Integer),
    sa.column("result", sa.Text),
)


def upgrade() -> None:
    op.create_table(
        "run_targets",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("result", sa.Text, nullable=False),
    )
    conn = op.get_bind()
    ids = conn.execute(
        sa.select(_runs.c.id).where(_runs.c.report.is_not(None)).order_by(_runs.c.id)
    ).scalars().all()
    for run_id in ids:
        text = conn.execute(
            sa.select(_runs.c.report).where(_runs.c.id == run_id)
        ).scalar_one()
        try:
            targets = json.loads(text)
        except ValueError:
            targets = None
        if not isinstance(targets, list):
            continue  # a damaged report was unreadable before; the run keeps no targets
        for position, target in enumerate(targets):
            conn.execute(
                _run_targets.insert().values(
                    run_id=run_id,
                    position=position,
                    result=json.dumps(target, separators=(",", ":")),
                )
            )
    # A plain ALTER TABLE (SQLite 3.35+ has DROP COLUMN): it keeps the table's own CREATE text
    # apart from the column, so the schema equals the one schema.py creates for a new file;
    # a batch copy would rename a rebuilt table and quote its name.
    op.drop_column("runs", "report")


def downgrade() -> None:
    op.add_column("runs", sa.Column("report", sa.Text))
    conn = op.get_bind()
    done = sa.select(_runs.c.id).where(_runs.c.result.not_in(["running", "abandoned"]))
    for run_id in conn.execute(done).scalars().all():
        rows = conn.execute(
            sa.select(_run_targets.c.result)
            .where(_run_targets.c.run_id == run_id)
            .order_by(_run_targets.c.position)
        ).scalars()
        conn.execute(
            _runs.update().where(_runs.c.id == run_id).values(report="[" + ",".join(rows) + "]")
        )
    op.drop_table("run_targets")
