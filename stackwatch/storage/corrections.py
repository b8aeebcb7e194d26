"""Analysts' corrections of an article's labels: recorded in DuckDB, folded into training, held out for eval.

    correct_labels(store.connection, "a1", add=["capex"], remove=["edge"], by="ana", now=utcnow())
    corrected_texts(store.connection)    # [LabelledText(id="a1", content="...", labels=("capex",))]

A correction keeps the text the model read and the labels it gave, so it outlives its article's retention. On an
article, the newest correction of a dynamic decides it; the dynamics nobody corrected keep the model's label. One
corrected article in five (by a hash of its id, :func:`held_out`) is kept out of training, so ``stackwatch eval
--feedback`` judges a model on corrections it never learnt from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import duckdb

from stackwatch.signals.corpus import LabelledText, combine
from stackwatch.storage.store import as_store_error

__all__ = ["Corrected", "correct_labels", "corrected_texts", "held_out"]

ACTIONS = ("add", "remove")


@dataclass(frozen=True, slots=True)
class Corrected:
    """An article's labels once its corrections are applied, and how many dynamics analysts have decided."""

    article_id: str
    labels: tuple[str, ...]
    model_labels: tuple[str, ...]
    corrected: int


def held_out(article_id: str) -> bool:
    """Whether a corrected article is kept for evaluation instead of training (one in five, fixed by its id)."""
    return int(hashlib.sha256(article_id.encode("utf-8")).hexdigest()[:8], 16) % 5 == 0


def correct_labels(
    connection: duckdb.DuckDBPyConnection,
    article_id: str,
    *,
    add: Collection[str] = (),
    remove: Collection[str] = (),
    by: str = "",
    now: datetime,
) -> Corrected | None:
    """Record that ``article_id`` speaks to the ``add`` dynamics and not to the ``remove`` ones; None when the store
    holds no such article. ValueError when nothing is asked, a dynamic is both added and removed, or a name is not
    one of the dynamics the model scored the article on; StoreError when DuckDB fails."""
    if not add and not remove:
        raise ValueError("name at least one dynamic to add or remove")
    both = sorted(set(add) & set(remove))
    if both:
        raise ValueError(f"{', '.join(both)}: both added and removed")
    with as_store_error("cannot record the label correction"):
        row = connection.execute(
            "SELECT title, coalesce(nullif(summary, ''), body, ''), labels, model_version FROM articles WHERE id = ?",
            [article_id],
        ).fetchone()
        if row is None:
            return None
        title, text, labels, model_version = row
        scored = {
            name
            for (name,) in connection.execute(
                "SELECT dynamic FROM article_dynamics WHERE article_id = ?", [article_id]
            ).fetchall()
        }
        unknown = sorted((set(add) | set(remove)) - scored)
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)}: not a dynamic this article was scored on ({', '.join(sorted(scored))})"
            )
        rows = [
            (article_id, dynamic, action, combine(title, text), list(labels), model_version, by, now)
            for action, dynamics in (("add", sorted(set(add))), ("remove", sorted(set(remove))))
            for dynamic in dynamics
        ]
        connection.executemany("INSERT INTO label_corrections VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return _corrected(connection, [article_id])[0][0]


def corrected_texts(connection: duckdb.DuckDBPyConnection) -> list[LabelledText]:
    """Every corrected article as a labelled text (the model's labels with the corrections applied), by id."""
    return [LabelledText(item.article_id, content, item.labels) for item, content in _corrected(connection, None)]


def _corrected(connection: duckdb.DuckDBPyConnection, ids: list[str] | None) -> list[tuple[Corrected, str]]:
    """Each corrected article (of ``ids``, or all) and the text it was corrected on. The model's labels are the
    article's as stored now, or as they were at its newest correction once the article is gone."""
    with as_store_error("cannot read the label corrections"):
        rows = connection.execute(
            """
            WITH newest AS (
                SELECT article_id, dynamic, arg_max(action, corrected_at) AS action, max(corrected_at) AS at,
                       arg_max(content, corrected_at) AS content, arg_max(model_labels, corrected_at) AS model_labels
                FROM label_corrections WHERE $every OR article_id IN (SELECT unnest($ids))
                GROUP BY article_id, dynamic
            )
            SELECT n.article_id, arg_max(n.content, n.at),
                   coalesce(any_value(a.labels), arg_max(n.model_labels, n.at)),
                   list(n.dynamic) FILTER (n.action = 'add'), list(n.dynamic) FILTER (n.action = 'remove'), count(*)
            FROM newest n LEFT JOIN articles a ON a.id = n.article_id
            GROUP BY n.article_id ORDER BY n.article_id
            """,
            {"every": ids is None, "ids": ids or []},
        ).fetchall()
    found = []
    for article_id, content, model_labels, added, removed, decided in rows:
        labels = (set(model_labels) | set(added or ())) - set(removed or ())
        found.append((Corrected(article_id, tuple(sorted(labels)), tuple(model_labels), decided), content))
    return found
