"""Stories across outlets: articles reporting one event are one story, by the classifier's embeddings, guarded by
the entities they name, kept across restarts; syndicated copies stay folded by SimHash (signals/stories.py,
storage/clustering.py, docs/stories.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from benchmarks.event_pairs import cluster_pairs, load_pairs, scores, tag_pairs
from stackwatch.connectors.demo import demo_records
from stackwatch.pipeline.roles.classifiers import build_classifier
from stackwatch.settings import ClassifierSettings
from stackwatch.signals.classifier import KeywordClassifier
from stackwatch.signals.head import Head
from stackwatch.signals.messages import Article, Embedding, MessageError, TaggedArticle
from stackwatch.signals.stories import EVENT_SIMILARITY, EVENT_WINDOW, entities_agree, event_score, quantize, unit_rows
from stackwatch.signals.taxonomy import Taxonomy
from stackwatch.signals.transformer import TransformerClassifier
from stackwatch.storage.clustering import _entity_index, _may_be_one_event
from stackwatch.storage.derive import Derivation
from stackwatch.storage.store import Batch, Store

START = datetime(2025, 3, 3, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def classifier() -> TransformerClassifier:
    built = build_classifier(ClassifierSettings(), Taxonomy.builtin())
    assert isinstance(built, TransformerClassifier)
    return built


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "s.duckdb") as opened:
        yield opened


def news(article_id: str, title: str, summary: str, source: str, hours: float) -> Article:
    when = START + timedelta(hours=hours)
    return Article(article_id, f"https://{source}.test/{article_id}", title, summary, source, "rss", when, when)


def tagged(classifier: TransformerClassifier, *articles: Article) -> list[TaggedArticle]:
    results = classifier.classify([article.text for article in articles])
    return [
        TaggedArticle(a, r.labels, r.scores, classifier.version, a.published_at, r.embedding)
        for a, r in zip(articles, results, strict=True)
    ]


def by_hand(article: Article, *direction: float, space: str = "test-8d") -> TaggedArticle:
    """An article with an embedding chosen by the test (8 dimensions; cosine is what matters)."""
    vector = np.zeros(8, dtype=np.float32)
    vector[: len(direction)] = direction
    return TaggedArticle(
        article, ("edge",), {"edge": 0.9}, "v1", article.published_at, Embedding(space, quantize(vector))
    )


def story_rows(store: Store) -> list[tuple[object, ...]]:
    return store.query("SELECT story_id, title, first_seen, articles, sources FROM stories ORDER BY story_id").rows


def stories_of(store: Store) -> dict[str, str]:
    return dict(store.query("SELECT article_id, story_id FROM article_stories").rows)


ANTHROPIC = news(
    "wire-1",
    "Anthropic to use up to one million Google TPUs",
    "The Claude developer said the deal brings well over a gigawatt of capacity online next year.",
    "wire",
    0,
)
GOOGLE = news(
    "tech-1",
    "Google lands a giant TPU order from Anthropic",
    "Google Cloud will supply as many as a million of its accelerators to the AI lab, the companies said.",
    "techdaily",
    5,
)
LATER = news(
    "chip-1",
    "Anthropic commits to a million Google TPUs in a gigawatt-scale deal",
    "The AI lab's order is among the largest ever placed for chips not made by Nvidia.",
    "chipbrief",
    12,
)
BAKERY = news("local-1", "Local bakery wins a national award for its sourdough", "", "gazette", 6)


def test_the_labelled_pair_set_is_clustered_with_high_precision_and_recall(
    classifier: TransformerClassifier, tmp_path: Path
) -> None:
    """The store's own clustering over tests/data/event_pairs.jsonl, each pair alone in time. Figures on the
    half not used to choose EVENT_SIMILARITY (python -m benchmarks.event_pairs prints them all)."""
    pairs = load_pairs()
    assert len(pairs) >= 150
    assert {pair.kind for pair in pairs} >= {"different-event-shared-companies", "same-event-other-company-first"}
    story = cluster_pairs(tag_pairs(pairs, classifier), tmp_path)
    predicted = {pair.id: story[pair.a.id] == story[pair.b.id] for pair in pairs}
    test = scores([pair for pair in pairs if pair.split == "test"], predicted)
    assert test.precision >= 0.75, test
    assert test.recall >= 0.85, test
    assert test.f1 >= 0.80, test
    unrelated = [pair for pair in pairs if pair.kind == "different-event"]
    assert not any(predicted[pair.id] for pair in unrelated)


def test_one_event_from_three_outlets_is_one_story_whose_id_stays_as_it_grows(
    classifier: TransformerClassifier, store: Store
) -> None:
    first, second, third, other = tagged(classifier, ANTHROPIC, GOOGLE, LATER, BAKERY)
    store.write(Batch(tagged=[first, other]))
    store.write(Batch(tagged=[second]))
    assert story_rows(store) == [
        ("local-1", BAKERY.title, BAKERY.published_at, 1, 1),
        ("wire-1", ANTHROPIC.title, ANTHROPIC.published_at, 2, 2),
    ]
    store.write(Batch(tagged=[third]))
    assert story_rows(store)[1] == ("wire-1", ANTHROPIC.title, ANTHROPIC.published_at, 3, 3)
    counts = store.query(
        "SELECT indicator, value FROM indicators WHERE dynamic = '*' AND entity = '*' AND source = '*'"
        " AND bucket_width = '1d' AND indicator IN ('article_count', 'story_count') ORDER BY 1"
    ).rows
    assert counts == [("article_count", 4.0), ("story_count", 2.0)]


def test_the_story_embedding_holds_nothing_of_the_heads_dynamics(classifier: TransformerClassifier) -> None:
    """Fine-tuning pulls texts of one dynamic together along the head's directions; stories compare what is left."""
    texts = [
        "Data center construction starts hit a quarterly record",
        "Hyperscaler bond sales this year already exceed all of last year",
    ]
    directions = np.array([dynamic.weights for dynamic in Head.bundled().dynamics], dtype=np.float32)
    raw = classifier.encoder.encode(texts)
    results = classifier.classify(texts)
    events = unit_rows([result.embedding.values for result in results if result.embedding is not None])
    assert np.abs(events @ (directions / np.linalg.norm(directions, axis=1, keepdims=True)).T).max() < 0.02
    assert [result.scores for result in results] == [result.scores for result in classifier.classify_embeddings(raw)]
    assert all(result.embedding is not None and "/events-" in result.embedding.space for result in results)
    raw_units = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert float(events[0] @ events[1]) < float(raw_units[0] @ raw_units[1])  # two capex events, further apart


