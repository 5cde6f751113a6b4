"""The state store: every run, the latest result per target, node status changes, caches.

One ``Store`` per database, used by the daemon and by ``audit now --state``. Every write is one
transaction: a crash mid-run loses at most that run (it stays ``running`` and is marked
``abandoned`` at the next start). Content-cache writes (manifests, blobs, verdicts) are staged
in memory and written together by :meth:`Store.flush_caches` (the app calls it as each target
is decided, and at the end of a run): one transaction per target instead of one per answer.
Only checked content and verdicts that were actually made are ever staged, so a crash loses
cache entries (costing time at the next run), never writes one that was not verified.

Every database failure (locked, read-only, damaged, from a newer auditor) is a ``StateError``
naming the file, so the daemon can report it on ``/readyz`` and keep serving what it already
has.

Queries are SQLAlchemy Core on portable types, so they also run on PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from auditor.daemon.alerts.diff import AlertState, state_from_json, state_to_json
from auditor.errors import StateError
from auditor.model import SignatureResult, TargetResult, TargetStatus
from auditor.state import schema
from auditor.state.codec import decode_signature, decode_target, encode_signature, encode_target
from auditor.state.naming import source_key, target_labels

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_TIMEOUT_SECONDS = 5.0
# Staged cache writes are flushed early past either bound (memory stays bounded in a run
# with one huge target).
STAGED_ROWS = 256
STAGED_BYTES = 8 * 1024 * 1024


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OutgoingAlert:
    """A message to put in the outbox (``payload`` is the sink's rendered JSON)."""

    sink: str
    delivery_id: str
    reference: str
    transition: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class PendingAlert:
    """A message in the outbox, not yet delivered."""

    id: int
    sink: str
    delivery_id: str
    reference: str
    transition: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int


@dataclass(frozen=True)
class RunRecord:
    """One audit run as stored (``report`` is loaded only by :meth:`Store.run`, rebuilt from
    the run's ``run_targets`` rows in their order)."""

    id: int
    source: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    result: str
    targets: int
    compliant: int
    noncompliant: int
    errors: int
    duration_seconds: float | None
    message: str | None
    report: tuple[TargetResult, ...] | None = None


@dataclass(frozen=True)
class StoredTarget:
    """The latest result of one target, with the labels metrics and pages group it by."""

    reference: str
    source: str
    registry: str
    repository: str
    tag: str
    run_id: int
    audited_at: datetime
    result: TargetResult


@dataclass(frozen=True)
class StatusChange:
    """A node of a target took a new status (``previous`` None: first seen)."""

    reference: str
    node_digest: str
    kind: str
    platform: str | None
    status: str
    previous: str | None
    changed_at: datetime
    run_id: int


@dataclass(frozen=True, slots=True)
class RecordedNode:
    """One node's row in ``node_status``: all the store keeps of a verdict."""

    digest: str
    kind: str
    platform: str | None
    required: bool
    status: str


@dataclass(frozen=True, slots=True)
class RecordedTarget:
    """What :meth:`Store.finish_run` writes of one target, made as the target is decided: its
    result already encoded (the compact JSON the store keeps) and its node rows. A run
    recorded at the end keeps these instead of the results with their graphs and verdicts
    (issue 12: 10^5 nodes in 300 MB)."""

    reference: str
    digest: str | None
    status: TargetStatus
    packed: bytes  # the encoded result, zlib-compressed: a tenth of its size until written
    nodes: tuple[RecordedNode, ...]

    @property
    def data(self) -> str:
        """The encoded result as the store writes it (compact JSON)."""
        return zlib.decompress(self.packed).decode("utf-8")


def recorded(target: TargetResult) -> RecordedTarget:
    return RecordedTarget(
        reference=target.reference,
        digest=target.digest,
        status=target.status,
        packed=zlib.compress(
            json.dumps(encode_target(target), separators=(",", ":")).encode("utf-8"), 1
        ),
        nodes=tuple(
            RecordedNode(
                digest=v.node.digest,
                kind=v.node.kind.value,
                platform=str(v.node.platform) if v.node.platform else None,
                required=v.required,
                status=v.status.value,
            )
            for v in target.nodes
        ),
    )


def run_result(targets: Sequence[TargetResult | RecordedTarget]) -> str:
    """A run's one-word result: the worst target status (noncompliant beats error)."""
    statuses = {t.status for t in targets}
    if TargetStatus.NONCOMPLIANT in statuses:
        return TargetStatus.NONCOMPLIANT.value
    if TargetStatus.ERROR in statuses or not targets:
        return TargetStatus.ERROR.value
    return TargetStatus.COMPLIANT.value


# The newest migration (auditor/state/migrations/versions/): a database recorded at it needs no
# Alembic at all. A new revision changes it; tests/unit/test_state_store.py checks it is
# Alembic's head.
HEAD_REVISION = "0004"


def _recorded_revisions(conn: Connection) -> list[str]:
    """What ``alembic_version`` records (empty for a new database)."""
    if not inspect(conn).has_table("alembic_version"):
        return []
    table = Table("alembic_version", MetaData(), autoload_with=conn)
    return [str(v) for v in conn.execute(select(table.c.version_num)).scalars()]


class Store:
    """Open with :meth:`open` (migrates to the newest schema); close with :meth:`close`."""

    def __init__(self, engine: Engine, where: str) -> None:
        self.engine = engine
        self.where = where
        # Staged cache rows by (table, primary key); read back by the cached_* lookups.
        self._staged: dict[tuple[str, tuple[Any, ...]], tuple[Table, dict[str, Any]]] = {}
        self._staged_bytes = 0
        self._staging = threading.Lock()  # the daemon's pages and runs share one Store

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, migrate: bool = True) -> Store:
        """Open (creating it when missing) and upgrade the SQLite database at ``path``."""
        if path.is_dir():
            raise StateError(f"state {path}: is a directory, not a database file")
        if not path.parent.is_dir():
            raise StateError(f"state {path}: directory {path.parent} does not exist")
        engine = create_engine(
            f"sqlite:///{path}", connect_args={"timeout": LOCK_TIMEOUT_SECONDS}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine, f"state {path}")
        if migrate:
            store.migrate()
        return store

    @classmethod
    def from_url(cls, url: str, *, migrate: bool = True) -> Store:
        """Any SQLAlchemy URL (PostgreSQL for shared state); the URL is never echoed."""
        store = cls(create_engine(url), "state database")
        if migrate:
            store.migrate()
        return store

    def close(self) -> None:
        try:
            self.flush_caches()
        except StateError:
            pass  # a cache that cannot be written costs time at the next run, nothing else
        finally:
            self.engine.dispose()

    def migrate(self) -> None:
        """Upgrade to the newest revision; refuse a database made by a newer auditor.

        A database already at :data:`HEAD_REVISION` (every open after the first) is told by
        one query, without Alembic: importing it costs more than a warm audit's own work.
        """
        with self._connect() as conn:
            at_head = _recorded_revisions(conn) == [HEAD_REVISION]
        if not at_head and not self._create_fresh():
            self._upgrade()
        self.abandon_unfinished()

    def _create_fresh(self) -> bool:
        """A database with no tables at all (a first run) gets the newest schema straight
        from auditor/state/schema.py, stamped at :data:`HEAD_REVISION`, in one transaction:
        importing Alembic and replaying every migration cost a first ``--state`` run ~0.35 s.
        tests/unit/test_state_store.py checks both ways give the same tables. False (nothing
        done) when the database has any table: that one is migrated by Alembic."""
        with self._transaction() as conn:
            if inspect(conn).get_table_names():
                return False
            schema.metadata.create_all(conn)
            version = Table(
                "alembic_version",
                MetaData(),
                Column("version_num", String(32), nullable=False),
                PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
            )
            version.create(conn)
            conn.execute(version.insert().values(version_num=HEAD_REVISION))
        return True

    def _upgrade(self) -> None:
        from alembic import command
        from alembic.config import Config as AlembicConfig
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        with self._connect() as conn:
            config = AlembicConfig()
            config.set_main_option("script_location", str(MIGRATIONS))
            script = ScriptDirectory.from_config(config)
            current = MigrationContext.configure(conn).get_current_revision()
            known = {rev.revision for rev in script.walk_revisions()}
            if current is not None and current not in known:
                raise StateError(
                    f"{self.where}: schema revision {current} is newer than this auditor knows "
                    f"(newest: {script.get_current_head()}); upgrade the auditor"
                )
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self._connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # --- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except StateError:
            raise
        except SQLAlchemyError as exc:
            raise StateError(f"{self.where}: {_db_message(exc)}") from None

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except StateError:
            raise
        except SQLAlchemyError as exc:
            raise StateError(f"{self.where}: {_db_message(exc)}") from None

    def check_writable(self) -> None:
        """Raise StateError unless a write can be committed now (``/readyz`` asks this)."""
        with self._transaction() as conn:
            conn.execute(delete(schema.meta).where(schema.meta.c.key == "probe"))
            conn.execute(
                schema.meta.insert().values(key="probe", value=_now().isoformat())
            )

    # --- runs -------------------------------------------------------------------------------

    def start_run(self, source: str, trigger: str, *, at: datetime | None = None) -> int:
        with self._transaction() as conn:
            row = conn.execute(
                schema.runs.insert().values(
                    source=source,
                    trigger=trigger,
                    started_at=at or _now(),
                    result="running",
                    targets=0,
                    compliant=0,
                    noncompliant=0,
                    errors=0,
                )
            )
            key = row.inserted_primary_key
            assert key is not None
            return int(key[0])

    def finish_run(
        self,
        run_id: int,
        source: str,
        targets: Sequence[TargetResult | RecordedTarget],
        *,
        replace_source: bool,
        keep_runs: int = 500,
        at: datetime | None = None,
    ) -> list[StatusChange]:
        """Record a finished run in one transaction: the run row, the latest result of each
        target, node status changes (returned, oldest first, for alerting). With
        ``replace_source`` the run covered the whole source, so targets of that source it no
        longer saw (deleted tags) are dropped. Each target is filed under the source its
        reference names (naming.source_key), whichever run audited it. ``targets`` may be
        results or what a streamed run kept of them (:class:`RecordedTarget`): the same rows."""
        finished = at or _now()
        records = [t if isinstance(t, RecordedTarget) else recorded(t) for t in targets]
        with self._transaction() as conn:
            started = conn.execute(
                select(schema.runs.c.started_at).where(schema.runs.c.id == run_id)
            ).scalar_one_or_none()
            if started is None:
                raise StateError(f"{self.where}: run {run_id} does not exist")
            counts = {s: sum(1 for t in targets if t.status is s) for s in TargetStatus}
            conn.execute(
                update(schema.runs)
                .where(schema.runs.c.id == run_id)
                .values(
                    finished_at=finished,
                    result=run_result(targets),
                    targets=len(targets),
                    compliant=counts[TargetStatus.COMPLIANT],
                    noncompliant=counts[TargetStatus.NONCOMPLIANT],
                    errors=counts[TargetStatus.ERROR],
                    duration_seconds=(finished - started).total_seconds(),
                )
            )
            references = [t.reference for t in records]
            if replace_source:
                gone = conn.execute(
                    select(schema.target_results.c.reference).where(
                        schema.target_results.c.source == source
                    )
                ).scalars().all()
                stale = [r for r in gone if r not in set(references)]
                _delete_targets(conn, stale)
            _delete_targets(conn, references, nodes=False)
            changes: list[StatusChange] = []
            for position, target in enumerate(records):
                registry, repository, tag = target_labels(target.reference, source)
                data = target.data  # one target's JSON at a time, never the run's as one text
                conn.execute(
                    schema.run_targets.insert().values(
                        run_id=run_id, position=position, result=data
                    )
                )
                conn.execute(
                    schema.target_results.insert().values(
                        reference=target.reference,
                        source=source_key(target.reference, source),
                        registry=registry,
                        repository=repository,
                        tag=tag,
                        digest=target.digest,
                        status=target.status.value,
                        run_id=run_id,
                        audited_at=finished,
                        result=data,
                    )
                )
                changes.extend(_record_nodes(conn, target, run_id, finished))
            _prune_runs(conn, keep_runs)
        return changes

    def abandon_run(self, run_id: int, message: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                update(schema.runs)
                .where(schema.runs.c.id == run_id, schema.runs.c.result == "running")
                .values(result="abandoned", finished_at=_now(), message=message)
            )

    def abandon_unfinished(self) -> int:
        """Runs left ``running`` by a crash become ``abandoned``; returns how many."""
        with self._transaction() as conn:
            done = conn.execute(
                update(schema.runs)
                .where(schema.runs.c.result == "running")
                .values(result="abandoned", message="the auditor stopped during this run")
            )
            return int(done.rowcount)

    def run(self, run_id: int) -> RunRecord | None:
        with self._connect() as conn:
            row = conn.execute(
                select(schema.runs).where(schema.runs.c.id == run_id)
            ).mappings().first()
        if row is None:
            return None
        if row["result"] in _NO_REPORT:
            return _run_record(row, None)
        table = schema.run_targets
        query = select(table.c.result).where(table.c.run_id == run_id).order_by(table.c.position)
        with self._connect() as conn:
            texts = conn.execute(query).scalars().all()
        try:
            report = tuple(decode_target(json.loads(text)) for text in texts)
        except ValueError:
            raise StateError(f"{self.where}: run {run_id} has a damaged report") from None
        return _run_record(row, report)

    def runs(self, *, limit: int = 50, source: str | None = None) -> list[RunRecord]:
        """The newest runs first (without their reports)."""
        query = select(schema.runs)
        if source is not None:
            query = query.where(schema.runs.c.source == source)
        query = query.order_by(schema.runs.c.id.desc()).limit(limit)
        with self._connect() as conn:
            return [_run_record(r, None) for r in conn.execute(query).mappings()]

    def last_runs(self) -> dict[str, RunRecord]:
        """The newest finished run of each source."""
        newest = (
            select(schema.runs.c.source, func.max(schema.runs.c.id).label("id"))
            .where(schema.runs.c.finished_at.is_not(None), schema.runs.c.result != "abandoned")
            .group_by(schema.runs.c.source)
            .subquery()
        )
        query = select(schema.runs).join(
            newest, schema.runs.c.id == newest.c.id
        )
        with self._connect() as conn:
            return {r["source"]: _run_record(r, None) for r in conn.execute(query).mappings()}

    def last_success(self) -> dict[str, datetime]:
        """When each source last finished a run in which not every target failed."""
        query = (
            select(schema.runs.c.source, func.max(schema.runs.c.finished_at))
            .where(
                schema.runs.c.finished_at.is_not(None),
                schema.runs.c.targets > schema.runs.c.errors,
            )
            .group_by(schema.runs.c.source)
        )
        with self._connect() as conn:
            rows = conn.execute(query).all()
        out: dict[str, datetime] = {}
        for source, when in rows:
            # func.max loses the column type on some dialects: normalise here.
            moment = when if isinstance(when, datetime) else datetime.fromisoformat(str(when))
            out[str(source)] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return out

    # --- latest results ---------------------------------------------------------------------

    def latest_results(self, *, source: str | None = None) -> list[StoredTarget]:
        query = select(schema.target_results).order_by(schema.target_results.c.reference)
        if source is not None:
            query = query.where(schema.target_results.c.source == source)
        with self._connect() as conn:
            rows = list(conn.execute(query).mappings())
        return [_stored_target(r, self.where) for r in rows]

    def latest_result(self, reference: str) -> StoredTarget | None:
        query = select(schema.target_results).where(
            schema.target_results.c.reference == reference
        )
        with self._connect() as conn:
            row = conn.execute(query).mappings().first()
        return _stored_target(row, self.where) if row is not None else None

    def last_digest(self, registry: str, repository: str, tag: str) -> str | None:
        """The digest ``registry/repository:tag`` pointed at when last audited, if it was."""
        table = schema.target_results
        query = select(table.c.digest).where(
            table.c.registry == registry, table.c.repository == repository, table.c.tag == tag
        )
        with self._connect() as conn:
            found = conn.execute(query).scalar()
        return str(found) if found else None

    def node_history(self, reference: str, *, limit: int = 1000) -> list[StatusChange]:
        """Status changes of the nodes of one target, oldest first."""
        query = (
            select(schema.node_history)
            .where(schema.node_history.c.reference == reference)
            .order_by(schema.node_history.c.id.desc())
            .limit(limit)
        )
        with self._connect() as conn:
            rows = list(conn.execute(query).mappings())
        return [_node_change(r) for r in reversed(rows)]

    # --- content caches ---------------------------------------------------------------------

    def cached_manifest(
        self, source: str, repository: str, digest: str
    ) -> tuple[str, bytes] | None:
        table = schema.manifest_cache
        staged = self._staged_row(table, (source, repository, digest))
        if staged is not None:
            return str(staged["media_type"]), bytes(staged["content"])
        query = select(table.c.media_type, table.c.content).where(
            table.c.source == source, table.c.repository == repository, table.c.digest == digest
        )
        with self._connect() as conn:
            row = conn.execute(query).first()
        return (str(row[0]), bytes(row[1])) if row is not None else None

    def cache_manifest(
        self, source: str, repository: str, digest: str, media_type: str, content: bytes
    ) -> None:
        self._stage(
            schema.manifest_cache,
            {
                "source": source,
                "repository": repository,
                "digest": digest,
                "media_type": media_type,
                "content": content,
                "stored_at": _now(),
            },
        )

    def cached_blob(self, source: str, repository: str, digest: str) -> bytes | None:
        table = schema.blob_cache
        staged = self._staged_row(table, (source, repository, digest))
        if staged is not None:
            return bytes(staged["content"])
        query = select(table.c.content).where(
            table.c.source == source, table.c.repository == repository, table.c.digest == digest
        )
        with self._connect() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return bytes(value) if value is not None else None

    def cache_blob(self, source: str, repository: str, digest: str, content: bytes) -> None:
        self._stage(
            schema.blob_cache,
            {
                "source": source,
                "repository": repository,
                "digest": digest,
                "content": content,
                "stored_at": _now(),
            },
        )

    def cached_verdict(
        self, trust_hash: str, signature: str, subject: str, scope: str
    ) -> tuple[SignatureResult, datetime | None] | None:
        table = schema.verdict_cache
        staged = self._staged_row(table, (trust_hash, signature, subject, scope))
        if staged is not None:
            row: Any = (staged["result"], staged["recheck_at"])
        else:
            query = select(table.c.result, table.c.recheck_at).where(
                table.c.trust_hash == trust_hash,
                table.c.signature_digest == signature,
                table.c.subject_digest == subject,
                table.c.scope == scope,
            )
            with self._connect() as conn:
                row = conn.execute(query).first()
        if row is None:
            return None
        try:
            return decode_signature(json.loads(row[0])), row[1]
        except (ValueError, StateError):
            return None  # a damaged entry is a miss: the signature is verified again

    def cache_verdict(
        self, trust_hash: str, signature: str, subject: str, scope: str, result: SignatureResult
    ) -> None:
        self._stage(
            schema.verdict_cache,
            {
                "trust_hash": trust_hash,
                "signature_digest": signature,
                "subject_digest": subject,
                "scope": scope,
                "result": json.dumps(encode_signature(result)),
                "recheck_at": result.recheck_at,
                "stored_at": _now(),
            },
        )

    def _stage(self, table: Table, values: dict[str, Any]) -> None:
        """Hold a cache row until the next :meth:`flush_caches` (written early past the
        bounds): a run's cache writes cost one transaction per target, not one per answer."""
        key = (table.name, tuple(values[c.name] for c in table.primary_key.columns))
        size = len(values.get("content") or b"")
        with self._staging:
            old = self._staged.get(key)
            if old is not None:
                self._staged_bytes -= len(old[1].get("content") or b"")
            self._staged[key] = (table, values)
            self._staged_bytes += size
            full = len(self._staged) >= STAGED_ROWS or self._staged_bytes >= STAGED_BYTES
        if full:
            self.flush_caches()

    def _staged_row(self, table: Table, key: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._staging:
            staged = self._staged.get((table.name, key))
        return staged[1] if staged is not None else None

    def flush_caches(self) -> None:
        """Write every staged cache row in one transaction. On failure the rows are dropped
        (StateError): a cache that cannot be written costs time, never a verdict."""
        with self._staging:
            rows = list(self._staged.values())
            self._staged.clear()
            self._staged_bytes = 0
        if not rows:
            return
        with self._transaction() as conn:
            for table, values in rows:
                _put(conn, table, **values)

    def forget_verdicts_except(self, trust_hash: str) -> int:
        """Drop verdicts made under other trust files: they can never be used again."""
        table = schema.verdict_cache
        self.flush_caches()  # staged verdicts are counted and dropped like written ones
        with self._transaction() as conn:
            return int(conn.execute(delete(table).where(table.c.trust_hash != trust_hash)).rowcount)


    # --- alerts -----------------------------------------------------------------------------

    def alert_states(self, source: str) -> dict[str, AlertState]:
        """The last alerted state of every target filed under ``source``."""
        table = schema.alert_states
        with self._connect() as conn:
            rows = conn.execute(
                select(table.c.reference, table.c.state).where(table.c.source == source)
            ).all()
        out: dict[str, AlertState] = {}
        for reference, text in rows:
            try:
                out[reference] = state_from_json(json.loads(text))
            except (ValueError, KeyError, TypeError):
                continue  # a damaged entry: the target starts over (it may alert once again)
        return out

    def record_alerts(
        self,
        source: str,
        states: Mapping[str, AlertState],
        outbox: Sequence[OutgoingAlert],
        forgotten: Sequence[str] = (),
    ) -> None:
        """States and the messages they decided, in one transaction: a crash between deciding
        and storing sends nothing twice and loses nothing that was stored."""
        table = schema.alert_states
        now = _now()
        with self._transaction() as conn:
            gone = [*states, *forgotten]
            if gone:
                conn.execute(delete(table).where(table.c.reference.in_(gone)))
            for reference, state in states.items():
                conn.execute(
                    table.insert().values(
                        reference=reference,
                        source=source,
                        state=json.dumps(state_to_json(state), separators=(",", ":")),
                        updated_at=now,
                    )
                )
            for item in outbox:
                conn.execute(
                    schema.alert_outbox.insert().values(
                        sink=item.sink,
                        delivery_id=item.delivery_id,
                        reference=item.reference,
                        transition=item.transition,
                        payload=json.dumps(item.payload, separators=(",", ":")),
                        created_at=now,
                        attempts=0,
                    )
                )

    def pending_alerts(self, sink: str, *, limit: int = 100) -> list[PendingAlert]:
        """Undelivered messages of ``sink``, oldest first."""
        table = schema.alert_outbox
        query = (
            select(table).where(table.c.sink == sink).order_by(table.c.id).limit(limit)
        )
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            PendingAlert(
                id=row["id"],
                sink=row["sink"],
                delivery_id=row["delivery_id"],
                reference=row["reference"],
                transition=row["transition"],
                payload=json.loads(row["payload"]),
                created_at=row["created_at"],
                attempts=row["attempts"],
            )
            for row in rows
        ]

    def alert_done(self, alert_id: int) -> None:
        """Delivered (or refused for good): out of the outbox."""
        with self._transaction() as conn:
            conn.execute(delete(schema.alert_outbox).where(schema.alert_outbox.c.id == alert_id))

    def alert_failed(self, alert_id: int, error: str) -> None:
        table = schema.alert_outbox
        with self._transaction() as conn:
            conn.execute(
                update(table)
                .where(table.c.id == alert_id)
                .values(attempts=table.c.attempts + 1, last_error=error[:500])
            )

    def pending_alert_counts(self) -> dict[str, int]:
        table = schema.alert_outbox
        with self._connect() as conn:
            rows = conn.execute(select(table.c.sink, func.count()).group_by(table.c.sink)).all()
        return {str(sink): int(count) for sink, count in rows}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets /metrics and pages read while a run writes; NORMAL sync is safe with WAL.
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    except Exception:  # noqa: S110 - a read-only file keeps its journal mode; reads still work
        pass
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _db_message(exc: SQLAlchemyError) -> str:
    """The driver's own one-line reason (``database is locked``, ``attempt to write a readonly
    database``), without SQL text or parameters (which may hold report data)."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else exc.__class__.__name__
    return text.splitlines()[0] if text else exc.__class__.__name__


def _put(conn: Connection, table: Table, **values: Any) -> None:
    """Insert the row, replacing the one with the same primary key: delete + insert, the
    portable form of an upsert (no SQLite- or PostgreSQL-only syntax)."""
    key = [column == values[column.name] for column in table.primary_key.columns]
    conn.execute(delete(table).where(*key))
    conn.execute(table.insert().values(**values))


def _delete_targets(conn: Connection, references: Sequence[str], *, nodes: bool = True) -> None:
    if not references:
        return
    conn.execute(
        delete(schema.target_results).where(schema.target_results.c.reference.in_(references))
    )
    if nodes:
        conn.execute(delete(schema.node_status).where(schema.node_status.c.reference.in_(references)))


def _record_nodes(
    conn: Connection, target: RecordedTarget, run_id: int, when: datetime
) -> list[StatusChange]:
    """Update the current status of each node; write and return what changed.

    A target that could not be audited at all (no nodes) keeps its nodes' last known status:
    a registry outage is not a change of any signature.
    """
    if not target.nodes:
        return []
    table = schema.node_status
    current = {
        row.node_digest: row
        for row in conn.execute(select(table).where(table.c.reference == target.reference))
    }
    changes: list[StatusChange] = []
    seen: set[str] = set()
    for node in target.nodes:
        if node.digest in seen:
            continue
        seen.add(node.digest)
        platform = node.platform
        status = node.status
        before = current.get(node.digest)
        if before is not None and before.status == status:
            if before.required != node.required:
                conn.execute(
                    update(table)
                    .where(table.c.reference == target.reference,
                           table.c.node_digest == node.digest)
                    .values(required=node.required)
                )
            continue
        if before is not None:
            conn.execute(
                delete(table).where(
                    table.c.reference == target.reference, table.c.node_digest == node.digest
                )
            )
        conn.execute(
            table.insert().values(
                reference=target.reference,
                node_digest=node.digest,
                kind=node.kind,
                platform=platform,
                required=node.required,
                status=status,
                since=when,
                run_id=run_id,
            )
        )
        change = StatusChange(
            reference=target.reference,
            node_digest=node.digest,
            kind=node.kind,
            platform=platform,
            status=status,
            previous=before.status if before is not None else None,
            changed_at=when,
            run_id=run_id,
        )
        conn.execute(
            schema.node_history.insert().values(
                reference=change.reference,
                node_digest=change.node_digest,
                kind=change.kind,
                platform=change.platform,
                status=change.status,
                previous_status=change.previous,
                changed_at=change.changed_at,
                run_id=run_id,
            )
        )
        changes.append(change)
    gone = [d for d in current if d not in seen]
    if gone:
        conn.execute(
            delete(table).where(
                table.c.reference == target.reference, table.c.node_digest.in_(gone)
            )
        )
    return changes


def _prune_runs(conn: Connection, keep: int) -> None:
    """Keep the newest ``keep`` runs (their reports are the bulk of the file)."""
    cutoff = conn.execute(
        select(schema.runs.c.id).order_by(schema.runs.c.id.desc()).offset(keep).limit(1)
    ).scalar_one_or_none()
    if cutoff is not None:
        conn.execute(delete(schema.run_targets).where(schema.run_targets.c.run_id <= cutoff))
        conn.execute(delete(schema.runs).where(schema.runs.c.id <= cutoff))


# A run in these states was never finished by finish_run: it has no report (GET /audit/<id>
# says so), where a finished run's report may be empty.
_NO_REPORT = frozenset({"running", "abandoned"})


def _run_record(row: Any, report: tuple[TargetResult, ...] | None) -> RunRecord:
    return RunRecord(
        id=int(row["id"]),
        source=str(row["source"]),
        trigger=str(row["trigger"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        result=str(row["result"]),
        targets=int(row["targets"]),
        compliant=int(row["compliant"]),
        noncompliant=int(row["noncompliant"]),
        errors=int(row["errors"]),
        duration_seconds=row["duration_seconds"],
        message=row["message"],
        report=report,
    )


def _stored_target(row: Any, where: str) -> StoredTarget:
    try:
        result = decode_target(json.loads(row["result"]))
    except ValueError:
        raise StateError(f"{where}: result of {row['reference']} is damaged") from None
    return StoredTarget(
        reference=str(row["reference"]),
        source=str(row["source"]),
        registry=str(row["registry"]),
        repository=str(row["repository"]),
        tag=str(row["tag"]),
        run_id=int(row["run_id"]),
        audited_at=row["audited_at"],
        result=result,
    )


def _node_change(row: Any) -> StatusChange:
    return StatusChange(
        reference=str(row["reference"]),
        node_digest=str(row["node_digest"]),
        kind=str(row["kind"]),
        platform=row["platform"],
        status=str(row["status"]),
        previous=row["previous_status"],
        changed_at=row["changed_at"],
        run_id=int(row["run_id"]),
    )
