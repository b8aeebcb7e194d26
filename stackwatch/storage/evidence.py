"""Alert evidence: the articles behind an alert and the SQL that reproduces its value, stored with the alert.
Each article carries the explanation of its label for the alert's dynamic when the store has one (the sentence
that drove it and its share of the logit: :mod:`stackwatch.storage.explanations`).

write_alert_details(store.connection, alerts)     # in the sink's write transaction
evidence_for(store.connection, alert)             # {"articles": [...], "sql": "...", ...}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import duckdb

from stackwatch.signals.conditions import COOCCURRENCE_MEASURES
from stackwatch.signals.indicators import ALL, SIGNALS, WINDOWS
from stackwatch.signals.messages import Alert
from stackwatch.storage.story_aliases import resolve

__all__ = ["TOP_ARTICLES", "alert_labels", "evidence_for", "write_alert_details"]

log = logging.getLogger(__name__)

TOP_ARTICLES = 5


def alert_labels(alert: Alert) -> dict[str, str]:
    """An alert's labels (older rows without details get the basic ones)."""
    base = {"alertname": alert.rule, "severity": alert.severity, "dynamic": alert.dynamic, "window": alert.window}
    return {**base, **alert.labels}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _dated(start: datetime, end: datetime) -> Callable[[str], str]:
    """``within(alias)``: that table's rows published in [start, end), as literals, so each table reads only the
    row groups of those dates (zone maps)."""
    since, until = _literal(start.isoformat()), _literal(end.isoformat())
    return lambda alias: f"{alias}.published_at >= TIMESTAMPTZ {since} AND {alias}.published_at < TIMESTAMPTZ {until}"


def evidence_for(connection: duckdb.DuckDBPyConnection, alert: Alert) -> dict[str, Any]:
    """The top contributing articles, the values that tripped the rule, SQL that counts the bucket's articles in
    the rule's scope, and SQL that recomputes the judged value (:func:`_value_sql`)."""
    if "story" in alert.labels:
        return _story_evidence(connection, alert, alert.labels["story"])
    dynamics = [name for name in alert.labels.get("dynamics", alert.dynamic).split(",") if name]
    within = _dated(alert.bucket_start, alert.bucket_start + WINDOWS.get(alert.window, timedelta(hours=1)))

    scope = _entity_filter(alert, within("e"))
    if "source" in alert.labels:
        scope += f" AND a.source = {_literal(alert.labels['source'])}"
    if alert.kind == "watch" and "article" in alert.labels:  # a watch rule's alert is about one article
        scope += f" AND a.id = {_literal(alert.labels['article'])}"
    if dynamics == [ALL]:  # all articles: no dynamic to join
        joined, where = "FROM articles a", f"{within('a')}{scope}"
        unscored = "NULL::VARCHAR AS dynamic, NULL::DOUBLE AS score"
        top = f"SELECT a.title, a.url, a.source, a.published_at, {unscored}, a.id {joined} WHERE {where}"
        order = "a.published_at DESC, a.id"
        sql = f"SELECT count(DISTINCT a.id) AS article_count {joined} WHERE {where}"
    else:
        joined = "FROM articles a JOIN article_dynamics d ON d.article_id = a.id"
        where = (
            f"d.label AND d.dynamic IN ({', '.join(_literal(name) for name in dynamics)})"
            f" AND {within('a')} AND {within('d')}{scope}"
        )
        top = f"SELECT a.title, a.url, a.source, a.published_at, d.dynamic, d.score, a.id {joined} WHERE {where}"
        order = "d.score DESC, a.published_at DESC, a.id"
        sql = f"SELECT d.dynamic, count(DISTINCT a.id) AS article_count {joined} WHERE {where} GROUP BY d.dynamic"
    explained = (
        f"SELECT t.*, x.sentence, x.score FROM ({top} ORDER BY {order} LIMIT ?) t"  # noqa: S608
        f" LEFT JOIN article_explanations x ON x.article_id = t.id AND x.dynamic = t.dynamic AND {within('x')}"
        " ORDER BY t.score DESC NULLS LAST, t.published_at DESC, t.id"
    )
    rows = connection.execute(explained, [TOP_ARTICLES]).fetchall()
    articles = []
    for row in rows:
        article = {
            "id": row[6],
            "title": row[0],
            "url": row[1],
            "source": row[2],
            "published_at": row[3].isoformat(),
            "scores": {} if row[4] is None else {row[4]: round(float(row[5]), 4)},
        }
        if row[7] is not None:
            article["explanation"] = {"sentence": row[7], "score": float(row[8])}
        articles.append(article)
    versions = _model_versions(connection, joined, where)
    return {
        "articles": articles,
        "values": dict(alert.values),
        "threshold": alert.threshold,
        "sql": sql,
        "value_sql": _value_sql(connection, alert, joined, where, within),
        "model_versions": versions,
    }


