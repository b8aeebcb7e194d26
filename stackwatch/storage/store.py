"""The DuckDB store: stackwatch's single writer, and its read path.

One process holds the file for writing. Every write is an idempotent upsert keyed by the message's own id, so
a batch written twice (an at-least-once redelivery, a replay) leaves the same rows::

    store = Store.open("data/stackwatch.duckdb")
    store.write(Batch(tagged=[...], indicators=[...], alerts=[...], dead_letters=[...]))
    store.query("SELECT count(*) FROM articles")

A ``Store`` is not thread-safe: call it from one thread (the pipeline gives it a dedicated one).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import duckdb
import pyarrow as pa

from stackwatch.errors import StoreError
from stackwatch.signals.indicators import DERIVED
from stackwatch.signals.messages import Alert, DeadLetter, IndicatorUpdate, TaggedArticle, utcnow
from stackwatch.sizes import parse_size
from stackwatch.storage.derive import Changes, Derivation
from stackwatch.storage.evidence import write_alert_details
from stackwatch.storage.explanations import write_explanations
from stackwatch.storage.increments import capture
from stackwatch.storage.readonly import check_query
from stackwatch.storage.rebuild_plan import REBUILD_ARTICLE_BYTES, REBUILD_CHUNK_ARTICLES, rebuild_chunks
from stackwatch.storage.schema import current_version, migrate
from stackwatch.storage.scratch import registered
from stackwatch.storage.tag_history import archive_retagged
from stackwatch.storage.zonemaps import span

__all__ = [
    "MEMORY_KEY",
    "Batch",
    "QueryResult",
    "Store",
    "as_store_error",
    "delivery_id",
    "held_by_another_process",
    "is_out_of_memory",
    "store_error",
    "temp_directory",
]

_ROWS_PER_STATEMENT = 500
_log = logging.getLogger(__name__)


@dataclass
class Batch:
    """Messages to write in one transaction."""

    tagged: list[TaggedArticle] = field(default_factory=list)
    indicators: list[IndicatorUpdate] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tagged) + len(self.indicators) + len(self.alerts) + len(self.dead_letters)


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def delivery_id(alert_id: str, webhook: str) -> str:
    """The webhook-id of an alert's delivery to one webhook: the same on every retry and after restarts."""
    return "msg_" + hashlib.sha256(f"{alert_id}|{webhook}".encode()).hexdigest()[:24]


MEMORY_KEY = "storage.memory_limit"
"""The setting that caps the writer's DuckDB memory (``Store.open(memory_limit=...)``)."""

_OUT_OF_MEMORY = ("out of memory", "could not allocate block", "failed to allocate data", "failed to pin block")


def held_by_another_process(error: BaseException) -> bool:
    """The file is locked by another process (a reader such as ``stackwatch sql``, or another writer)."""
    return "conflicting lock" in str(error).lower()


def is_out_of_memory(error: duckdb.Error) -> bool:
    """DuckDB ran out of memory: raised as OutOfMemoryException by a statement, as TransactionException by a
    COMMIT that could not allocate."""
    text = str(error).lower()
    return isinstance(error, duckdb.OutOfMemoryException) or any(marker in text for marker in _OUT_OF_MEMORY)


def store_error(action: str, error: duckdb.Error, memory_limit: str | None = None) -> StoreError:
    """``error`` as a StoreError prefixed with ``action``; running out of memory names the cap and its setting."""
    if is_out_of_memory(error):
        cap = f" ({memory_limit})" if memory_limit else ""
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return StoreError(
            f"{action}: out of memory: it needs more than {MEMORY_KEY}{cap} allows; raise {MEMORY_KEY} and run"
            f" it again (DuckDB: {first})"
        )
    return StoreError(f"{action}: {error}")


@contextmanager
def as_store_error(action: str, memory_limit: str | None = None) -> Iterator[None]:
    """DuckDB errors inside the block become StoreError, prefixed with ``action`` (see :func:`store_error`)."""
    try:
        yield
    except duckdb.Error as error:
        raise store_error(action, error, memory_limit) from error


DEFAULT_MEMORY_LIMIT = "1GB"


def temp_directory(path: Path) -> Path:
    """Where the writer of ``path`` spills what does not fit in its memory cap (DuckDB's own default, made
    explicit): removed by DuckDB when the store is closed."""
    return path.with_name(path.name + ".tmp")


