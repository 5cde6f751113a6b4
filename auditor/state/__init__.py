"""The state store: runs, latest results, node status history and content caches (SQLite by
default, through SQLAlchemy Core, migrated with Alembic). Shared by ``auditor serve`` and
``auditor audit now --state``."""