def test_seventeen_weeks_of_news_about_the_same_companies_do_not_chain_into_one_story(
    classifier: TransformerClassifier, tmp_path: Path
) -> None:
    """The demo's 539 items, written as the sink writes them. Its author grouped them into threads finer than
    events (an 8-K, an analyst note or a forum post about a deal is a thread of its own), so a story may hold a
    few threads of one event; single links across a season of OpenAI, Microsoft and AMD news had chained 22
    articles of 13 threads into one story."""
    items = [json.loads(line) for line in demo_records()]
    articles = [
        news(item["id"], item["title"], item["summary"], item["outlet"], 3000 - item["age_hours"]) for item in items
    ]
    ordered = sorted(tagged(classifier, *articles), key=lambda item: item.article.published_at)
    with Store.open(tmp_path / "demo.duckdb") as store:
        for start in range(0, len(ordered), 20):
            store.write(Batch(tagged=ordered[start : start + 20]))
        grouped = stories_of(store)
    thread = {item["id"]: item["story"] for item in items}
    members: dict[str, set[str]] = {}
    for article, story in grouped.items():
        members.setdefault(story, set()).add(article)
    assert max(len(group) for group in members.values()) <= 8
    assert max(len({thread[article] for article in group}) for group in members.values()) <= 4
    outlet = {article.id: article.source for article in articles}
    assert sum(len({outlet[article] for article in group}) >= 3 for group in members.values()) >= 20  # still joined


