"""The read-only SQL front's runner: each query in a sandboxed process of its own, stopped at its limits.

    answer = run_query(Path("data/stackwatch.snapshot.duckdb"), "SELECT count(*) FROM articles", QueryLimits())
    answer.columns, answer.rows, answer.truncated

The query never runs in the calling process nor on the writer's connection: a child process
(:mod:`stackwatch.storage.sandbox`) opens the file read-only on a DuckDB with external access off and its
configuration locked, under its own memory, CPU and file-size caps, with an environment that holds nothing but
``PATH`` and ``PYTHONPATH``. A query still running after ``time_limit`` is interrupted by the child, and the
child is killed when it has not answered a few seconds later; either way the caller gets :class:`QueryStopped`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import stackwatch
from stackwatch.errors import QueryFailed, QueryRefused, QueryStopped, StoreError
from stackwatch.storage.readonly import check_query
from stackwatch.storage.sandbox import SandboxRequest

__all__ = ["MAX_ANSWER_BYTES", "STARTUP_GRACE", "QueryAnswer", "QueryLimits", "QueryUnavailable", "run_query"]

MAX_ANSWER_BYTES = 32 * 1024 * 1024
"""An answer stops (``truncated``) before it grows past this many bytes of JSON, whatever ``max_rows`` says."""
STARTUP_GRACE = 10.0
"""Seconds the child may take beyond ``time_limit`` (to start, open the file, send the answer) before it is killed."""
_PACKAGE_ROOT = str(Path(stackwatch.__file__).resolve().parent.parent)


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """The ``sql:`` section's limits for one query (see :class:`stackwatch.settings.sql.SqlSettings`)."""

    time_limit: float = 5.0
    max_rows: int = 10_000
    memory_limit: str = "256MB"
    max_answer_bytes: int = MAX_ANSWER_BYTES


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    """Rows as JSON values (timestamps as ISO 8601 text); ``truncated`` when more rows were cut off."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


class QueryUnavailable(StoreError):
    """The file could not be opened for reading (missing, not a DuckDB file, locked by its writer)."""


def run_query(path: Path, sql: str, limits: QueryLimits) -> QueryAnswer:
    """Run one read-only query on the DuckDB file at ``path`` in a sandboxed process; blocks until it ends.

    Raises :class:`QueryRefused` (the check refused it), :class:`QueryStopped` (a limit stopped it),
    :class:`QueryFailed` (DuckDB's error), :class:`QueryUnavailable` (the file cannot be read) or
    :class:`StoreError` (the query process failed).
    """
    check_query(sql, known_tables=None)  # refuse what is plainly not a read here, without starting a process
    request = SandboxRequest(
        path=str(path.resolve()),
        sql=sql,
        time_limit=limits.time_limit,
        max_rows=limits.max_rows,
        memory_limit=limits.memory_limit,
        max_answer_bytes=limits.max_answer_bytes,
    )
    try:
        process = subprocess.Popen(
            [sys.executable, "-s", "-m", "stackwatch.storage.sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd="/",
            env={"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": _PACKAGE_ROOT, "LC_ALL": "C.UTF-8"},
        )
    except OSError as error:
        raise StoreError(f"cannot start a query process: {error}") from error
    try:
        out, err = process.communicate(json.dumps(asdict(request)).encode(), timeout=limits.time_limit + STARTUP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise QueryStopped(_stopped(limits), "sql.time_limit") from None
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0 or not out:
        if process.returncode == -signal.SIGXCPU:
            raise QueryStopped(_stopped(limits), "sql.time_limit")
        lines = err.decode("utf-8", "replace").strip().splitlines()
        raise StoreError(f"the query process failed (exit {process.returncode}): {lines[-1] if lines else 'no output'}")
    return _answer(json.loads(out), limits)


def _answer(answer: dict[str, Any], limits: QueryLimits) -> QueryAnswer:
    kind = answer.get("kind")
    if kind is None:
        return QueryAnswer(list(answer["columns"]), list(answer["rows"]), bool(answer["truncated"]))
    message = str(answer["error"])
    if kind == "refused":
        raise QueryRefused(message)
    if kind == "stopped":
        raise QueryStopped(message, "sql.time_limit")
    if kind == "memory":
        raise QueryStopped(message, "sql.memory_limit")
    if kind == "open":
        raise QueryUnavailable(message)
    raise QueryFailed(f"query failed: {message}")


def _stopped(limits: QueryLimits) -> str:
    return f"query stopped after {limits.time_limit:g}s (sql.time_limit)"
