"""Retired story ids. When one article joins two stories, the merged story keeps one of their ids
(storage/clustering.py) and the other is retired: ``story_aliases`` maps it to the id it was merged into, so a
link, a digest or an export that named the retired id still finds the story::

    retire(connection, [("tech-1", "wire-1")])  # inside the write that merged them
    resolve(connection, "tech-1")               # "wire-1"
    resolve(connection, "wire-1")               # "wire-1": a story's own id resolves to itself
    resolve(connection, "no-such-story")        # None

An alias always points at a story's current id: when the story it names is merged in turn, the alias is
rewritten to the new survivor, so one lookup is enough.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from stackwatch.storage.scratch import registered

__all__ = ["resolve", "retire"]


def retire(connection: duckdb.DuckDBPyConnection, merges: Sequence[tuple[str, str]]) -> None:
    """Record each (retired id, surviving id) of one write: aliases of a retired id follow it to its survivor, and
    an id that is a story's again (one article re-published out of the story it was merged into) is no alias."""
    if not merges:
        return
    table = pa.table({"alias": [m[0] for m in merges], "story_id": [m[1] for m in merges]})
    with registered(connection, "_retired_stories", table):
        connection.execute(
            "DELETE FROM story_aliases WHERE alias IN (SELECT alias FROM _retired_stories)"
            " OR alias IN (SELECT story_id FROM _retired_stories)"
        )
        connection.execute(
            "UPDATE story_aliases SET story_id = r.story_id FROM _retired_stories r"
            " WHERE story_aliases.story_id = r.alias"
        )
        connection.execute("INSERT INTO story_aliases SELECT alias, story_id, now() FROM _retired_stories")


def resolve(connection: duckdb.DuckDBPyConnection, story_id: str) -> str | None:
    """The current id of the story once or still called ``story_id``; None when no story had that id."""
    found = connection.execute(
        "SELECT story_id, 0 AS alias FROM stories WHERE story_id = $id"
        " UNION ALL SELECT story_id, 1 FROM story_aliases WHERE alias = $id ORDER BY alias LIMIT 1",
        {"id": story_id},
    ).fetchone()
    return str(found[0]) if found else None
