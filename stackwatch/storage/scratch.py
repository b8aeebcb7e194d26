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
from contextlib import ExitStack, contextmanager

import duckdb
import pyarrow as pa

__all__ = ["Scratch", "registered"]


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


class Scratch:
    """Intermediate results kept as Arrow tables, readable by name until the block ends::

        with Scratch(connection) as scratch:
            scratch.keep("_keys", "SELECT ... FROM _delta_rows GROUP BY ALL")
            scratch.put("_ids", pa.table({"id": ids}))

    A write's intermediates are small, and as TEMP tables each would hold whole DuckDB blocks (256 KB a column)
    inside ``storage.memory_limit`` for as long as the connection lives; as Arrow tables they cost their rows, in
    the process, until the block ends. Each name is kept once per block.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._connection = connection
        self._stack = ExitStack()

    def keep(self, name: str, sql: str) -> pa.Table:
        """Run ``sql`` (it only reads) and keep its rows as ``name``."""
        rows = self._connection.sql(sql).to_arrow_table()
        self.put(name, rows)
        return rows

    def put(self, name: str, rows: pa.Table) -> None:
        self._stack.enter_context(registered(self._connection, name, rows))

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.__exit__(*exc)  # type: ignore[arg-type]