_MEASURE_SQL = {
    "article_count": "count(DISTINCT a.id)",
    "source_count": "count(DISTINCT a.source)",
    "story_count": "count(DISTINCT s.story_id)",
    "novelty": "sum(s.novelty)",
    "score_sum": "sum(d.score)",
}
"""Each measure over the scope's rows of a bucket, as the store defines it (``s``: the articles' stories)."""


def _value_sql(
    connection: duckdb.DuckDBPyConnection, alert: Alert, joined: str, where: str, within: Callable[[str], str]
) -> str | None:
    """SQL whose one value is the one the rule judged, from the articles stored before the alert was (the rule
    judged them once the store had written them, and wrote the alert after): a measure recounted in the rule's
    scope (a co-occurrence's articles or stories: its articles name its entities), a composite summed over its
    dynamics' measures, a first-seen 1 when no earlier article of the dynamic named the entity in the rule's days,
    a watch rule's 1 for its article (still stored, still of the dynamic); stories and novelty as the store groups
    them now (a later report can regroup them); a signal of a dynamic's measure as the store
    keeps it now. None for what no query gives (a signal of another scope, or of a co-occurrence)."""
    indicator = alert.indicator
    if alert.kind == "cooccurrence":  # what it counts of the articles naming its entities
        indicator = {measure: name for name, measure in COOCCURRENCE_MEASURES.items()}.get(indicator, "article_count")
    row = connection.execute("SELECT stored_at FROM alerts WHERE id = ?", [alert.id]).fetchone()
    known = f" AND a.stored_at <= TIMESTAMPTZ {_literal(row[0].isoformat())}" if row else ""
    if alert.kind == "first_seen":
        return _first_seen_sql(alert, known)
    if alert.kind == "watch":
        return f"SELECT count(DISTINCT a.id)::DOUBLE AS article {joined} WHERE {where}{known}"
    if alert.kind == "composite":
        return _composite_sql(alert, joined, where, within, known)
    if indicator in SIGNALS:
        if alert.kind == "cooccurrence" or any(alert.labels.get(key, ALL) != ALL for key in ("entity", "source")):
            return None
        return (
            f"SELECT value FROM indicators WHERE indicator = {_literal(indicator)}"  # noqa: S608 (literals)
            f" AND dynamic = {_literal(alert.dynamic)} AND entity = '*' AND source = '*'"
            f" AND bucket_width = {_literal(alert.window)}"
            f" AND bucket_start = TIMESTAMPTZ {_literal(alert.bucket_start.isoformat())}"
        )
    measure = _measure_sql(indicator, within, known)
    if measure is None:
        return None
    joined += _stories(within) if "s." in measure else ""
    return f"SELECT {measure} AS {indicator} {joined} WHERE {where}{known}"


def _stories(within: Callable[[str], str]) -> str:
    return f" JOIN article_stories s ON s.article_id = a.id AND {within('s')}"


def _measure_sql(indicator: str, within: Callable[[str], str], known: str) -> str | None:
    """A measure over the scope's rows of a bucket (``a``: articles, ``s``: their stories), or None."""
    if indicator == "share":
        return f"count(DISTINCT a.id) / (SELECT count(*) FROM articles a WHERE {within('a')}{known})"  # noqa: S608
    return _MEASURE_SQL.get(indicator)


def _composite_sql(alert: Alert, joined: str, where: str, within: Callable[[str], str], known: str) -> str | None:
    """``Σ weight × measure(dynamic)`` over the bucket, a dynamic with no article counting 0."""
    inner = alert.indicator.removeprefix("index(").removesuffix(")")
    measure = _measure_sql(inner, within, known)
    pairs = [item.split("=", 1) for item in alert.labels.get("weights", "").split(",") if "=" in item]
    if measure is None or not pairs:
        return None
    joined += _stories(within) if "s." in measure else ""
    weights = ", ".join(f"({_literal(dynamic)}, {float(weight)!r}::DOUBLE)" for dynamic, weight in pairs)
    return (
        f"SELECT sum(w.weight * coalesce(m.value, 0)) AS {inner} FROM (VALUES {weights}) w(dynamic, weight)"  # noqa: S608
        f" LEFT JOIN (SELECT d.dynamic, {measure} AS value {joined} WHERE {where}{known} GROUP BY d.dynamic) m"
        " USING (dynamic)"
    )


