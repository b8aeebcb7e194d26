"""HTTP sources against real local servers: politeness, conditional GET, bad answers, restarts with a real broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiokafka import AIOKafkaConsumer

from stackwatch.connectors import (
    CheckpointStore,
    GdeltSource,
    HackerNewsSource,
    HostLimiter,
    JsonFeedSource,
    JsonItems,
    JsonSource,
    Publisher,
    RssSource,
    Schedule,
    Scheduler,
    SecEdgarSource,
    Source,
)
from stackwatch.errors import ParseError, SourceError
from stackwatch.pipeline.kafka.producer import AckedProducer
from stackwatch.signals.messages import Article, DeadLetter, utcnow
from tests.helpers.http import LocalServer, Recorded, Reply

pytestmark = pytest.mark.integration

FEEDS = Path(__file__).parent / "data" / "feeds"
RSS = (FEEDS / "rss2_namespaces.xml").read_bytes()
SCHEDULE = Schedule(interval=300.0, jitter=0.0, max_backoff=3600.0)


class Recorder:
    """A publisher that keeps what it was given (stands in for the broker where the broker is not the point)."""

    def __init__(self) -> None:
        self.articles: list[Article] = []
        self.rejected: list[DeadLetter] = []

    async def __call__(self, articles: Sequence[Article], rejected: Sequence[DeadLetter]) -> None:
        self.articles.extend(articles)
        self.rejected.extend(rejected)


def scheduler_for(source: Source, tmp_path: Path, publish: Recorder | None = None) -> tuple[Scheduler, Recorder]:
    recorder = publish or Recorder()
    limiter = HostLimiter(min_gap=0.0)  # one local server stands for many hosts here
    return Scheduler(
        [(source, SCHEDULE)], CheckpointStore(tmp_path / "checkpoints"), recorder, limiter=limiter
    ), recorder


async def test_conditional_get_304_produces_nothing(http_server: LocalServer, tmp_path: Path) -> None:
    etag = 'W/"feed-v1"'
    modified = "Fri, 01 May 2026 12:00:00 GMT"

    def answer(request: Recorded) -> Reply:
        if request.headers.get("if-none-match") == etag:
            return Reply(304)
        return Reply(200, RSS, {"Content-Type": "application/rss+xml", "ETag": etag, "Last-Modified": modified})

    http_server.route("/feed.xml", responder=answer)
    source = RssSource("wire", http_server.url("/feed.xml"))
    scheduler, published = scheduler_for(source, tmp_path)
    try:
        assert await scheduler.step(source, SCHEDULE) == 300.0
        assert len(published.articles) == 3
        checkpoint = CheckpointStore(tmp_path / "checkpoints").load("wire")
        assert (checkpoint["etag"], checkpoint["last_modified"]) == (etag, modified)  # exactly as received

        await scheduler.step(source, SCHEDULE)
        second = http_server.received("/feed.xml")[1]
        assert second.headers["if-none-match"] == etag
        assert second.headers["if-modified-since"] == modified
        assert len(published.articles) == 3
        assert scheduler.states["wire"].last_error is None
    finally:
        await source.stop()


async def test_unchanged_feed_without_validators_yields_nothing_twice(http_server: LocalServer, tmp_path: Path) -> None:
    http_server.route("/feed.xml", RSS, headers={"Content-Type": "application/rss+xml"})
    source = RssSource("wire", http_server.url("/feed.xml"))
    scheduler, published = scheduler_for(source, tmp_path)
    try:
        await scheduler.step(source, SCHEDULE)
        await scheduler.step(source, SCHEDULE)
    finally:
        await source.stop()
    assert len(published.articles) == 3
    assert scheduler.states["wire"].polls == 2


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [(429, "120", 120.0), (503, "7", 7.0), (429, None, 60.0)],
)
async def test_retry_after_is_honoured(
    http_server: LocalServer, tmp_path: Path, status: int, header: str | None, expected: float
) -> None:
    headers = {"Retry-After": header} if header else {}
    http_server.route("/feed.xml", b"slow down", status=status, headers=headers)
    source = RssSource("wire", http_server.url("/feed.xml"))
    scheduler, published = scheduler_for(source, tmp_path)
    store = CheckpointStore(tmp_path / "checkpoints")
    store.save("wire", {"etag": '"kept"', "seen": []})
    before = utcnow()
    try:
        delay = await scheduler.step(source, SCHEDULE)
    finally:
        await source.stop()
    state = scheduler.states["wire"]
    assert delay == expected
    assert state.next_poll is not None
    assert before + timedelta(seconds=expected) <= state.next_poll
    assert state.last_error == f"HTTP {status} from {source.url}"
    assert published.articles == []
    assert store.load("wire")["etag"] == '"kept"'


@pytest.mark.parametrize(
    ("document", "content_type", "reason"),
    [
        ("broken_html.html", "text/html", "the document is HTML"),
        ("broken_truncated.xml", "application/rss+xml", "malformed feed"),
    ],
)
async def test_malformed_feed_is_dead_lettered_once_and_the_source_goes_on(
    http_server: LocalServer, tmp_path: Path, document: str, content_type: str, reason: str
) -> None:
    http_server.route("/feed.xml", (FEEDS / document).read_bytes(), headers={"Content-Type": content_type})
    source = RssSource("wire", http_server.url("/feed.xml"))
    scheduler, published = scheduler_for(source, tmp_path)
    try:
        first = await scheduler.step(source, SCHEDULE)
        await scheduler.step(source, SCHEDULE)
        state = scheduler.states["wire"]
        assert reason in (state.last_error or "")
        assert state.failures == 2
        assert first == 300.0
        assert state.consecutive_failures == 2
        assert len(published.rejected) == 1  # the same broken document is kept once, not on every poll
        letter = published.rejected[0]
        assert letter.origin == "wire"
        assert reason in letter.reason
        assert letter.payload
        # the publisher fixes the feed: the source recovers
        http_server.route("/feed.xml", RSS, headers={"Content-Type": "application/rss+xml"})
        await scheduler.step(source, SCHEDULE)
        assert len(published.articles) == 3
        assert state.consecutive_failures == 0
    finally:
        await source.stop()


async def test_redirect_loop_size_cap_and_http_errors_are_named(http_server: LocalServer) -> None:
    http_server.route("/loop", status=302, headers={"Location": "/loop"})
    http_server.route("/huge", b"<rss>" + b" " * 200_000, headers={"Content-Type": "application/rss+xml"})
    http_server.route("/gone", b"gone", status=410)
    cases = [
        ("/loop", "redirects (a loop?)"),
        ("/huge", "larger than 65536 bytes"),
        ("/gone", "HTTP 410 from"),
    ]
    for path, reason in cases:
        source = RssSource("wire", http_server.url(path), max_bytes=65536)
        try:
            with pytest.raises(SourceError, match=reason.replace("(", r"\(").replace("?", r"\?").replace(")", r"\)")):
                await source.poll({})
        finally:
            await source.stop()


async def test_unreachable_host_is_a_source_error() -> None:
    source = RssSource("nowhere", "http://127.0.0.1:9/feed.xml", timeout=2.0)
    try:
        with pytest.raises(SourceError, match="cannot fetch"):
            await source.poll({})
    finally:
        await source.stop()


async def test_api_sources_send_their_queries(http_server: LocalServer) -> None:
    http_server.route("/hn", (FEEDS / "hn.json").read_bytes(), headers={"Content-Type": "application/json"})
    http_server.route("/gdelt", (FEEDS / "gdelt.json").read_bytes(), headers={"Content-Type": "application/json"})
    http_server.route("/edgar", (FEEDS / "edgar.xml").read_bytes(), headers={"Content-Type": "application/atom+xml"})
    http_server.route(
        "/feed.json", (FEEDS / "jsonfeed.json").read_bytes(), headers={"Content-Type": "application/feed+json"}
    )
    agent = "Acme Research ops@acme.example"
    sources: list[tuple[Source, str, int]] = [
        (HackerNewsSource("hn", "TPU OR Trainium", endpoint=http_server.url("/hn")), "/hn", 2),
        (GdeltSource("gd", '"data center" capex', endpoint=http_server.url("/gdelt")), "/gdelt", 2),
        (
            SecEdgarSource("nv", cik="0001045810", form="8-K", user_agent=agent, endpoint=http_server.url("/edgar")),
            "/edgar",
            2,
        ),
        (JsonFeedSource("sn", http_server.url("/feed.json")), "/feed.json", 3),
    ]
    for source, path, count in sources:
        try:
            result = await source.poll({})
        finally:
            await source.stop()
        assert len(result.articles) == count, path
        assert result.articles[0].connector == source.type
    hn_query = parse_qs(urlsplit(http_server.received("/hn")[0].path).query)
    assert hn_query["tags"] == ["story"]
    assert hn_query["query"] == ["TPU OR Trainium"]
    gdelt_query = parse_qs(urlsplit(http_server.received("/gdelt")[0].path).query)
    assert gdelt_query["mode"] == ["artlist"]
    assert gdelt_query["format"] == ["json"]
    edgar = http_server.received("/edgar")[0]
    assert edgar.headers["user-agent"] == agent
    edgar_query = parse_qs(urlsplit(edgar.path).query)
    assert edgar_query["CIK"] == ["0001045810"]
    assert edgar_query["type"] == ["8-K"]
    assert edgar_query["output"] == ["atom"]


def feed_with(items: range) -> bytes:
    entries = "".join(
        f"<item><title>Story {n}</title><link>https://wire.example/{n}</link><guid>wire-{n}</guid></item>"
        for n in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>w</title>{entries}</channel></rss>'.encode()


class Crash(Exception):
    """The process dies before the broker acknowledged."""


async def test_kill_and_restart_loses_nothing_and_duplicates_nothing(
    http_server: LocalServer, tmp_path: Path, broker: str, unique: str
) -> None:
    topic = f"{unique}.articles.raw"
    producer = AckedProducer([broker], client_id=unique)
    assert await producer.start(asyncio.Event())

    async def to_broker(articles: Sequence[Article], rejected: Sequence[DeadLetter]) -> None:
        await producer.send_all([(topic, a.id.encode(), json.dumps(a.to_dict()).encode()) for a in articles])

    async def crashing(articles: Sequence[Article], rejected: Sequence[DeadLetter]) -> None:
        raise Crash

    async def run_once(publish: Publisher) -> None:
        """One process lifetime: a fresh source and scheduler over the same checkpoint directory."""
        source = RssSource("wire", http_server.url("/feed.xml"))
        scheduler = Scheduler([(source, SCHEDULE)], CheckpointStore(tmp_path / "checkpoints"), publish)
        try:
            await scheduler.step(source, SCHEDULE)
        finally:
            await scheduler.stop()

    try:
        http_server.route("/feed.xml", feed_with(range(1, 4)))
        await run_once(crashing)  # killed before the broker acknowledged: the checkpoint must not move
        await run_once(to_broker)  # restarted: items 1-3
        http_server.route("/feed.xml", feed_with(range(1, 6)))
        await run_once(to_broker)  # restarted again: only 4 and 5 are new
        await run_once(to_broker)  # and once more: nothing
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker, group_id=unique, auto_offset_reset="earliest")
    await consumer.start()
    try:
        titles: list[str] = []
        for _ in range(60):
            batch = await consumer.getmany(timeout_ms=500)
            titles += [json.loads(m.value)["title"] for records in batch.values() for m in records]
            if len(titles) >= 5:
                break
        extra = await consumer.getmany(timeout_ms=500)  # nothing beyond the five
        titles += [json.loads(m.value)["title"] for records in extra.values() for m in records]
    finally:
        await consumer.stop()
    assert sorted(titles) == [f"Story {n}" for n in range(1, 6)]


class PostsSource(JsonSource):
    """A JSON API source written as a user would: only the ``items`` hook."""

    type = "posts"

    def items(self, data: Any) -> JsonItems:
        if not isinstance(data, dict) or not isinstance(data.get("posts"), list):
            raise ParseError('not a posts answer: no "posts" list')
        return JsonItems(data["posts"], lambda post: {"id": post.get("n"), "title": post.get("head"), "url": None})


async def test_a_json_source_only_says_where_its_items_are(http_server: LocalServer) -> None:
    posts = [{"n": 1, "head": "Oracle signs OpenAI"}, "not an object", {"n": 3}]
    http_server.route("/posts", json.dumps({"posts": posts}).encode(), headers={"Content-Type": "application/json"})
    http_server.route("/other", b'{"data": []}', headers={"Content-Type": "application/json"})
    source = PostsSource("api", http_server.url("/posts"))
    wrong = PostsSource("api", http_server.url("/other"))
    try:
        result = await source.poll({})
        refused = await wrong.poll({})
    finally:
        await source.stop()
        await wrong.stop()
    assert [(a.title, a.connector) for a in result.articles] == [("Oracle signs OpenAI", "posts")]
    assert [(r.reason, r.payload) for r in result.rejected] == [
        ("item 1 rejected: expected an object, got str", '"not an object"'),
        ("item 2 rejected: record has neither a title nor a summary/text", '{"n": 3}'),
    ]
    assert http_server.received("/posts")[0].headers["accept"] == "application/json"
    assert not refused.articles
    assert refused.error == f'{http_server.url("/other")}: not a posts answer: no "posts" list'
    assert [r.reason for r in refused.rejected] == [refused.error]  # the document itself, once, as a dead letter
