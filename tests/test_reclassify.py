"""``stackwatch reclassify``: stored articles tagged again by the configured model as a new version, the former
version's tags kept in ``tag_history``, and tags (and counts of them) read as they were known at a past time
(storage/tag_history.py, storage/retagging.py, docs/sql.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from stackwatch.pipeline.cli.main import cli
from stackwatch.signals.messages import Article, Explanation, TaggedArticle
from stackwatch.storage.store import Batch, Store

DAY = datetime(2026, 11, 2, 9, tzinfo=UTC)

CAPEX = Article(
    "c1", "https://wire.test/c1", "Hyperscaler raises capex to build new data centers", "", "wire", "rss", DAY, DAY
)
EDGE = Article(
    "e1", "https://wire.test/e1", "On-device inference comes to phones", "", "wire", "rss", DAY + timedelta(hours=1),
    DAY + timedelta(hours=1),
)  # fmt: skip
OLDER = Article("o1", "https://wire.test/o1", "Capex news from last year", "", "wire", "rss", DAY.replace(year=2025),
                DAY.replace(year=2025))  # fmt: skip

AS_OF = """
SELECT article_id, dynamic, model_version FROM tag_history
WHERE label AND valid_from <= $t AND superseded_at > $t
UNION ALL
SELECT d.article_id, d.dynamic, d.model_version FROM article_dynamics d JOIN articles a ON a.id = d.article_id
WHERE d.label AND a.stored_at <= $t
  AND coalesce((SELECT max(superseded_at) FROM tag_history h WHERE h.article_id = d.article_id), a.stored_at) <= $t
ORDER BY 1, 2
"""
"""The tags as the store knew them at ``$t``: the query docs/sql.md gives."""


def first_tags() -> list[TaggedArticle]:
    """An old model's tags: it saw edge everywhere."""
    return [
        TaggedArticle(
            item, ("edge",), {"edge": 0.9}, "old-model", DAY, explanations=(Explanation("edge", item.title, 1.5),)
        )
        for item in (CAPEX, EDGE, OLDER)
    ]


