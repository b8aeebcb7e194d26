"""Arrow tables lent to DuckDB for the statements of one block::

    with registered(connection, "_article_rows", table):
        connection.execute("INSERT INTO articles SELECT * FROM _article_rows")

The name is unregistered when the block ends. When the block fails inside a transaction, DuckDB has aborted the
transaction and refuses to unregister: the rollback that follows drops the name, and the block's own error, not
that refusal, is what propagates (an out-of-memory error must reach the caller as one).

A registered table lives until the transaction that registered it ends, even once unregistered: register per
transaction, not per loop step of a long one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa

__all__ = ["registered"]


@contextmanager
def registered(connection: duckdb.DuckDBPyConnection, name: str, rows: pa.Table) -> Iterator[None]:
    """``rows`` readable as ``name`` inside the block."""
    connection.register(name, rows)
    try:
        yield
    except BaseException as failure:
        try:
            connection.unregister(name)
        except duckdb.TransactionException as refused:  # aborted: the rollback drops the name
            failure.add_note(f"unregister {name}: {refused}")
        raise
    connection.unregister(name)