def test_a_restart_keeps_the_embeddings_of_the_window(classifier: TransformerClassifier, tmp_path: Path) -> None:
    first, second = tagged(classifier, ANTHROPIC, GOOGLE)
    with Store.open(tmp_path / "s.duckdb") as store:
        store.write(Batch(tagged=[first]))
    with Store.open(tmp_path / "s.duckdb") as store:
        store.write(Batch(tagged=[second]))
        assert stories_of(store) == {"wire-1": "wire-1", "tech-1": "wire-1"}
        assert store.count("article_embeddings") == 2


def test_embeddings_older_than_the_window_before_the_newest_article_are_removed(store: Store) -> None:
    old = by_hand(news("a", "Meta signs a deal", "", "wire", 0), 1.0)
    new = by_hand(news("b", "Meta expands a deal", "", "wire", EVENT_WINDOW.total_seconds() / 3600 + 1), 1.0)
    store.write(Batch(tagged=[old]))
    store.write(Batch(tagged=[new]))
    assert store.query("SELECT article_id FROM article_embeddings").rows == [("b",)]
    # A report arriving this late meets no embedding of its time: it is linked by SimHash only.
    late = by_hand(news("c", "Meta and a partner sign", "", "outlet", 0.5), 1.0)
    store.write(Batch(tagged=[late]))
    assert stories_of(store) == {"a": "a", "b": "b", "c": "c"}


def test_articles_naming_disjoint_companies_are_never_one_event(store: Store) -> None:
    store.write(
        Batch(
            tagged=[
                by_hand(news("m", "Meta signs a multi-gigawatt compute deal", "", "wire", 0), 1.0),
                by_hand(news("o", "Oracle signs a multi-gigawatt compute deal", "", "other", 1), 1.0),
                by_hand(news("x", "A multi-gigawatt compute deal is signed", "", "third", 2), 1.0),
            ]
        )
    )
    # x names no company: it links to both, and so joins them through itself (single link).
    assert set(stories_of(store).values()) == {"m"}
    with Store.open(store.path.with_name("t.duckdb")) as other:
        other.write(
            Batch(
                tagged=[
                    by_hand(news("m", "Meta signs a multi-gigawatt compute deal", "", "wire", 0), 1.0),
                    by_hand(news("o", "Oracle signs a multi-gigawatt compute deal", "", "other", 1), 1.0),
                ]
            )
        )
        assert stories_of(other) == {"m": "m", "o": "o"}


def test_every_pair_left_unscored_is_one_no_score_could_link() -> None:
    """The store scores only the pairs whose cosine and entities can reach EVENT_SIMILARITY (amounts only take
    away); every pair it leaves out would have been turned down, so the links are those of scoring every pair."""
    rng = np.random.default_rng(7)
    vocabulary = [f"entity-{n}" for n in range(6)]

    def entity_sets(count: int) -> list[set[str]]:
        return [
            {str(e) for e in rng.choice(vocabulary, size=int(rng.integers(0, 4)), replace=False)} for _ in range(count)
        ]

    mine, theirs = entity_sets(40), entity_sets(60)
    similar = rng.uniform(-0.1, 0.7, size=(40, 60)).astype(np.float32)
    counts, naming = _entity_index(theirs)
    kept = _may_be_one_event(similar, mine, counts, naming)
    for i, j in np.ndindex(similar.shape):
        agree = entities_agree(mine[i], theirs[j])
        best = event_score(float(similar[i, j]), mine[i], theirs[j], frozenset(), frozenset())
        if agree and best >= EVENT_SIMILARITY:
            assert kept[i, j], (mine[i], theirs[j], best)
        elif kept[i, j]:
            assert agree, (mine[i], theirs[j])
            assert best >= EVENT_SIMILARITY - 1e-5, (mine[i], theirs[j], best)
    assert 0 < kept.sum() < kept.size / 2  # the draw has pairs on both sides of the bound


