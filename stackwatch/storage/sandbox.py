"""One ad-hoc query, run in a process of its own on a locked-down, read-only DuckDB.

This module is the child's side of :func:`stackwatch.storage.query.run_query`: ``python -m
stackwatch.storage.sandbox`` reads one request (JSON) on stdin and writes one answer (JSON) on stdout. The
sandbox is made by configuration, not by inspecting the query:

- the process caps its own address space (``RLIMIT_AS``), CPU time and file size (nothing may be written),
  and lowers its priority, so a query cannot starve or swell the service that started it;
- DuckDB opens an empty in-memory database (one thread, ``memory_limit``, no temp directory: nothing spills
  to disk), attaches the store file ``READ_ONLY``, then turns external access off (no file, URL, extension or
  secret beyond that one file) and locks the configuration, so no statement can turn any of it back on;
- the query must also pass :func:`stackwatch.storage.readonly.check_query` (the second layer), is interrupted
  after ``time_limit`` seconds, and its answer stops at ``max_rows`` rows or ``max_answer_bytes`` bytes.

The answer is ``{"columns": [...], "rows": [[...]], "truncated": bool}`` or ``{"error": "...", "kind": K}``
with K one of ``open`` (the file cannot be opened), ``refused``, ``failed``, ``stopped`` or ``memory``.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from stackwatch.errors import QueryRefused
from stackwatch.sizes import parse_size
from stackwatch.storage.readonly import check_query

__all__ = [
    "ADDRESS_SPACE_BASE",
    "SandboxRequest",
    "address_space",
    "lock_down",
    "main",
    "open_sandbox",
    "plain",
    "run",
]

CATALOG = "stackwatch"
ADDRESS_SPACE_BASE = 1 << 30
"""Address space of the query process beyond twice ``memory_limit``: Python, DuckDB's code and its arenas."""
CPU_GRACE = 5
_FETCH = 1024


@dataclass(frozen=True, slots=True)
class SandboxRequest:
    """What the parent asks: one query on one file, within limits."""

    path: str
    sql: str
    time_limit: float
    max_rows: int
    memory_limit: str
    max_answer_bytes: int


def address_space(memory_limit: str) -> int:
    """The ``RLIMIT_AS`` of a query process with this ``memory_limit``."""
    return ADDRESS_SPACE_BASE + 2 * parse_size(memory_limit)


def open_sandbox(path: str | Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB that can read the file at ``path`` and nothing else, its configuration locked.

    Raises ``duckdb.Error`` when the file cannot be attached (missing, not DuckDB, locked by a writer).
    """
    connection = duckdb.connect(
        ":memory:",
        config={
            "threads": 1,
            "memory_limit": memory_limit,
            "temp_directory": "",
            "max_temp_directory_size": "0B",
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_unsigned_extensions": False,
            "allow_persistent_secrets": False,
            "python_enable_replacements": False,
        },
    )
    quoted = "'" + str(path).replace("'", "''") + "'"
    return lock_down(connection, (f"ATTACH {quoted} AS {CATALOG} (READ_ONLY)", []), (f"USE {CATALOG}", []))


def lock_down(connection: duckdb.DuckDBPyConnection, *setup: tuple[str, Sequence[Any]]) -> duckdb.DuckDBPyConnection:
    """Run ``setup`` (statements and their parameters, which may still reach files), then set UTC (buckets and
    time_bucket() are UTC), turn file access off and lock the configuration so no query turns it back on. The
    connection is closed if any of it fails::

        lock_down(duckdb.connect(path, read_only=True), ("SET allowed_directories = ?", [["/out/"]]))
    """
    try:
        for statement, parameters in setup:
            connection.execute(statement, parameters)
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
    except BaseException:
        connection.close()
        raise
    return connection


def known_tables(connection: duckdb.DuckDBPyConnection) -> set[str]:
    rows = connection.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_schema = 'main'",
        [CATALOG],
    ).fetchall()
    return {str(row[0]) for row in rows}


def plain(value: object) -> object:
    """A DuckDB value as JSON can carry it: times as ISO 8601 text, decimals as numbers, blobs as text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def run(connection: duckdb.DuckDBPyConnection, request: SandboxRequest) -> dict[str, Any]:
    """Check and run the request's query on a sandbox; the answer, or its error, as a mapping (see above)."""
    try:
        check_query(request.sql, known_tables(connection))
    except QueryRefused as error:
        return {"error": str(error), "kind": "refused"}
    timer = threading.Timer(request.time_limit, connection.interrupt)
    timer.start()
    try:
        relation = connection.execute(request.sql)
        columns = [str(column[0]) for column in relation.description or []]
        rows: list[list[Any]] = []
        size = len(json.dumps(columns)) + 64
        truncated = False
        while not truncated:
            chunk = relation.fetchmany(_FETCH)
            if not chunk:
                break
            for row in chunk:
                width = len(json.dumps(list(row), default=plain, ensure_ascii=False)) + 1
                if len(rows) >= request.max_rows or size + width > request.max_answer_bytes:
                    truncated = True
                    break
                rows.append(list(row))
                size += width
    except duckdb.InterruptException:
        return {"error": f"query stopped after {request.time_limit:g}s (sql.time_limit)", "kind": "stopped"}
    except (duckdb.OutOfMemoryException, MemoryError):
        return {
            "error": f"query stopped: it needs more memory than {request.memory_limit} (sql.memory_limit)",
            "kind": "memory",
        }
    except duckdb.Error as error:
        return {"error": _first_line(error), "kind": "failed"}
    finally:
        timer.cancel()
    if truncated and not rows:
        return {
            "error": f"one row is larger than an answer may be ({request.max_answer_bytes} bytes)",
            "kind": "failed",
        }
    return {"columns": columns, "rows": rows, "truncated": truncated}


def _limit_self(request: SandboxRequest) -> None:
    """Caps on this process: address space, CPU seconds, no file written, lower priority, no core dump."""
    space = address_space(request.memory_limit)
    resource.setrlimit(resource.RLIMIT_AS, (space, space))
    cpu = int(request.time_limit) + CPU_GRACE
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.nice(10)


def main() -> None:
    """Read one request on stdin, write one answer on stdout."""
    request = SandboxRequest(**json.loads(sys.stdin.buffer.read()))
    _limit_self(request)
    try:
        connection = open_sandbox(request.path, request.memory_limit)
    except duckdb.Error as error:
        answer: dict[str, Any] = {"error": f"cannot open {request.path}: {_first_line(error)}", "kind": "open"}
    else:
        try:
            answer = run(connection, request)
        finally:
            connection.close()
    sys.stdout.write(json.dumps(answer, default=plain, ensure_ascii=False))
    sys.stdout.flush()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


if __name__ == "__main__":
    main()