def _first_seen_sql(alert: Alert, known: str) -> str | None:
    """1 when no article of the dynamic stored before the alert named the entity in the ``days`` days before the
    alert's day (the stream compares UTC dates), else 0."""
    entity, days = alert.labels.get("entity"), alert.labels.get("days", "")
    if entity is None or not days.isdigit():
        return None
    day = alert.bucket_start
    within = _dated(day - timedelta(days=int(days)), day)
    return (
        "SELECT (count(*) = 0)::DOUBLE AS first_seen FROM articles a"  # noqa: S608 (values go through _literal)
        " JOIN article_dynamics d ON d.article_id = a.id JOIN article_entities e ON e.article_id = a.id"
        f" WHERE d.label AND d.dynamic = {_literal(alert.dynamic)} AND lower(e.entity) = {_literal(entity.casefold())}"
        f" AND {within('a')} AND {within('d')} AND {within('e')}{known}"
    )


def _model_versions(connection: duckdb.DuckDBPyConnection, joined: str, where: str) -> list[str]:
    """The classifier versions that tagged the articles an alert counts."""
    row = connection.execute(
        f"SELECT list(DISTINCT a.model_version ORDER BY a.model_version) {joined} WHERE {where}"
    ).fetchone()
    return list(row[0] or []) if row else []


STORY_SPAN = timedelta(days=7)
"""How far after a story's first day its articles are looked for (reports link within 48 hours of each other)."""


def _story_evidence(connection: duckdb.DuckDBPyConnection, alert: Alert, story: str) -> dict[str, Any]:
    """A story rule's evidence: the story's articles in the rule's scope, oldest first, and SQL that counts its
    outlets and articles. A story merged into another since is read under the id it has now."""
    current = resolve(connection, story) or story
    within = _dated(alert.bucket_start, alert.bucket_start + STORY_SPAN)

    where = f"s.story_id = {_literal(current)} AND {within('s')} AND {within('a')}"
    joined = "FROM article_stories s JOIN articles a ON a.id = s.article_id"
    if alert.dynamic != "*":
        joined += " JOIN article_dynamics d ON d.article_id = a.id"
        where += f" AND d.label AND d.dynamic = {_literal(alert.dynamic)} AND {within('d')}"
    where += _entity_filter(alert, within("e"))
    sql = (
        f"SELECT count(DISTINCT a.source) AS source_count, count(DISTINCT a.id) AS article_count {joined} WHERE {where}"
    )
    rows = connection.execute(
        f"SELECT DISTINCT a.title, a.url, a.source, a.published_at, a.id {joined} WHERE {where}"
        " ORDER BY a.published_at, a.id LIMIT ?",
        [TOP_ARTICLES],
    ).fetchall()
    articles = [
        {"id": row[4], "title": row[0], "url": row[1], "source": row[2], "published_at": row[3].isoformat()}
        for row in rows
    ]
    return {"articles": articles, "values": dict(alert.values), "threshold": alert.threshold, "sql": sql,
            "story": current, "model_versions": _model_versions(connection, joined, where)}  # fmt: skip


def _entity_filter(alert: Alert, window: str) -> str:
    """For alerts about entities (co-occurrence, first-seen), only the articles that name them count as evidence
    (``window``: the bucket's dates on ``e``, the entities)."""
    if "entity" in alert.labels:
        wanted, every = [alert.labels["entity"]], True
    elif "entities" in alert.labels:
        text = alert.labels["entities"]
        every = " | " not in text
        wanted = text.split(" & " if every else " | ")
    else:
        return ""
    folded = sorted({name.casefold() for name in wanted})
    named = (
        "SELECT count(DISTINCT lower(e.entity)) FROM article_entities e"  # noqa: S608 (values go through _literal)
        f" WHERE {window} AND e.article_id = a.id"
        f" AND lower(e.entity) IN ({', '.join(_literal(name) for name in folded)})"
    )
    return f" AND ({named}) = {len(folded)}" if every else f" AND ({named}) > 0"


def write_alert_details(connection: duckdb.DuckDBPyConnection, alerts: Iterable[Alert]) -> None:
    """Record labels and evidence of new alerts (inside the caller's transaction); a recorded alert keeps its own."""
    for alert in alerts:
        connection.execute(
            "INSERT OR IGNORE INTO alert_details (alert_id, status, kind, dedup_key, labels, indicator_values,"
            " evidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                alert.id,
                alert.status,
                alert.kind,
                alert.dedup_key or alert.id,
                json.dumps(alert_labels(alert), sort_keys=True),
                json.dumps(dict(alert.values), sort_keys=True),
                json.dumps(evidence_for(connection, alert)),
            ],
        )
