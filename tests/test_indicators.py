"""Indicators on real DuckDB files: exact after late articles, replays, crashes and rebuilds."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stackwatch.errors import StoreError
from stackwatch.pipeline.cli.main import cli
from stackwatch.signals.baselines import BaselineParams, baselines
from stackwatch.signals.composite import CompositeIndex
from stackwatch.signals.entities import Entity, Gazetteer
from stackwatch.signals.indicators import MEASURES, ArticleFacts, measures
from stackwatch.signals.messages import Article, TaggedArticle
from stackwatch.signals.stories import components, novelty, simhash
from stackwatch.storage.derive import Derivation
from stackwatch.storage.maintenance import apply_retention, export_parquet, snapshot
from stackwatch.storage.store import Batch, Store

START = datetime(2026, 5, 1, tzinfo=UTC)
DYNAMICS = ("decoupling", "edge", "capex", "exclusivity")
SOURCES = ("wire", "blog", "paper", "forum")
HEADLINES = [
    "Meta signs deal to rent Google TPUs, cutting reliance on Nvidia GPUs",
    "AWS says Trainium 3 will power Anthropic's next Claude models",
    "CoreWeave raises debt to buy Blackwell racks for OpenAI",
    "Akamai launches inference cloud at the edge with Nvidia",
    "DeepSeek model trained on AMD Instinct accelerators",
    "Oracle books OCI capacity for SoftBank's Stargate sites",
    "Pentagon picks Microsoft Azure for classified AI workloads",
    "Broadcom wins custom accelerator order from a hyperscaler",
]
COMPOSITE = CompositeIndex("moat_pressure", {"decoupling": 1.0, "edge": 1.0, "exclusivity": -1.0, "capex": -1.0})


def make_articles(count: int, seed: int = 7) -> list[TaggedArticle]:
    """Articles over three days, some syndicated copies of one headline, out of order."""
    rng = random.Random(seed)
    wire_times = {headline: START + timedelta(hours=rng.randrange(0, 60)) for headline in HEADLINES}
    items = []
    for number in range(count):
        headline = rng.choice(HEADLINES)
        syndicated = rng.random() < 0.4
        title = headline if syndicated else f"{headline}: analysts weigh item {number} of the week"
        if syndicated:  # copies of a wire story follow it within hours
            published = wire_times[headline] + timedelta(minutes=rng.randrange(0, 8 * 60))
        else:
            published = START + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
        labels = tuple(sorted(rng.sample(DYNAMICS, rng.randrange(0, 3))))
        article = Article(
            id=f"a{number:05d}",
            url=f"https://x.test/{number}",
            title=title,
            summary="" if syndicated else f"summary of item {number} with its own details",
            source=rng.choice(SOURCES),
            connector="rss",
            published_at=published,
            fetched_at=published,
        )
        scores = {dynamic: round(rng.random(), 3) for dynamic in DYNAMICS}
        items.append(TaggedArticle(article, labels, scores, "v1", START))
    rng.shuffle(items)
    return items


def derivation() -> Derivation:
    """Keeps measures by increments whatever the days hold (the default recounts days of few articles)."""
    return Derivation(Gazetteer(), (COMPOSITE,), BaselineParams(), increments_above=0)


def write_in_batches(store: Store, articles: list[TaggedArticle], size: int) -> None:
    for start in range(0, len(articles), size):
        store.write(Batch(tagged=articles[start : start + size]))


def indicator_table(store: Store) -> list[tuple[Any, ...]]:
    return store.query(
        "SELECT indicator, dynamic, entity, source, bucket_width, bucket_start, round(value, 9) FROM indicators"
        " ORDER BY ALL"
    ).rows


def facts(store: Store) -> list[ArticleFacts]:
    rows = store.query(
        """
        SELECT a.id, a.source, a.published_at,
               (SELECT map_from_entries(list((d.dynamic, d.score))) FROM article_dynamics d
                WHERE d.article_id = a.id AND d.label),
               (SELECT list(e.entity) FROM article_entities e WHERE e.article_id = a.id),
               s.story_id, s.novelty
        FROM articles a JOIN article_stories s ON s.article_id = a.id
        """
    ).rows
    return [
        ArticleFacts(row[0], row[1], row[2], dict(row[3] or {}), frozenset(row[4] or []), row[5], row[6])
        for row in rows
    ]


@pytest.fixture
def articles() -> list[TaggedArticle]:
    return make_articles(200)


def test_the_stored_measures_equal_the_reference_definition(tmp_path: Path, articles: list[TaggedArticle]) -> None:
    with Store.open(tmp_path / "s.duckdb", derivation=derivation()) as store:
        write_in_batches(store, articles, 37)  # late and out-of-order articles in every batch
        expected = measures(facts(store))
        stored = {
            (row[0], row[1], row[2], row[3], row[4], row[5]): row[6]
            for row in indicator_table(store)
            if row[0] in MEASURES
        }
    assert stored.keys() == expected.keys()
    assert all(math.isclose(stored[key], expected[key], abs_tol=1e-8) for key in expected)


def test_replaying_in_another_order_gives_the_identical_indicator_table(
    tmp_path: Path, articles: list[TaggedArticle]
) -> None:
    with Store.open(tmp_path / "a.duckdb", derivation=derivation()) as first:
        write_in_batches(first, articles, 50)
        once = indicator_table(first)
        write_in_batches(first, articles, 50)  # a replay of the whole topic
        assert indicator_table(first) == once
        stories = first.query("SELECT article_id, story_id FROM article_stories ORDER BY 1").rows
    with Store.open(tmp_path / "b.duckdb", derivation=derivation()) as second:
        write_in_batches(second, list(reversed(articles)), 40)
        assert indicator_table(second) == once
        assert second.query("SELECT article_id, story_id FROM article_stories ORDER BY 1").rows == stories


def test_rebuild_equals_the_streamed_result(tmp_path: Path, articles: list[TaggedArticle]) -> None:
    with Store.open(tmp_path / "s.duckdb", derivation=derivation()) as store:
        write_in_batches(store, articles, 25)
        streamed = indicator_table(store)
        seen: list[tuple[int, int]] = []
        store.rebuild(lambda done, total: seen.append((done, total)))
        assert indicator_table(store) == streamed
        assert seen[-1][0] == seen[-1][1]
        indicators = {row[0] for row in streamed}
    assert indicators >= {*MEASURES, "ewma_mean", "ewma_dev", "zscore", "momentum", "composite"}


def test_rewritten_articles_move_every_measure_they_counted_in(tmp_path: Path, articles: list[TaggedArticle]) -> None:
    """Measures are kept by increments: an article re-sent with another source, other labels and scores, another
    text (entities, story) and another day leaves every count and sum it was in and joins its new ones."""
    rng = random.Random(3)
    rewritten = []
    for item in rng.sample(articles, 40):
        article = dataclasses.replace(
            item.article,
            source=rng.choice(SOURCES),
            title=rng.choice(HEADLINES),  # joins a wire story, or leaves one
            summary="",
            published_at=item.article.published_at + timedelta(hours=rng.choice((-30, -2, 0, 5, 49))),
        )
        labels = tuple(sorted(rng.sample(DYNAMICS, rng.randrange(0, 3))))
        rewritten.append(TaggedArticle(article, labels, {d: round(rng.random(), 3) for d in DYNAMICS}, "v2", START))
    with Store.open(tmp_path / "s.duckdb", derivation=derivation()) as store:
        write_in_batches(store, articles, 50)
        write_in_batches(store, rewritten, 15)
        write_in_batches(store, rewritten[:10], 10)  # a replay changes nothing
        streamed = indicator_table(store)
    with Store.open(tmp_path / "r.duckdb", derivation=Derivation(Gazetteer(), (COMPOSITE,))) as recounted:
        for batches in ((articles, 50), (rewritten, 15)):
            write_in_batches(recounted, *batches)
        assert indicator_table(recounted) == streamed  # the recount of small days gives the same rows
    with Store.open(tmp_path / "s.duckdb", derivation=derivation()) as store:
        expected = measures(facts(store))
        store.rebuild()
        assert indicator_table(store) == streamed
    stored = {row[:6]: row[6] for row in streamed if row[0] in MEASURES}
    assert stored.keys() == expected.keys()
    assert all(math.isclose(stored[key], expected[key], abs_tol=1e-8) for key in expected)


def state_table(store: Store) -> list[tuple[Any, ...]]:
    return store.query("SELECT * FROM baseline_state ORDER BY ALL").rows


def test_baselines_resumed_at_the_live_edge_equal_the_series_computed_whole(tmp_path: Path) -> None:
    """Each write resumes the baselines from the state stored for the bucket before its earliest one: a stream in
    time order, with quiet hours between a dynamic's bursts and an article replaced so that a series ends sooner,
    leaves the same signals and state as a rebuild that computes every series from its first bucket."""
    in_order = sorted(make_articles(240, seed=11), key=lambda item: item.article.published_at)
    sparse = [item for number, item in enumerate(in_order) if "edge" not in item.labels or number % 9 == 0]
    with Store.open(tmp_path / "s.duckdb", derivation=derivation()) as store:
        write_in_batches(store, sparse, 12)
        last = sparse[-1]
        earlier = dataclasses.replace(last.article, published_at=START + timedelta(hours=1))
        store.write(Batch(tagged=[TaggedArticle(earlier, last.labels, last.scores, "v1", START)]))
        streamed, states = indicator_table(store), state_table(store)
        store.rebuild()
        assert indicator_table(store) == streamed
        assert state_table(store) == states
    hours = {row[5] for row in streamed if row[0] == "zscore" and row[1] == "edge" and row[4] == "1h"}
    assert len(hours) == (max(hours) - min(hours)) / timedelta(hours=1) + 1  # dense through the quiet hours


def test_a_store_from_before_the_baselines_state_gets_its_derived_rows_rebuilt_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    articles = make_articles(120, seed=5)
    with Store.open(path, derivation=derivation()) as store:
        write_in_batches(store, articles, 30)
        streamed, states = indicator_table(store), state_table(store)
        # as migrations 6 and 7 leave a store from before them: no baseline state, and a rebuild pending
        store.connection.execute("DELETE FROM baseline_state")
        store.connection.execute("INSERT INTO pending_rebuild VALUES ('schema 7')")
        # schema 6 and before summed scores as doubles, not whole nanounits; a value off shows the rebuild ran
        store.connection.execute("UPDATE indicators SET value = value + 1e-6 WHERE indicator = 'score_sum'")
    with Store.open(path, derivation=derivation()) as reopened:
        assert state_table(reopened) == states
        assert indicator_table(reopened) == streamed
        assert reopened.query("SELECT count(*) FROM pending_rebuild").rows == [(0,)]
        later = make_articles(40, seed=6)
        write_in_batches(reopened, later, 20)
        resumed = indicator_table(reopened)
        reopened.rebuild()
        assert indicator_table(reopened) == resumed


def test_a_caller_that_rebuilds_next_opens_without_the_pending_rebuild_and_its_rebuild_clears_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path, derivation=derivation()) as store:
        write_in_batches(store, make_articles(60, seed=7), 30)
        streamed = indicator_table(store)
        store.connection.execute("INSERT INTO pending_rebuild VALUES ('a migration')")
        store.connection.execute("UPDATE indicators SET value = value + 1 WHERE indicator = 'article_count'")
    with Store.open(path, derivation=derivation(), rebuild_pending=False) as reopened:  # as `stackwatch rebuild`
        assert reopened.query("SELECT reason FROM pending_rebuild").rows == [("a migration",)]
        assert indicator_table(reopened) != streamed  # not rebuilt on open
        reopened.rebuild()
        assert indicator_table(reopened) == streamed
        assert reopened.query("SELECT count(*) FROM pending_rebuild").rows == [(0,)]


def test_a_syndicated_wire_story_is_one_story_with_forty_articles(tmp_path: Path) -> None:
    outlets = [f"outlet{n:02d}" for n in range(40)]
    title = "Nvidia unveils Rubin GPUs at GTC, promising twice the performance of Blackwell"
    copies = [
        TaggedArticle(
            Article(
                f"copy{n}",
                f"https://{o}.test/x",
                title + (f" | {o}" if n % 3 else ""),
                "",
                o,
                "rss",
                START + timedelta(minutes=n * 7),
                START,
            ),
            ("edge",),
            {"edge": 0.9},
            "v1",
        )
        for n, o in enumerate(outlets)
    ]
    other = TaggedArticle(
        Article("other", "https://y.test", "Local bakery wins award for sourdough", "", "wire", "rss", START, START),
        (),
        {},
        "v1",
    )
    with Store.open(tmp_path / "s.duckdb") as store:
        write_in_batches(store, [*reversed(copies), other], 9)
        assert store.query("SELECT story_id, articles, sources FROM stories ORDER BY articles DESC").rows == [
            ("copy0", 40, 40),
            ("other", 1, 1),
        ]
        counts = store.query(
            "SELECT indicator, value FROM indicators WHERE dynamic = 'edge' AND entity = '*' AND source = '*'"
            " AND bucket_width = '1d' AND indicator IN ('article_count', 'story_count', 'source_count') ORDER BY 1"
        ).rows
        assert counts == [("article_count", 40.0), ("source_count", 40.0), ("story_count", 1.0)]
        first = store.query("SELECT novelty FROM article_stories WHERE article_id = 'copy0'").rows
        assert first == [(1.0,)]
        # Each batch brought earlier copies, so members already stored changed novelty: their buckets too.
        streamed = indicator_table(store)
        store.rebuild()
        assert indicator_table(store) == streamed


def test_a_failing_batch_is_rolled_back_whole(tmp_path: Path, articles: list[TaggedArticle]) -> None:
    class Failing(Derivation):
        def apply(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("disk full, say")

    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        write_in_batches(store, articles[:100], 50)
        before = indicator_table(store)
    with Store.open(path, derivation=Failing()) as failing, pytest.raises(RuntimeError):
        failing.write(Batch(tagged=articles[100:150]))
    with Store.open(path) as store:
        assert store.count("articles") == 100
        assert store.count("article_stories") == 100
        assert indicator_table(store) == before


WRITER = """
import sys
from tests.test_indicators import make_articles, write_in_batches
from stackwatch.storage.store import Store
with Store.open(sys.argv[1]) as store:
    articles = make_articles(600)
    print("ready", flush=True)
    write_in_batches(store, articles, 30)