class Store:
    """A DuckDB file opened for writing (or read-only), migrated to the current schema."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        path: Path,
        read_only: bool,
        derivation: Derivation,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self._connection = connection
        self.path = path
        self.read_only = read_only
        self.derivation = derivation
        self.memory_limit = memory_limit
        self._tables: frozenset[str] | None = None

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        read_only: bool = False,
        derivation: Derivation | None = None,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        rebuild_pending: bool = True,
    ) -> Self:
        """Open (and migrate) the store. ``memory_limit`` bounds DuckDB's memory, which otherwise may grow to most
        of the machine's over months of running; what a large operation cannot hold within it spills to
        ``<path>.tmp`` (:func:`temp_directory`), and what cannot spill fails as a StoreError naming the cap.

        A migration that changes how derived rows are computed leaves a row in ``pending_rebuild``: the first
        writable open rebuilds them, unless ``rebuild_pending`` is False because the caller rebuilds next (``stackwatch
        rebuild``, with its progress bar); the row goes when a rebuild completes."""
        file = Path(path)
        before = 0
        try:
            if read_only:
                connection = duckdb.connect(
                    str(file), read_only=True, config={"enable_external_access": False, "memory_limit": memory_limit}
                )
            else:
                file.parent.mkdir(parents=True, exist_ok=True)
                connection = duckdb.connect(
                    str(file), config={"memory_limit": memory_limit, "temp_directory": str(temp_directory(file))}
                )
                before = current_version(connection)
                migrate(connection)
            connection.execute("SET TimeZone = 'UTC'")  # buckets and time_bucket() are UTC
        except (duckdb.Error, OSError) as error:
            raise StoreError(f"cannot open DuckDB file {file}: {error}") from error
        store = cls(connection, file, read_only, derivation or Derivation(), memory_limit)
        if not read_only and (pending := store._pending_rebuild()):
            if not before:  # a new store has nothing to rebuild
                with store._transaction(f"cannot record the rebuild of {file}"):
                    connection.execute("DELETE FROM pending_rebuild")
            elif rebuild_pending:
                _log.warning("%s: rebuilding every derived indicator once (%s)", file, pending)
                store.rebuild()
        return store

    def _pending_rebuild(self) -> str:
        """Why the derived rows must be rebuilt before the next write ('' if they need not)."""
        with as_store_error(f"cannot read {self.path}"):
            rows = self._connection.execute("SELECT reason FROM pending_rebuild").fetchall()
        return "; ".join(row[0] for row in rows)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The underlying connection, for the maintenance jobs of this package (same thread rules apply)."""
        return self._connection

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------------------

    def write(self, batch: Batch) -> dict[str, datetime]:
        """Write a batch in one transaction: all of it lands, or none of it (and StoreError is raised). Returns
        the articles whose facts the rules read changed (id: ``published_at``): the batch's, and the stored ones
        whose story or novelty the batch changed."""
        if not len(batch):
            return {}
        with self._transaction(f"cannot write batch of {len(batch)} records to {self.path}"):
            changes = self._write_articles(batch.tagged)
            self.derivation.apply(self._connection, changes)
            self._write_indicators(batch.indicators)
            self._write_alerts(batch.alerts)
            self._write_dead_letters(batch.dead_letters)
        return changes.dated()

    @contextmanager
    def _transaction(self, action: str) -> Iterator[None]:
        """The block in one transaction: committed if it returns, rolled back if it raises anything; DuckDB
        errors (of the block or the commit) become StoreError prefixed with ``action``, the memory cap named when
        DuckDB ran out of memory (:func:`store_error`)."""
        with as_store_error(action, self.memory_limit):
            self._connection.execute("BEGIN TRANSACTION")
            try:
                yield
                self._connection.execute("COMMIT")
            except BaseException as failure:
                try:
                    self._connection.execute("ROLLBACK")
                except duckdb.Error as rollback:  # a COMMIT that failed has rolled back already
                    failure.add_note(f"rollback: {rollback}")
                raise

    def _upsert(self, sql_head: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        width = len(rows[0])
        placeholder = "(" + ", ".join("?" * width) + ")"
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            values = ", ".join([placeholder] * len(chunk))
            self._connection.execute(f"{sql_head} VALUES {values}", [value for row in chunk for value in row])

    def _write_articles(self, tagged: Sequence[TaggedArticle]) -> Changes:
        """Replace articles and their dynamics (bulk, through Arrow); derive entities and stories; return the
        articles changed (the stored versions of replaced ones captured first, for the increments).

        The tables have no primary key (an ART index must fit in memory: schema migration 4), so an article is
        replaced by deleting its rows and inserting them again; it keeps the ``stored_at`` of its first write. Finding
        whether an id is stored reads the id column; the deletes then read only the row groups of the dates the
        replaced articles had (zone maps on published_at: schema migration 5)."""
        latest = list({item.article.id: item for item in tagged}.values())  # one row per id
        if not latest:
            return Changes({}, {})
        ids = [item.article.id for item in latest]
        connection = self._connection
        with registered(connection, "_batch_ids", pa.table({"id": ids})):
            previous = connection.execute(
                "SELECT id, published_at, stored_at FROM articles WHERE id IN (SELECT id FROM _batch_ids)"
            ).fetchall()
            before = capture(connection, {row[0]: row[1] for row in previous})
            if previous:
                lo, hi = span(row[1] for row in previous) or ("NULL", "NULL")
                within = f"published_at BETWEEN {lo} AND {hi}"
                versions = {item.article.id: item.model_version for item in latest}
                archive_retagged(connection, within, [(row[0], versions[row[0]]) for row in previous])
                connection.execute(f"DELETE FROM articles WHERE {within} AND id IN (SELECT id FROM _batch_ids)")  # noqa: S608
                connection.execute(
                    f"DELETE FROM article_dynamics WHERE {within} AND article_id IN (SELECT id FROM _batch_ids)"  # noqa: S608
                )
        first_stored = {row[0]: row[2] for row in previous}
        when = pa.timestamp("us", "UTC")
        articles = pa.table(
            {
                "id": ids,
                "url": [item.article.url for item in latest],
                "title": [item.article.title for item in latest],
                "summary": [item.article.summary for item in latest],
                "body": pa.array([item.article.body for item in latest], pa.string()),
                "source": [item.article.source for item in latest],
                "connector": [item.article.connector for item in latest],
                "language": pa.array([item.article.language for item in latest], pa.string()),
                "published_at": pa.array([item.article.published_at for item in latest], when),
                "fetched_at": pa.array([item.article.fetched_at for item in latest], when),
                "labels": pa.array([list(item.labels) for item in latest], pa.list_(pa.string())),
                "model_version": [item.model_version for item in latest],
                "tagged_at": pa.array([item.tagged_at for item in latest], when),
                "stored_at": pa.array([first_stored.get(article_id) for article_id in ids], when),
            }
        )
        dynamics = pa.table(
            {
                "article_id": [item.article.id for item in latest for _ in item.scores],
                "dynamic": [dynamic for item in latest for dynamic in item.scores],
                "score": pa.array([float(s) for item in latest for s in item.scores.values()], pa.float64()),
                "label": [dynamic in item.labels for item in latest for dynamic in item.scores],
                "model_version": [item.model_version for item in latest for _ in item.scores],
                "published_at": pa.array([item.article.published_at for item in latest for _ in item.scores], when),
            }
        )
        with registered(connection, "_article_rows", articles), registered(connection, "_dynamic_rows", dynamics):
            connection.execute(
                "INSERT INTO articles SELECT * EXCLUDE (stored_at), coalesce(stored_at, now()) FROM _article_rows"
            )
            connection.execute("INSERT INTO article_dynamics SELECT * FROM _dynamic_rows")
        replaced = {row[0]: row[1] for row in previous}
        write_explanations(connection, latest, replaced)
        return self.derivation.derive_articles(connection, latest, replaced, before)

    def _write_indicators(self, updates: Sequence[IndicatorUpdate]) -> None:
        # Derived indicators are recomputed from stored articles above; the stream's copies feed the rules agent.
        latest = {update.key: update for update in updates if update.indicator not in DERIVED}
        for update in latest.values():  # rare (no stage emits non-derived indicators yet): row by row is fine
            self._connection.execute(
                "DELETE FROM indicators WHERE indicator = ? AND dynamic = ? AND entity = '*' AND source = '*'"
                " AND bucket_width = ? AND bucket_start = ?",
                [update.indicator, update.dynamic, update.window, update.bucket_start],
            )
            self._connection.execute(
                "INSERT INTO indicators VALUES (?, ?, '*', '*', ?, ?, ?, ?)",
                [update.indicator, update.dynamic, update.window, update.bucket_start, update.value, update.updated_at],
            )

    def _write_alerts(self, alerts: Sequence[Alert]) -> None:
        unique = {alert.id: alert for alert in alerts}
        # The first firing wins: an alert that is already recorded keeps its row and its deliveries.
        self._upsert(
            "INSERT OR IGNORE INTO alerts (id, rule, severity, dynamic, indicator, bucket_width, bucket_start,"
            " value, threshold, message, fired_at)",
            [
                (
                    a.id,
                    a.rule,
                    a.severity,
                    a.dynamic,
                    a.indicator,
                    a.window,
                    a.bucket_start,
                    a.value,
                    a.threshold,
                    a.message,
                    a.fired_at,
                )
                for a in unique.values()
            ],
        )
        now = utcnow()
        self._upsert(
            "INSERT OR IGNORE INTO deliveries (id, alert_id, webhook, status, attempts, next_attempt_at)",
            [(delivery_id(a.id, hook), a.id, hook, "pending", 0, now) for a in unique.values() for hook in a.webhooks],
        )
        write_alert_details(self._connection, unique.values())

    def _write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        rows = {}
        for letter in letters:
            key = hashlib.sha256(f"{letter.stage}|{letter.origin}|{letter.payload}".encode()).hexdigest()[:32]
            rows[key] = (key, letter.stage, letter.reason, letter.payload, letter.origin, letter.received_at)
        self._upsert(
            "INSERT OR REPLACE INTO dead_letters (id, stage, reason, payload, origin, received_at)",
            list(rows.values()),
        )

    # -- reading -----------------------------------------------------------------------------------------------

    def tables(self) -> set[str]:
        """The schema's tables. Read once: only ``migrate``, at open, creates them (the derivation's scratch
        rows are Arrow tables it registers), and every query checks its table names against them."""
        if self._tables is None:
            rows = self._connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
            self._tables = frozenset(str(row[0]) for row in rows)
        return set(self._tables)

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> QueryResult:
        """Run one read-only query (checked by :func:`check_query`) on a cursor of its own."""
        check_query(sql, self.tables())
        cursor = self._connection.cursor()
        try:
            relation = cursor.execute(sql, params) if params is not None else cursor.execute(sql)
            columns = [column[0] for column in relation.description or []]
            return QueryResult(columns, relation.fetchall())
        except duckdb.Error as error:
            raise StoreError(f"query failed: {str(error).strip().splitlines()[0]}") from error
        finally:
            cursor.close()

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Recompute every derived indicator from stored articles; returns rows written; ``progress(done, total)``
        after each step: each chunk, then the baselines (``total`` is the chunks and one).

        One transaction per chunk of whole days (at most eight, and as many articles as the memory cap holds:
        :data:`~stackwatch.storage.rebuild_plan.REBUILD_ARTICLE_BYTES` each), then one for the baselines, so its memory
        does not grow with the store (a single transaction kept every chunk's scratch rows until its commit). A
        chunk that fails is rolled back: every bucket is left either as it was or rebuilt, and running ``rebuild``
        again completes it."""
        action = f"cannot rebuild indicators in {self.path}"
        try:
            articles = max(1_000, parse_size(self.memory_limit) // REBUILD_ARTICLE_BYTES)
        except ValueError:  # a limit DuckDB understands and we do not (e.g. a percentage)
            articles = REBUILD_CHUNK_ARTICLES
        with as_store_error(action, self.memory_limit):
            chunks = rebuild_chunks(self._connection, articles=articles)
        total = len(chunks) + 1
        written = 0
        for done, chunk in enumerate(chunks, start=1):
            with self._transaction(action):
                written += self.derivation.rebuild_chunk(self._connection, chunk)
            if progress is not None:
                progress(done, total)
        with self._transaction(action):
            written += self.derivation.rebuild_signals(self._connection)
            self._connection.execute("DELETE FROM pending_rebuild")  # whatever a migration asked for is done
        if progress is not None:
            progress(total, total)
        return written

    def count(self, table: str) -> int:
        if table not in self.tables():
            raise StoreError(f"unknown table {table!r}")
        row = self._connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()  # noqa: S608 (name checked above)
        return int(row[0]) if row else 0