def test_a_market_reaction_joins_the_closest_earlier_report_naming_all_its_parties(store: Store) -> None:
    """Embeddings far apart (cosines below 0.2): only the market-reaction link can join these."""
    deal = by_hand(news("deal", "OpenAI signs $300 billion compute deal with Oracle", "", "wire", 0), 1.0)
    site = by_hand(news("site", "OpenAI and Oracle pick a Texas site", "", "other", 1), 0.0, 1.0)
    reaction = by_hand(news("react", "Oracle shares soar on OpenAI mega-contract", "", "markets", 5), 0.15, 0.05, 1.0)
    later = by_hand(news("later", "OpenAI and Oracle open an office", "", "fourth", 9), 0.0, 0.0, 0.0, 1.0)
    lone = by_hand(news("lone", "Oracle shares slip after hours", "", "markets", 6), 0.0, 0.0, 0.0, 0.0, 1.0)
    store.write(Batch(tagged=[deal, site, reaction, later, lone]))
    # The reaction names OpenAI and Oracle: of the reports before it naming both, it joins the closer ("deal");
    # "later" came after it, and "lone" names one company, so its cause is unknown.
    assert stories_of(store) == {"deal": "deal", "site": "site", "react": "deal", "later": "later", "lone": "lone"}


def test_embeddings_of_different_encoders_are_never_compared(store: Store) -> None:
    store.write(
        Batch(
            tagged=[
                by_hand(news("a", "Meta signs a deal", "", "wire", 0), 1.0, space="model-a"),
                by_hand(news("b", "Meta reaches an agreement", "", "other", 1), 1.0, space="model-b"),
            ]
        )
    )
    assert stories_of(store) == {"a": "a", "b": "b"}


def test_an_article_like_two_events_joins_the_closer_one_and_does_not_merge_them(store: Store) -> None:
    """An analyst's note on two deals of the same companies reads like both: it joins one story, not a bridge."""
    store.write(Batch(tagged=[by_hand(news("y", "Meta and Google sign a cloud deal", "", "wire", 3), 0.0, 1.0)]))
    store.write(Batch(tagged=[by_hand(news("x", "Meta buys Google chips", "", "other", 1), 1.0, 0.0)]))
    note = by_hand(news("z", "Note: Meta and Google, chips and cloud", "", "analyst", 4), 0.8, 0.6)
    store.write(Batch(tagged=[note]))
    assert stories_of(store) == {"x": "x", "y": "y", "z": "x"}
    store.write(Batch(tagged=[by_hand(news("w", "Note: Google and Meta, cloud and chips", "", "forum", 5), 0.2, 1.0)]))
    assert stories_of(store) == {"x": "x", "y": "y", "z": "x", "w": "y"}


def test_two_stories_joined_by_one_report_keep_the_id_of_the_one_first_seen(store: Store) -> None:
    """A syndicated copy of x's headline that reads like y (its embedding) links both stories."""
    store.write(Batch(tagged=[by_hand(news("y", "Meta and Google sign a cloud deal", "", "wire", 3), 0.0, 1.0)]))
    store.write(Batch(tagged=[by_hand(news("x", "Meta buys Google chips", "", "other", 1), 1.0, 0.0)]))
    assert stories_of(store) == {"x": "x", "y": "y"}
    streamed = store.query("SELECT * EXCLUDE (updated_at) FROM indicators ORDER BY ALL").rows
    store.write(Batch(tagged=[by_hand(news("z", "Meta buys Google chips", "", "third", 4), 0.0, 1.0)]))
    assert stories_of(store) == {"x": "x", "y": "x", "z": "x"}
    assert story_rows(store) == [("x", "Meta buys Google chips", START + timedelta(hours=1), 3, 3)]
    merged = store.query("SELECT * EXCLUDE (updated_at) FROM indicators ORDER BY ALL").rows
    assert merged != streamed
    store.rebuild()
    assert store.query("SELECT * EXCLUDE (updated_at) FROM indicators ORDER BY ALL").rows == merged


