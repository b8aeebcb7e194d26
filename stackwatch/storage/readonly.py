"""The SQL front's second layer: one SELECT-like statement over stackwatch's own tables, nothing else.

The first layer is the engine: queries run on a locked-down DuckDB (see :mod:`stackwatch.storage.sandbox`), so a
query this check lets through still cannot reach a file, a URL or a setting. This check refuses early, with a
reason a person can act on. DuckDB's own parser decides what a query is (no regular expressions over SQL): the
statement must be a single SELECT (which covers WITH, DESCRIBE, SHOW and SUMMARIZE, whose inner query is checked
like any other), every table it reads must be a table or view of the database or a CTE in scope where it is
read, every table function must be on a short list, and no scalar function may touch files, settings or the
environment.

    >>> check_query("SELECT count(*) FROM articles", known_tables={"articles"})
    >>> check_query("COPY articles TO 'x.csv'", known_tables={"articles"})
    Traceback (most recent call last):
    stackwatch.errors.QueryRefused: only SELECT, WITH, DESCRIBE, SHOW and SUMMARIZE are allowed (got COPY)
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from typing import Any

import duckdb

from stackwatch.errors import QueryRefused

__all__ = ["MAX_QUERY_LENGTH", "check_query"]

MAX_QUERY_LENGTH = 20_000
_ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
_SHOW_SPECIALS = frozenset({"tables", "__show_tables_expanded"})  # SHOW TABLES, SHOW ALL TABLES
_PATH_LIKE = re.compile(r"[/\\.:~*?]")
_FORBIDDEN_FUNCTION_PREFIXES = (
    "read_",
    "glob",
    "getenv",
    "getvariable",
    "current_setting",
    "duckdb_",
    "pragma_",
    "parquet_",
    "sniff_",
    "http",
    "iceberg",
    "delta_",
    "sqlite_",
    "postgres_",
    "mysql_",
    "load_",
    "install_",
    "query",
    "system",
    "which_secret",
    "json_execute",
    "checkpoint",
    "force_checkpoint",
    "enable_",
    "disable_",
)


def check_query(sql: str, known_tables: Iterable[str] | None) -> None:
    """Raise :class:`QueryRefused` with the reason unless ``sql`` is a single read-only query.

    ``known_tables=None`` checks everything but the names of the tables read (a first pass before the
    database's catalogue is at hand).
    """
    if len(sql) > MAX_QUERY_LENGTH:
        raise QueryRefused(f"query too long ({len(sql)} characters, at most {MAX_QUERY_LENGTH})")
    if "\x00" in sql:
        raise QueryRefused("query contains a NUL character")
    try:
        statements = _parser().extract_statements(sql)
    except duckdb.Error as error:
        raise QueryRefused(f"not valid SQL: {_first_line(error)}") from None
    if len(statements) != 1:
        raise QueryRefused(f"exactly one statement is allowed (got {len(statements)})")
    kind = statements[0].type.name
    if kind != "SELECT":
        raise QueryRefused(f"only SELECT, WITH, DESCRIBE, SHOW and SUMMARIZE are allowed (got {kind})")
    tables = None if known_tables is None else frozenset(name.lower() for name in known_tables)
    _Check(tables).node(_serialize(sql)["statements"], frozenset())


class _Check:
    """A walk of the parse tree that knows, at each node, which CTE names are in scope there."""

    def __init__(self, tables: frozenset[str] | None) -> None:
        self.tables = tables

    def node(self, node: Any, ctes: frozenset[str]) -> None:
        if isinstance(node, list):
            for item in node:
                self.node(item, ctes)
            return
        if not isinstance(node, dict):
            return
        children = node
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            ctes = self._ctes(cte_map, ctes)  # the CTEs of a query node are in scope in the rest of that node
            children = {key: value for key, value in node.items() if key != "cte_map"}
        if node.get("type") == "RECURSIVE_CTE_NODE":
            ctes = ctes | {str(node.get("cte_name", "")).lower()}  # a recursive CTE reads itself, inside itself
        self._leaf(node, ctes)
        for value in children.values():
            self.node(value, ctes)

    def _ctes(self, cte_map: dict[str, Any], outer: frozenset[str]) -> frozenset[str]:
        """Check each CTE's query with the names defined before it; return the scope of the query's body."""
        scope = set(outer)
        for entry in cte_map.get("map", []):
            if not isinstance(entry, dict) or "key" not in entry:
                raise QueryRefused("not a plain query: a WITH clause that cannot be analysed")
            name = str(entry["key"])
            if _PATH_LIKE.search(name):
                raise QueryRefused(f"CTE name {name!r} looks like a file path")
            self.node(entry.get("value"), frozenset(scope))  # a CTE does not see itself or the ones after it
            scope.add(name.lower())
        return frozenset(scope)

    def _leaf(self, node: dict[str, Any], ctes: frozenset[str]) -> None:
        node_type = node.get("type")
        if node_type == "BASE_TABLE":
            name = str(node.get("table_name", ""))
            schema = node.get("schema_name")
            if node.get("catalog_name") or schema not in ("", "main"):
                raise QueryRefused(f"only tables of this database may be read (got {name!r} in another catalog)")
            if self.tables is not None and name.lower() not in self.tables and (schema or name.lower() not in ctes):
                raise QueryRefused(f"unknown table {name!r} (file paths and other databases are not allowed)")
        elif node_type == "SHOW_REF" and node.get("query") is None:
            name = str(node.get("table_name", "")).strip('"')
            if node.get("catalog_name") or node.get("schema_name") not in ("", "main", None):
                raise QueryRefused(f"only tables of this database may be shown (got {name!r} in another catalog)")
            if self.tables is not None and name.lower() not in self.tables | _SHOW_SPECIALS:
                raise QueryRefused(f"SHOW {name}: only SHOW TABLES and SHOW <table> are allowed")
        elif node_type == "TABLE_FUNCTION":
            name = str(node.get("function", {}).get("function_name", "")).lower()
            if name not in _ALLOWED_TABLE_FUNCTIONS:
                raise QueryRefused(f"table function {name!r} is not allowed")
        elif node.get("class") == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if name.startswith(_FORBIDDEN_FUNCTION_PREFIXES):
                raise QueryRefused(f"function {name!r} is not allowed")


_parsers = threading.local()


def _parser() -> duckdb.DuckDBPyConnection:
    # Opening a DuckDB database costs ~35 ms, parsing a query ~1 ms: keep one empty database per thread.
    connection: duckdb.DuckDBPyConnection | None = getattr(_parsers, "connection", None)
    if connection is None:
        connection = duckdb.connect(
            ":memory:",
            config={
                "threads": 1,  # parsing needs no worker threads (and a process that forks is better without them)
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "lock_configuration": True,
            },
        )
        _parsers.connection = connection
    return connection


def _serialize(sql: str) -> dict[str, Any]:
    row = _parser().execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    tree: dict[str, Any] = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        raise QueryRefused(f"not a plain query: {tree.get('error_message', 'cannot be analysed')}")
    return tree


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
