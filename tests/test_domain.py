"""Pure domain logic: ids, buckets, indicator values, rules, messages. No broker, no disk."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stackwatch.signals.ids import article_id, canonical_url
from stackwatch.signals.indicators import bucket_start, count_update, hits_for
from stackwatch.signals.messages import (
    Alert,
    Article,
    DeadLetter,
    IndicatorUpdate,
    MessageError,
    Observation,
    TaggedArticle,
)

NOON = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)


def article(**overrides: object) -> Article:
    fields: dict[str, object] = {
        "id": "a1",
        "url": "https://x.test/1",
        "title": "Meta rents Google TPUs",
        "summary": "",
        "source": "wire",
        "connector": "rss",
        "published_at": NOON,
        "fetched_at": NOON,
    }
    fields.update(overrides)
    return Article(**fields)  # type: ignore[arg-type]


def test_canonical_urls_drop_tracking_fragments_and_case() -> None:
    assert (
        canonical_url("HTTPS://News.Example.COM:443/a?utm_source=x&id=3&fbclid=y#top")
        == "https://news.example.com/a?id=3"
    )
    assert canonical_url("http://x.test") == "http://x.test/"


def test_article_ids_are_stable_and_prefer_the_guid() -> None:
    assert article_id("wire", None, "https://x.test/a?utm_medium=rss") == article_id("other", None, "https://X.test/a")
    assert article_id("wire", "guid-1", "https://x.test/a") != article_id("wire", None, "https://x.test/a")
    with pytest.raises(ValueError, match="guid or a url"):
        article_id("wire", " ", "")


def test_buckets_are_utc_hours_and_days() -> None:
    assert bucket_start(NOON, "1h") == datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert bucket_start(NOON, "1d") == datetime(2026, 5, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown window"):
        bucket_start(NOON, "1w")


def test_a_tagged_article_counts_once_per_label_and_window() -> None:
    tagged = TaggedArticle(article(), ("decoupling", "capex"), {"decoupling": 0.9, "capex": 0.7}, "v1")
    hits = hits_for(Observation.of(tagged))
    assert sorted((hit.dynamic, hit.window) for hit in hits) == [
        ("capex", "1d"),
        ("capex", "1h"),
        ("decoupling", "1d"),
        ("decoupling", "1h"),
    ]


def test_counts_come_from_id_sets_so_repeats_change_nothing() -> None:
    hit = hits_for(Observation.of(TaggedArticle(article(), ("edge",), {"edge": 1.0}, "v1")))[0]
    assert count_update(hit, ["a1", "a2", "a1"]).value == 2.0


@pytest.mark.parametrize(
    "message",
    [
        article(body="full text", language="en"),
        TaggedArticle(article(), ("edge",), {"edge": 0.8, "capex": 0.1}, "v1"),
        IndicatorUpdate("article_count", "edge", "1h", NOON, 4.0),
        Alert("alert_1", "r", "warning", "edge", "article_count", "1h", NOON, 4.0, 1.0, "m", ("ops",)),
        DeadLetter("connector", "bad", "payload", "wire"),
    ],
)
def test_every_message_round_trips_through_a_dict(message: object) -> None:
    kind = type(message)
    assert kind.from_dict(message.to_dict()) == message  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "article: expected an object"),
        ({"id": "", "source": "s", "connector": "c"}, "id: expected a non-empty string"),
        (
            {"id": "x", "source": "s", "connector": "c", "published_at": "yesterday"},
            "published_at: not an ISO-8601",
        ),
        (
            {"id": "x", "source": "s", "connector": "c", "published_at": 5},
            "published_at: expected an ISO-8601",
        ),
    ],
)
def test_invalid_messages_say_which_field_is_wrong(data: object, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        Article.from_dict(data)
