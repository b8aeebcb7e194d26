"""The demo timeline: a dated stream of news, written for the demo, that gives the first run a past.

``stackwatch/demo/timeline.jsonl`` holds one item per line, oldest first; ``age_hours`` is how long before the
demo starts the item was published, so the demo looks current whenever it runs. These tests say what the file
promises: its shape, its span and order, its outlets and syndicated copies (which the product's own SimHash rule
folds into stories), and that none of its text comes from the classifier's corpus.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from stackwatch.signals.stories import MAX_DISTANCE, STORY_WINDOW, distance, simhash

ROOT = Path(__file__).resolve().parent.parent
WEEK_HOURS = 168.0
FIELDS = {"id", "age_hours", "outlet", "url", "title", "summary", "story"}
PREFIX = 60
FIRST_SEEN = "Corvane"
"""The newcomer for a first-seen rule: a company the timeline names only in its last two weeks."""

Record = dict[str, Any]


@pytest.fixture(scope="module")
def lines() -> list[str]:
    text = resources.files("stackwatch.demo").joinpath("timeline.jsonl").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def records(lines: list[str]) -> list[Record]:
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def stories(records: list[Record]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        grouped[record["story"]].append(record)
    return dict(grouped)


@pytest.fixture(scope="module")
def known_texts() -> set[str]:
    """Every title and text of the corpus, case-folded."""
    paths = sorted((ROOT / "corpus").rglob("*.jsonl"))
    texts: set[str] = set()
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                texts.update(record[key].casefold() for key in ("title", "text", "summary") if key in record)
    return texts


def test_every_line_is_an_object_with_exactly_the_documented_fields(lines: list[str]) -> None:
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert set(record) == FIELDS, line
        assert re.fullmatch(r"tl-\d{4}", record["id"]), line
        assert re.fullmatch(r"s-\d{3}", record["story"]), line
        assert isinstance(record["age_hours"], int | float), line
        assert not isinstance(record["age_hours"], bool), line
        for key in ("outlet", "url", "title", "summary"):
            assert isinstance(record[key], str), (key, line)
            assert record[key].strip(), (key, line)


def test_ids_are_unique(records: list[Record]) -> None:
    ids = [record["id"] for record in records]
    assert len(set(ids)) == len(ids)


def test_items_are_in_event_time_order_and_all_in_the_past(records: list[Record]) -> None:
    ages = [record["age_hours"] for record in records]
    assert all(age > 0 for age in ages)
    assert all(older >= newer for older, newer in itertools.pairwise(ages)), "ages must not increase"


def test_it_spans_sixteen_weeks_down_to_a_few_hours_ago_with_every_week_covered(records: list[Record]) -> None:
    ages = [record["age_hours"] for record in records]
    assert max(ages) >= 16 * WEEK_HOURS
    assert min(ages) <= 12
    weeks = {int(age // WEEK_HOURS) for age in ages}
    assert weeks == set(range(math.ceil(max(ages) / WEEK_HOURS)))


def test_it_holds_several_hundred_items(records: list[Record]) -> None:
    assert len(records) >= 450


def test_items_come_from_at_least_eight_made_up_outlets_on_reserved_domains(records: list[Record]) -> None:
    assert len({record["outlet"] for record in records}) >= 8
    for record in records:
        assert re.fullmatch(r"https://[a-z0-9.-]+\.example\.(com|net)/\S+", record["url"]), record["url"]


def test_a_quarter_of_stories_are_covered_by_two_to_four_outlets(stories: dict[str, list[Record]]) -> None:
    multi = [members for members in stories.values() if len(members) > 1]
    assert len(multi) >= 0.25 * len(stories)
    for members in multi:
        assert 2 <= len(members) <= 4
        assert len({member["outlet"] for member in members}) == len(members), "one copy per outlet"


def test_syndicated_copies_fold_into_one_story_and_distinct_stories_do_not(records: list[Record]) -> None:
    window = STORY_WINDOW.total_seconds() / 3600
    hashes = [simhash(f"{record['title']}\n{record['summary']}") for record in records]
    near: dict[int, set[int]] = defaultdict(set)
    for a in range(len(records)):
        for b in range(a + 1, len(records)):
            if abs(records[a]["age_hours"] - records[b]["age_hours"]) > window:
                continue
            if distance(hashes[a], hashes[b]) <= MAX_DISTANCE:
                assert records[a]["story"] == records[b]["story"], (records[a]["title"], records[b]["title"])
                near[a].add(b)
                near[b].add(a)
    by_story: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_story[record["story"]].append(index)
    for story, members in by_story.items():
        reached, frontier = {members[0]}, [members[0]]
        while frontier:
            for other in near[frontier.pop()] - reached:
                reached.add(other)
                frontier.append(other)
        assert reached == set(members), f"{story} does not fold into one story"


def test_copies_share_their_lead_sentence(stories: dict[str, list[Record]]) -> None:
    for members in stories.values():
        assert len({member["summary"].split(". ")[0] for member in members}) == 1, members[0]["title"]


def test_summaries_are_one_to_three_sentences_of_150_to_450_characters(records: list[Record]) -> None:
    for record in records:
        summary = record["summary"]
        assert 150 <= len(summary) <= 450, summary
        sentences = len(re.findall(r"[.!?](?=\s+[A-Z\"'$0-9])", summary)) + 1
        assert 1 <= sentences <= 3, summary


def test_no_title_or_summary_is_taken_from_the_corpus(records: list[Record], known_texts: set[str]) -> None:
    prefixes = {text[:PREFIX] for text in known_texts}
    for record in records:
        for key in ("title", "summary"):
            text = record[key].casefold()
            assert text not in known_texts, record[key]
            assert text[:PREFIX] not in prefixes, record[key]


def test_the_first_seen_newcomer_appears_only_in_the_last_two_weeks(records: list[Record]) -> None:
    ages = [record["age_hours"] for record in records if FIRST_SEEN in f"{record['title']} {record['summary']}"]
    assert len(ages) >= 3
    assert max(ages) < 2 * WEEK_HOURS
