"""Stable story ids: a story has the id of its article fetched first, so a report published earlier but fetched
later joins under it, a merge keeps one id and retires the other as an alias that still resolves, and a replay
(in any order) or a rebuild gives the same ids (storage/clustering.py, storage/story_aliases.py, docs/stories.md).
Embeddings are chosen by hand: what matters is which articles are alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from stackwatch.signals.messages import Article, Embedding, TaggedArticle
from stackwatch.signals.stories import quantize
from stackwatch.storage.dashboard import article_detail
from stackwatch.storage.recovery import stored_history, stored_observations
from stackwatch.storage.schema import MIGRATIONS, current_version
from stackwatch.storage.store import Batch, Store
from stackwatch.storage.story_aliases import resolve

START = datetime(2025, 3, 3, 9, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "s.duckdb") as opened:
        yield opened


def report(article_id: str, title: str, hours: float, *direction: float, fetched: float | None = None) -> TaggedArticle:
    """An article published ``hours`` after START (fetched then, or at ``fetched`` hours), with an embedding
    pointing in ``direction`` (8 dimensions)."""
    published = START + timedelta(hours=hours)
    fetched_at = START + timedelta(hours=hours if fetched is None else fetched)
    article = Article(
        article_id, f"https://{article_id}.test/", title, "", f"outlet-{article_id}", "rss", published, fetched_at
    )
    vector = np.zeros(8, dtype=np.float32)
    vector[: len(direction)] = direction
    return TaggedArticle(article, ("edge",), {"edge": 0.9}, "v1", published, Embedding("test-8d", quantize(vector)))


def stories_of(store: Store) -> dict[str, str]:
    return dict(store.query("SELECT article_id, story_id FROM article_stories").rows)


def aliases(store: Store) -> dict[str, str]:
    return dict(store.query("SELECT alias, story_id FROM story_aliases").rows)


def snapshot(store: Store) -> list[list[tuple[object, ...]]]:
    return [
        store.query("SELECT * FROM article_stories ORDER BY article_id").rows,
        store.query("SELECT * FROM stories ORDER BY story_id").rows,
        store.query("SELECT * FROM story_aliases ORDER BY alias").rows,
        store.query("SELECT * EXCLUDE (updated_at) FROM indicators ORDER BY ALL").rows,
    ]


# Three events, one direction each. An article joins one story by its embedding, but every story it is a
# syndicated copy of: a copy of one story's headline that reads like another story links both.
CHIPS = report("chips", "Meta buys Google chips", 5, 1.0, fetched=5)
EARLIER = report("earlier", "Meta to buy Google chips, people familiar say", 1, 1.0, fetched=9)
CLOUD = report("cloud", "Meta and Google sign a cloud deal", 3, 0.0, 1.0)
POWER = report("power", "Meta and Google plan a power plant", 2, 0.0, 0.0, 1.0)
BOTH = report("both", CHIPS.article.title, 6, 0.0, 1.0)
ALL = report("all", POWER.article.title, 7, 0.0, 1.0)


def test_a_report_published_earlier_but_fetched_later_joins_the_story_under_its_id(store: Store) -> None:
    store.write(Batch(tagged=[CHIPS]))
    store.write(Batch(tagged=[EARLIER]))  # a feed polled late: published 4 hours before, fetched after
    assert stories_of(store) == {"chips": "chips", "earlier": "chips"}
    # The headline and first-seen time are still the first report's: they describe the story, the id names it.
    assert store.query("SELECT story_id, title, first_seen, articles FROM stories").rows == [
        ("chips", EARLIER.article.title, EARLIER.article.published_at, 2)
    ]
    assert aliases(store) == {}


def test_a_merge_keeps_the_id_of_the_story_fetched_first_and_the_other_resolves_to_it(store: Store) -> None:
    store.write(Batch(tagged=[POWER]))
    store.write(Batch(tagged=[CLOUD]))
    store.write(Batch(tagged=[CHIPS]))
    store.write(Batch(tagged=[BOTH]))  # joins chips (fetched at 5 h) and cloud (fetched at 3 h)
    assert stories_of(store) == {"power": "power", "cloud": "cloud", "chips": "cloud", "both": "cloud"}
    assert aliases(store) == {"chips": "cloud"}
    assert store.query("SELECT story_id, title, articles FROM stories ORDER BY 1").rows == [
        ("cloud", CLOUD.article.title, 3),
        ("power", POWER.article.title, 1),
    ]
    connection = store.connection
    assert resolve(connection, "chips") == "cloud"
    assert resolve(connection, "cloud") == "cloud"
    assert resolve(connection, "nothing") is None
    # A link to the retired story (an article page named by the story id) shows the story it was merged into.
    page = article_detail(connection, "chips")
    assert page is not None
    assert page.story is not None
    assert (page.story.story_id, page.story.articles) == ("cloud", 3)

    store.write(Batch(tagged=[ALL]))  # joins cloud and power (fetched at 2 h): both retired ids name power
    assert set(stories_of(store).values()) == {"power"}
    assert aliases(store) == {"chips": "power", "cloud": "power"}
    assert resolve(connection, "chips") == "power"


def test_the_rules_hear_of_a_merge_from_the_write_that_made_it(store: Store) -> None:
    """The write that merges stories reports their articles to the rules under the survivor, naming the retired
    id, so a story rule that followed (and fired for) the retired story carries on under the survivor."""
    for item in (POWER, CLOUD, CHIPS):
        store.write(Batch(tagged=[item]))
    changed = store.write(Batch(tagged=[BOTH]))
    observed = {
        item.article_id: (item.story, item.former_stories) for item in stored_observations(store.connection, changed)
    }
    assert observed == {"chips": ("cloud", ("chips",)), "both": ("cloud", ("chips",))}
    # Rules replayed from the store at a restart read today's stories, where nothing is left to merge.
    assert {item.observation.former_stories for item in stored_history(store.connection, START)} == {()}


def test_a_replay_of_the_same_records_changes_nothing(store: Store) -> None:
    for item in (POWER, CLOUD, CHIPS, EARLIER, BOTH):
        store.write(Batch(tagged=[item]))
    written = snapshot(store)
    for item in (POWER, CLOUD, CHIPS, EARLIER, BOTH):
        store.write(Batch(tagged=[item]))
    store.write(Batch(tagged=[POWER, CLOUD, CHIPS, EARLIER, BOTH]))
    assert snapshot(store) == written


def test_a_rebuild_keeps_every_story_id(store: Store) -> None:
    for item in (POWER, CLOUD, CHIPS, EARLIER, BOTH, ALL):
        store.write(Batch(tagged=[item]))
    ids = [stories_of(store), aliases(store), store.query("SELECT * FROM stories ORDER BY story_id").rows]
    store.rebuild()
    assert [stories_of(store), aliases(store), store.query("SELECT * FROM stories ORDER BY story_id").rows] == ids
    store.close()
    with Store.open(store.path) as reopened:
        assert stories_of(reopened) == ids[0]


def test_records_replayed_into_an_empty_store_in_any_order_get_the_ids_the_stream_gave(tmp_path: Path) -> None:
    arrivals = [POWER, CLOUD, CHIPS, EARLIER, BOTH]
    with Store.open(tmp_path / "stream.duckdb") as streamed:
        for item in arrivals:
            streamed.write(Batch(tagged=[item]))
        expected = [stories_of(streamed), aliases(streamed)]
    assert expected[0] == {"power": "power", "cloud": "cloud", "chips": "cloud", "earlier": "cloud", "both": "cloud"}
    with Store.open(tmp_path / "at-once.duckdb") as replayed:
        replayed.write(Batch(tagged=list(reversed(arrivals))))
        assert stories_of(replayed) == expected[0]
        assert aliases(replayed) == {}  # written at once, the two stories were never apart
    with Store.open(tmp_path / "reversed.duckdb") as replayed:
        for item in reversed(arrivals):
            replayed.write(Batch(tagged=[item]))
        assert stories_of(replayed) == expected[0]


def test_a_report_fetched_earlier_but_stored_later_gives_the_story_its_id(store: Store) -> None:
    """The id follows the sources' order, not the store's: a record held up between its source and the store
    (a replay, a backlog) takes the id it would have had, and the id it replaces resolves to it."""
    store.write(Batch(tagged=[EARLIER]))
    store.write(Batch(tagged=[CHIPS]))
    assert stories_of(store) == {"chips": "chips", "earlier": "chips"}
    assert aliases(store) == {"earlier": "chips"}
    assert resolve(store.connection, "earlier") == "chips"


def test_a_store_from_before_renames_its_stories_once_and_keeps_the_former_ids_as_aliases(tmp_path: Path) -> None:
    """Schema 12: stories named by their earliest article take the id of their article fetched first."""
    with Store.open(tmp_path / "current.duckdb") as current:
        for item in (POWER, CLOUD, CHIPS, EARLIER):
            current.write(Batch(tagged=[item]))
        expected = stories_of(current)
    path = tmp_path / "v11.duckdb"
    with duckdb.connect(str(path)) as old:  # the same rows as schema 11 left them, named by the earliest article
        current_version(old)
        for number, script in enumerate(MIGRATIONS[:11], start=1):
            old.execute(script)
            old.execute("INSERT INTO schema_version VALUES (?, now())", [number])
        old.execute(f"ATTACH '{tmp_path / 'current.duckdb'}' AS current (READ_ONLY)")
        for table in (
            "articles",
            "article_dynamics",
            "article_entities",
            "article_stories",
            "stories",
            "article_embeddings",
        ):
            old.execute(f"INSERT INTO {table} SELECT * FROM current.{table}")
        old.execute("UPDATE article_stories SET story_id = 'earlier' WHERE story_id = 'chips'")
        old.execute("UPDATE stories SET story_id = 'earlier' WHERE story_id = 'chips'")
    with Store.open(path) as migrated:
        assert expected == {"power": "power", "cloud": "cloud", "chips": "chips", "earlier": "chips"}
        assert stories_of(migrated) == expected
        assert migrated.query("SELECT story_id, articles FROM stories ORDER BY 1").rows == [
            ("chips", 2),
            ("cloud", 1),
            ("power", 1),
        ]
        assert aliases(migrated) == {"earlier": "chips"}
        migrated.write(Batch(tagged=[BOTH]))  # and from then on, as any store
        assert aliases(migrated) == {"earlier": "cloud", "chips": "cloud"}