"""


@pytest.mark.integration
def test_killed_mid_write_then_restarted_gives_exact_counts(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not path.with_suffix(".duckdb.wal").exists()) and writer.poll() is None:
        time.sleep(0.01)
    time.sleep(0.5)  # somewhere in the middle of the batches
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    writer.stdout.close()
    articles = make_articles(600)
    with Store.open(path) as store:
        partial = store.count("articles")
        assert partial % 30 == 0  # whole batches only: a batch lands completely or not at all
        assert partial < 600, "the writer finished before it was killed"
        write_in_batches(store, articles, 150)  # the restart replays everything since the last commit
        assert store.count("articles") == 600
        restarted = indicator_table(store)
    with Store.open(tmp_path / "clean.duckdb") as clean:
        write_in_batches(clean, articles, 200)
        assert indicator_table(clean) == restarted


def test_gazetteer_is_case_aware() -> None:
    gazetteer = Gazetteer()
    tpus = gazetteer.find("Meta rents Google TPUs; the meta-narrative of tpu talk")
    assert tpus == {"Meta": 1, "Google": 2, "TPU": 1}  # a chip counts for its maker too
    assert gazetteer.find("AWS Trainium and Amazon Bedrock") == {"Amazon": 4, "Trainium": 1}
    assert gazetteer.find("The dod said nothing; the DoD did") == {"Pentagon": 1}
    custom = Gazetteer([Entity("Cerebras", ("cerebras",), ("WSE-3",))])
    assert custom.find("CEREBRAS ships WSE-3, not wse-3") == {"Cerebras": 2}


def test_baselines_flag_a_spike_and_momentum_follows_the_trend() -> None:
    flat = baselines([5.0] * 30 + [30.0])
    assert flat[-1].zscore > 10
    assert abs(flat[-2].zscore) < 1e-9
    rising = baselines([float(n) for n in range(40)])
    assert rising[-1].momentum > 0
    assert baselines([float(40 - n) for n in range(40)])[-1].momentum < 0


def test_stories_and_novelty_helpers() -> None:
    groups = components(["a", "b", "c", "d"], [("a", "b"), ("c", "b")])
    assert sorted(map(sorted, groups)) == [["a", "b", "c"], ["d"]]
    scores = novelty([("x", START), ("y", START + timedelta(hours=1)), ("z", START + timedelta(hours=30))])
    assert scores == {"x": 1.0, "y": 0.5, "z": 1.0}
    assert simhash("") == 0


def test_snapshot_export_and_retention(tmp_path: Path, articles: list[TaggedArticle]) -> None:
    old = [
        TaggedArticle(
            Article(
                f"old{n}",
                "https://o.test",
                f"old story {n}",
                "s",
                "wire",
                "rss",
                START - timedelta(days=400),
                START,
                body="a long body",
            ),
            ("edge",),
            {"edge": 1.0},
            "v1",
        )
        for n in range(3)
    ]
    with Store.open(tmp_path / "s.duckdb") as store:
        write_in_batches(store, [*articles[:50], *old], 100)
        copy = snapshot(store, tmp_path / "snap.duckdb")
        with Store.open(copy, read_only=True) as reader:
            assert reader.count("articles") == 53
            assert reader.query("SELECT count(*) FROM daily_dynamic_volume").rows[0][0] > 0
        counts = export_parquet(store, tmp_path / "export")
        assert counts["articles"] == 53
        assert (tmp_path / "export" / "articles" / "day=2025-03-27").is_dir()
        report = apply_retention(store, body_days=90, dead_letter_days=30, now=START)
        assert report.bodies_dropped == 3
        assert report.row_counts["articles"] == 53
        assert report.file_bytes > 0
        assert store.query("SELECT count(*) FROM articles WHERE body IS NOT NULL").rows == [(0,)]


def test_sql_command_reads_the_file_when_no_service_answers(tmp_path: Path, articles: list[TaggedArticle]) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        write_in_batches(store, articles[:20], 20)
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"storage": {"path": str(path)}, "web": {"host": "127.0.0.1", "port": 9}}))
    runner = CliRunner()
    result = runner.invoke(cli, ["sql", "-c", str(config), "SELECT count(*) AS n FROM articles", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"n": 20}]
    refused = runner.invoke(cli, ["sql", "-c", str(config), "COPY articles TO '/tmp/x.csv'"])
    assert refused.exit_code != 0
    assert "refused" in refused.output
    rebuilt = runner.invoke(cli, ["rebuild", "-c", str(config)])
    assert rebuilt.exit_code == 0, rebuilt.output
    with pytest.raises(StoreError):
        Store.open(tmp_path / "missing" / "nope.duckdb", read_only=True)