def configured(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "stackwatch.duckdb"
    config = tmp_path / "stackwatch.yaml"
    config.write_text(f"storage: {{path: {path}}}\nclassifier: {{backend: keyword}}\n")
    return path, config


def test_reclassify_retags_from_a_date_and_keeps_the_former_version(tmp_path: Path) -> None:
    path, config = configured(tmp_path)
    with Store.open(path) as store:
        store.write(Batch(tagged=first_tags()))
        (before,) = store.query("SELECT now()").rows[0]
    result = CliRunner().invoke(cli, ["reclassify", "-c", str(config), "--since", "2026-11-01", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "reclassify: 2/2 steps" in result.stderr  # a line per step when stderr is not a terminal
    assert "re-tagged 2 article(s) published since 2026-11-01T00:00:00+00:00 with keyword-1" in result.stdout
    with Store.open(path, read_only=True) as store:
        current = store.query("SELECT id, labels, model_version FROM articles ORDER BY id").rows
        kept = store.query("SELECT article_id, dynamic, model_version FROM tag_history ORDER BY 1").rows
        why = store.query("SELECT article_id, sentence, sentence_score FROM tag_history ORDER BY 1").rows
        then = store.query(AS_OF, {"t": before}).rows
        now = store.query(AS_OF, {"t": datetime.now(UTC)}).rows
        edge_then = store.query(
            "SELECT count(*) FROM tag_history WHERE dynamic = 'edge' AND label AND model_version = 'old-model'"
        ).rows
    assert current == [("c1", ["capex"], "keyword-1"), ("e1", ["edge"], "keyword-1"), ("o1", ["edge"], "old-model")]
    assert kept == [("c1", "edge", "old-model"), ("e1", "edge", "old-model")]  # the year-old one was not re-tagged
    assert why == [("c1", CAPEX.title, 1.5), ("e1", EDGE.title, 1.5)]  # each former label keeps its explanation
    assert then == [("c1", "edge", "old-model"), ("e1", "edge", "old-model"), ("o1", "edge", "old-model")]
    assert now == [("c1", "capex", "keyword-1"), ("e1", "edge", "keyword-1"), ("o1", "edge", "old-model")]
    assert edge_then == [(2,)]  # the old version's series stays countable


def test_each_buckets_numbers_name_the_classifier_versions_behind_them(tmp_path: Path) -> None:
    path, config = configured(tmp_path)
    with Store.open(path) as store:
        store.write(Batch(tagged=first_tags()))
    assert CliRunner().invoke(cli, ["reclassify", "-c", str(config), "--since", "2026-11-01"]).exit_code == 0
    with Store.open(path, read_only=True) as store:
        versions = store.query(
            "SELECT bucket_start::DATE::VARCHAR, dynamic, model_version, articles FROM indicator_versions"
            " WHERE bucket_width = '1d' ORDER BY ALL"
        ).rows
        unmatched = store.query(  # every daily article count is the sum of its versions' articles
            "SELECT * FROM indicators i LEFT JOIN (SELECT bucket_width, bucket_start, dynamic, sum(articles) AS n"
            " FROM indicator_versions GROUP BY ALL) v USING (bucket_width, bucket_start, dynamic)"
            " WHERE i.indicator = 'article_count' AND i.entity = '*' AND i.source = '*'"
            " AND v.n IS DISTINCT FROM i.value"
        ).rows
    assert versions == [
        ("2025-11-02", "*", "old-model", 1),
        ("2025-11-02", "edge", "old-model", 1),
        ("2026-11-02", "*", "keyword-1", 2),
        ("2026-11-02", "capex", "keyword-1", 1),
        ("2026-11-02", "edge", "keyword-1", 1),
    ]
    assert unmatched == []


def test_a_rewrite_by_the_same_version_keeps_no_history(tmp_path: Path) -> None:
    path, config = configured(tmp_path)
    with Store.open(path) as store:
        store.write(Batch(tagged=first_tags()))
        store.write(Batch(tagged=first_tags()))  # a redelivery
        assert store.count("tag_history") == 0
    for _ in range(2):  # a second run re-tags with the same version
        assert CliRunner().invoke(cli, ["reclassify", "-c", str(config), "--since", "2026-11-01"]).exit_code == 0
    with Store.open(path, read_only=True) as store:
        assert store.count("tag_history") == 2


def test_a_date_it_cannot_read_is_refused_with_the_option(tmp_path: Path) -> None:
    _, config = configured(tmp_path)
    result = CliRunner().invoke(cli, ["reclassify", "-c", str(config), "--since", "last tuesday"])
    assert result.exit_code == 2
    assert "--since" in result.output


INDICATORS_AS_OF = """
WITH former AS (
  SELECT indicator, dynamic, entity, source, bucket_width, bucket_start, value FROM indicator_history
  WHERE superseded_at > $t
  QUALIFY row_number() OVER (PARTITION BY indicator, dynamic, entity, source, bucket_width, bucket_start
                             ORDER BY superseded_at) = 1
)
SELECT indicator, dynamic, bucket_start::DATE::VARCHAR AS day, value FROM (
  SELECT * FROM former
  UNION ALL
  SELECT indicator, dynamic, entity, source, bucket_width, bucket_start, value FROM indicators
  WHERE (indicator, dynamic, entity, source, bucket_width, bucket_start) NOT IN (
    SELECT (indicator, dynamic, entity, source, bucket_width, bucket_start) FROM former)
)
WHERE value IS NOT NULL AND bucket_start <= $t AND entity = '*' AND source = '*' AND bucket_width = '1d'
  AND indicator IN ('article_count', 'zscore') AND dynamic <> '*' AND bucket_start >= DATE '2026-11-02'
ORDER BY ALL
"""
"""Indicators as the store held them at ``$t``: docs/sql.md's query, narrowed to what the test reads."""


def test_reclassify_keeps_the_indicator_values_its_tags_changed_so_numbers_read_as_they_were(
    tmp_path: Path,
) -> None:
    path, config = configured(tmp_path)
    with Store.open(path) as store:
        store.write(Batch(tagged=first_tags()))
        (before,) = store.query("SELECT now()").rows[0]
    first = CliRunner().invoke(cli, ["reclassify", "-c", str(config), "--since", "2026-11-01"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, ["reclassify", "-c", str(config), "--since", "2026-11-01"])
    assert "0 indicator value(s) changed or added" in again.stdout  # the same version changes nothing
    with Store.open(path, read_only=True) as store:
        kept = store.query(
            "SELECT indicator, dynamic, bucket_start::DATE::VARCHAR, value, model_versions FROM indicator_history"
            " WHERE entity = '*' AND source = '*' AND bucket_width = '1d'"
            " AND indicator IN ('article_count', 'zscore') ORDER BY ALL"
        ).rows
        oldest = store.query("SELECT min(bucket_start)::DATE::VARCHAR FROM indicator_history").rows
        then = store.query(INDICATORS_AS_OF, {"t": before}).rows
        now = store.query(INDICATORS_AS_OF, {"t": datetime.now(UTC)}).rows
    assert kept == [
        ("article_count", "capex", "2026-11-02", None, []),  # the new model added it: it was not there before
        ("article_count", "edge", "2026-11-02", 2.0, ["old-model"]),
        ("zscore", "capex", "2026-11-02", None, []),
        ("zscore", "edge", "2026-11-02", 2.0, ["old-model"]),
    ]
    assert oldest == [("2026-11-02",)]  # the year-old bucket was neither re-tagged nor kept
    assert then == [  # the old model's count and signal, as known then
        ("article_count", "edge", "2026-11-02", 2.0),
        ("zscore", "edge", "2026-11-02", 2.0),
    ]
    assert [row for row in now if row[0] == "article_count"] == [
        ("article_count", "capex", "2026-11-02", 1.0),
        ("article_count", "edge", "2026-11-02", 1.0),
    ]