def test_without_embeddings_only_syndicated_copies_are_one_story(store: Store) -> None:
    """The keyword backend computes no embedding: stories are SimHash copies only, as before."""
    keyword = KeywordClassifier(Taxonomy.builtin())
    articles = [ANTHROPIC, GOOGLE, news("wire-2", ANTHROPIC.title, ANTHROPIC.summary, "mirror", 2)]
    results = keyword.classify([article.text for article in articles])
    assert all(result.embedding is None for result in results)
    store.write(
        Batch(
            tagged=[
                TaggedArticle(a, r.labels, r.scores, keyword.version) for a, r in zip(articles, results, strict=True)
            ]
        )
    )
    assert stories_of(store) == {"wire-1": "wire-1", "tech-1": "tech-1", "wire-2": "wire-1"}
    assert store.count("article_embeddings") == 0


def test_a_tagged_record_carries_its_embedding_and_one_without_still_parses() -> None:
    plain = TaggedArticle(ANTHROPIC, ("decoupling",), {"decoupling": 0.9}, "v1", START)
    assert "embedding" not in plain.to_dict()
    assert TaggedArticle.from_dict(plain.to_dict()) == plain
    carried = by_hand(ANTHROPIC, 0.5, -0.25)
    data = carried.to_dict()
    assert data["embedding"]["space"] == "test-8d"
    assert TaggedArticle.from_dict(data) == carried
    data["embedding"] = {"space": "test-8d", "int8": "not base64!"}
    with pytest.raises(MessageError, match=r"embedding\.int8: not base64"):
        TaggedArticle.from_dict(data)


def test_stories_joined_by_embeddings_keep_increments_equal_to_recounts_and_to_rebuild(tmp_path: Path) -> None:
    """Reports arriving out of order move articles between stories (late earlier reports, merges); the increments
    that follow those moves give what a recount of the days and a rebuild give."""
    rng = np.random.default_rng(21)
    events = rng.normal(size=(6, 8))
    companies = ["Meta", "Google", "Oracle", "Microsoft", "Amazon", "CoreWeave"]
    stream = []
    for n in range(90):
        event = int(rng.integers(6))
        direction = events[event] + rng.normal(scale=0.35, size=8)
        named = f"{companies[event]} and {companies[(event + int(rng.integers(2))) % 6]}"
        article = news(f"a{n:02d}", f"{named} report number {n}", "", f"outlet{n % 7}", float(rng.uniform(0, 72)))
        stream.append(by_hand(article, *direction.tolist()))
    order = [stream[index] for index in rng.permutation(len(stream))]
    tables = []
    for name, above in (("increments", 0), ("recount", 10**9)):
        with Store.open(tmp_path / f"{name}.duckdb", derivation=Derivation(increments_above=above)) as store:
            for start in range(0, len(order), 11):
                store.write(Batch(tagged=order[start : start + 11]))
            tables.append(store.query("SELECT * EXCLUDE (updated_at) FROM indicators ORDER BY ALL").rows)
            if name == "increments":
                moved = store.query("SELECT count(DISTINCT story_id) FROM article_stories").rows[0][0]
                assert 1 < moved < 60  # the reports were grouped, and not all into one
                store.rebuild()
                tables.append(store.query("SELECT * EXCLUDE (updated_at) FROM indicators ORDER BY ALL").rows)
    assert tables[0] == tables[1] == tables[2]
