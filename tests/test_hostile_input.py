"""Hostile input: whatever reaches a parser of outside data, the answer is a result or our own clear error.

Feed and API parsers get arbitrary bytes in tests/test_connectors_fuzz.py; this covers the rest: messages off
the wire, timestamps from year 0 to 9999, configuration, the SQL front, overlong lines, deep nesting, and the
service's HTTP endpoints.
"""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackwatch.connectors.file import FileSource
from stackwatch.connectors.jsonl import MAX_LINE
from stackwatch.connectors.rss import parse_feed
from stackwatch.errors import ConfigError, ParseError, QueryRefused
from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.pipeline.kafka.codec import decode
from stackwatch.settings import settings_from_mapping
from stackwatch.signals.indicators import bucket_start
from stackwatch.signals.messages import (
    Alert,
    Article,
    DeadLetter,
    IndicatorUpdate,
    MessageError,
    TaggedArticle,
    parse_time,
)
from stackwatch.storage.readonly import check_query
from tests.helpers.service import Service, pipeline_config

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
NOW = datetime(2026, 5, 4, 12, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)


@pytest.mark.parametrize("kind", [Article, TaggedArticle, IndicatorUpdate, Alert, DeadLetter])
@FAST
@given(payload=st.binary(max_size=512) | json_values.map(lambda value: json.dumps(value).encode()))
def test_any_bytes_on_a_topic_decode_or_fail_with_a_message_error(kind: type[Any], payload: bytes) -> None:
    try:
        decode(kind, payload)
    except MessageError as error:
        assert str(error)


@pytest.mark.parametrize("kind", [Article, IndicatorUpdate])
def test_deeply_nested_and_huge_messages_are_refused_not_crashed(kind: type[Any]) -> None:
    with pytest.raises(MessageError):
        decode(kind, b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(MessageError, match="exceeds"):
        decode(kind, b'{"id": "' + b"x" * (5 * 1024 * 1024) + b'"}')
    with pytest.raises(MessageError, match="not UTF-8"):
        decode(kind, b'{"id": "\xff\xfe"}')


@FAST
@given(
    moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
)
def test_timestamps_from_year_1_to_9999_in_any_offset_parse_or_fail_clearly(
    moment: datetime, offset_minutes: int
) -> None:
    sign = "+" if offset_minutes >= 0 else "-"
    text = f"{moment.isoformat()}{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    try:
        parsed = parse_time(text, "published_at")
    except MessageError as error:
        assert "published_at" in str(error)
        return
    assert parsed.tzinfo is not None
    try:
        bucket_start(parsed, "1d")
    except OverflowError:  # pragma: no cover - would be a bug
        pytest.fail(f"bucketing {text} overflowed")


@pytest.mark.parametrize(
    "text", ["0000-01-01T00:00:00", "10000-01-01", "9999-12-31T23:59:59-14:00", "-0001-01-01", "2026-02-30"]
)
def test_impossible_timestamps_are_message_errors(text: str) -> None:
    with pytest.raises(MessageError):
        parse_time(text, "published_at")


@FAST
@given(
    raw=st.dictionaries(
        st.sampled_from(
            [
                "kafka",
                "storage",
                "web",
                "sources",
                "rules",
                "webhooks",
                "dynamics",
                "classifier",
                "alerting",
                "log",
                "state",
                "bogus",
            ]
        ),
        json_values,
        max_size=6,
    )
)
def test_any_configuration_is_accepted_or_rejected_with_a_config_error(raw: dict[str, Any]) -> None:
    try:
        settings_from_mapping(raw, environ={})
    except ConfigError as error:
        assert "invalid configuration" in str(error)


@FAST
@given(
    sql=st.text(max_size=200)
    | st.sampled_from(["SELECT 1", "WITH a AS (SELECT 1) SELECT * FROM a"]).flatmap(
        lambda base: st.text(max_size=40).map(lambda tail: base + tail)
    )
)
def test_the_sql_front_refuses_or_accepts_anything_without_crashing(sql: str) -> None:
    try:
        check_query(sql, {"articles"})
    except QueryRefused as error:
        assert str(error)


@FAST
@given(
    name=st.text(min_size=1, max_size=40).filter(
        lambda name: '"' not in name and "\x00" not in name and name.lower() != "articles"  # a real table is fine
    )
)
def test_a_cte_never_makes_its_own_name_readable_as_a_file(name: str) -> None:
    """``WITH "x.csv" AS (SELECT * FROM 'x.csv') ...``: inside its own definition a CTE is not in scope."""
    quoted = name.replace("'", "''")
    for sql in (
        f'WITH "{name}" AS (SELECT * FROM \'{quoted}\') SELECT * FROM "{name}"',
        f"SELECT * FROM (WITH \"{name}\" AS (SELECT 1) SELECT 1), '{quoted}'",
    ):
        with pytest.raises(QueryRefused):
            check_query(sql, {"articles"})


@pytest.mark.parametrize(
    "sql",
    [
        "SUMMARIZE SELECT content FROM read_text('/proc/self/environ')",
        "DESCRIBE SELECT * FROM read_csv('/etc/passwd')",
        "SHOW SELECT * FROM glob('/tmp/*')",
        "  /* c */ summarize '/etc/passwd'",
        "SHOW databases",
    ],
)
def test_describe_show_and_summarize_are_checked_like_any_query(sql: str) -> None:
    with pytest.raises(QueryRefused):
        check_query(sql, {"articles"})


def test_an_xml_entity_bomb_is_not_expanded() -> None:
    levels = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">{levels}]>'
        '<rss version="2.0"><channel><title>&l9;</title><item><title>&l9;</title>'
        "<link>http://127.0.0.1/x</link></item></channel></rss>"
    ).encode()
    tracemalloc.start()
    try:
        try:
            articles, _ = parse_feed(bomb, "bomb", NOW)
        except ParseError:
            articles = []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024
    assert all(len(article.title) < 10_000 for article in articles)


