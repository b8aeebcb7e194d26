"""Stackwatch's own exception tree.

Errors from Kafka clients, DuckDB, HTTP and parsers are caught at the boundary and raised again as one of
these, with the original chained as ``__cause__``::

    StackwatchError
    ├── ConfigError          invalid configuration; the message names the key
    ├── BrokerError          the Kafka broker could not be started or reached
    ├── SourceError          a source could not be fetched or parsed
    │   └── ParseError       a document was fetched but is not what it claims to be
    ├── ClassifierError      the classifier could not be loaded or run
    ├── StoreError           DuckDB could not be opened or written
    │   ├── QueryRefused     a read-only query asked for something it may not do
    │   ├── QueryFailed      a read-only query ran and failed (unknown column, bad cast...)
    │   │   └── QueryStopped a read-only query ran past a limit of the ``sql:`` section and was stopped
    │   └── QueryBusy        every slot for read-only queries (``sql.max_concurrent``) is taken
    └── DeliveryError        a webhook could not be delivered
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "ClassifierError",
    "ConfigError",
    "DeliveryError",
    "ParseError",
    "QueryBusy",
    "QueryFailed",
    "QueryRefused",
    "QueryStopped",
    "SourceError",
    "StackwatchError",
    "StoreError",
]


class StackwatchError(Exception):
    """Base of every error stackwatch raises on purpose."""


class ConfigError(StackwatchError):
    """The configuration is invalid. ``str(error)`` lists each bad key and what was expected."""


class BrokerError(StackwatchError):
    """The Kafka broker could not be started or reached."""


class SourceError(StackwatchError):
    """A source could not be fetched."""


class ParseError(SourceError):
    """A fetched document could not be parsed into articles."""


class ClassifierError(StackwatchError):
    """The classifier could not be loaded or could not classify."""


class StoreError(StackwatchError):
    """DuckDB could not be opened or written."""


class QueryRefused(StoreError):
    """A query sent to the read-only SQL front asked for something it may not do."""


class QueryFailed(StoreError):
    """A read-only query was run and failed; ``str(error)`` is DuckDB's reason."""


class QueryStopped(QueryFailed):
    """A read-only query ran past a limit (``limit`` names the setting, e.g. ``sql.time_limit``)."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class QueryBusy(StoreError):
    """Every slot for read-only queries is taken: try again shortly."""


class DeliveryError(StackwatchError):
    """A webhook delivery failed."""
