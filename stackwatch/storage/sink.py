"""The DuckDB sink: ``add`` messages as they arrive, ``flush`` them in one transaction.

The caller commits its Kafka offsets only after ``flush`` returns: if the flush fails, nothing is committed
and the same messages come again (the store's upserts make that harmless)::

    sink = DuckDBSink(store)
    for message in messages:
        sink.add(message)
    sink.flush()
    consumer.commit()
"""

from __future__ import annotations

from stackwatch.signals.messages import Alert, DeadLetter, IndicatorUpdate, TaggedArticle
from stackwatch.storage.store import Batch, Store

__all__ = ["DuckDBSink", "SinkMessage"]

SinkMessage = TaggedArticle | IndicatorUpdate | Alert | DeadLetter


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

    def flush(self) -> int:
        """Write what was added; returns how many messages were written. On error the buffer is kept."""
        batch = self._batch
        self._store.write(batch)
        self._batch = Batch()
        return len(batch)