async def test_an_overlong_line_is_skipped_as_a_dead_letter_without_being_held(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("wb") as out:
        out.write(json.dumps({"id": "a", "title": "before"}).encode() + b"\n")
        out.write(b'{"title": "' + b"x" * (MAX_LINE * 8) + b'"}\n')  # 8 MiB on one line
        out.write(b"\x00\xff not json\n")
        out.write(json.dumps({"id": "b", "title": "after"}).encode() + b"\n")
    source = FileSource("big", path)
    tracemalloc.start()
    try:
        result = await source.poll({})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [article.title for article in result.articles] == ["before", "after"]
    reasons = [letter.reason for letter in result.rejected]
    assert any("longer than" in reason for reason in reasons)
    assert any("not UTF-8" in reason or "not JSON" in reason for reason in reasons)
    assert peak < 4 * MAX_LINE
    again = await source.poll(result.checkpoint)
    assert again.articles == [] and again.rejected == []  # noqa: PT018


@pytest.mark.integration
def test_the_http_endpoints_answer_bad_requests_with_4xx_and_keep_running(
    broker: str, unique: str, tmp_path: Path
) -> None:
    port = free_port()
    config = pipeline_config(
        tmp_path,
        [broker],
        unique,
        storage={"path": str(tmp_path / "s.duckdb")},
        web={"port": port},
    )
    service = Service(config, command="sink", web_port=port)
    url = f"http://127.0.0.1:{port}/api/sql"
    as_json = {"Content-Type": "application/json"}  # past the browser guard, so the body parser is what answers
    try:
        service.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[0]], timeout=120)
        bad = [
            httpx.post(url, content=b"\xff\xfe", headers=as_json, timeout=10),
            httpx.post(url, content=b"[" * 50_000, headers=as_json, timeout=10),
            httpx.post(url, json=["SELECT 1"], timeout=10),
            httpx.post(url, json={"sql": 42}, timeout=10),
            httpx.post(url, json={"sql": "DROP TABLE articles"}, timeout=10),
            httpx.post(url, json={"sql": "SELECT * FROM read_text('/etc/passwd')"}, timeout=10),
            httpx.post(url, content=b'{"sql": "' + b"a" * 200_000 + b'"}', headers=as_json, timeout=10),
            httpx.post(url, content=b"not json", timeout=10),  # no JSON content type: refused before any parser
            httpx.get(url, params={"q": "SELECT 1; SELECT 2"}, timeout=10),
            httpx.get(url, params={"q": ""}, timeout=10),
        ]
        statuses = [response.status_code for response in bad]
        bodies = [response.json() for response in bad]
        still = service.sql("SELECT count(*) FROM articles")
    finally:
        assert service.stop() == 0
    assert all(400 <= status < 500 for status in statuses), statuses
    assert all(body.get("error") for body in bodies)
    assert still == [[0]]
    assert "Traceback" not in service.output
