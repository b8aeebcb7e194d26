"""The DuckDB sink: ``add`` messages as they arrive, ``flush`` them in one transaction.

The caller commits its Kafka offsets only after ``flush`` returns: if the flush fails, nothing is committed
and the same messages come again (the store's upserts make that harmless). ``flush`` says which articles the
write changed, so the caller can tell the rules what the store now holds::

    sink = DuckDBSink(store)
    for message in messages:
        sink.add(message)
    flushed = sink.flush()
    stored_observations(store.connection, flushed.articles)     # for the rules stage
    consumer.commit()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from stackwatch.signals.messages import Alert, DeadLetter, IndicatorUpdate, TaggedArticle
from stackwatch.storage.store import Batch, Store

__all__ = ["DuckDBSink", "Flushed", "SinkMessage"]

SinkMessage = TaggedArticle | IndicatorUpdate | Alert | DeadLetter


@dataclass(frozen=True, slots=True)
class Flushed:
    """What one flush wrote: how many messages, and the articles whose stored facts changed (id:
    ``published_at``), those of the batch and those whose story the batch changed."""

    records: int
    articles: dict[str, datetime] = field(default_factory=dict)


class DuckDBSink:
    """Buffers messages and writes them to a :class:`Store` in one transaction per flush."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._batch = Batch()

    def __len__(self) -> int:
        return len(self._batch)

    @property
    def pending_articles(self) -> int:
        """Tagged articles added since the last flush."""
        return len(self._batch.tagged)

    def add(self, message: SinkMessage) -> None:
        match message:
            case TaggedArticle():
                self._batch.tagged.append(message)
            case IndicatorUpdate():
                self._batch.indicators.append(message)
            case Alert():
                self._batch.alerts.append(message)
            case DeadLetter():
                self._batch.dead_letters.append(message)

    def flush(self) -> Flushed:
        """Write what was added in one transaction. On error the buffer is kept."""
        batch = self._batch
        changed = self._store.write(batch)
        self._batch = Batch()
        return Flushed(len(batch), changed)
