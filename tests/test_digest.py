"""Digests: read from a fixed store, rendered byte for byte in each format, hostile feed text made inert in each,
and the ``stackwatch digest`` command.

The golden files under ``tests/data/digest/`` are what the fixed store (:mod:`tests.helpers.digest_store`) gives;
after a deliberate change to the digest, rewrite them with ``.venv/bin/python -m tests.test_digest`` and read the
diff.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwatch.pipeline.cli.main import cli
from stackwatch.pipeline.roles.digests import FORMATS, PeriodError, digest_body, period_of, render_digest
from stackwatch.signals.digest import Change, Digest, DigestAlert, DynamicDigest, Period, TopStory, story_rank
from stackwatch.storage.digest import read_digest
from stackwatch.storage.store import Store
from tests.helpers.digest_store import DYNAMICS, HOSTILE_TITLE, UNTIL, fill_digest_store

GOLDEN = Path(__file__).resolve().parent / "data" / "digest"
FILES = {"text": "all.txt", "slack": "all.slack.txt", "discord": "all.discord.md", "markdown": "all.md"}
NOW = datetime(2026, 3, 10, 8, tzinfo=UTC)


def _read(path: Path, dynamics: tuple[str, ...] = DYNAMICS, every_alert: bool = True) -> Digest:
    with Store.open(path, read_only=True) as store:
        return read_digest(store.connection, "all dynamics", period_of("1d", UNTIL), dynamics, every_alert=every_alert)


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fill_digest_store(tmp_path_factory.mktemp("digest") / "stackwatch.duckdb")


@pytest.fixture(scope="module")
def digest(store_file: Path) -> Digest:
    return _read(store_file)


# -- what the store gives ---------------------------------------------------------------------------------------------


def test_a_digest_counts_each_dynamic_against_the_day_before(digest: Digest) -> None:
    sections = {section.dynamic: section for section in digest.sections}
    assert [section.dynamic for section in digest.sections] == list(DYNAMICS)
    assert sections["decoupling"].articles == Change(4, 2)
    assert sections["decoupling"].stories == Change(2, 2)
    assert sections["edge"].articles == Change(1, 0)


def test_top_stories_rank_a_new_event_by_its_outlets_above_a_continuing_one(digest: Digest) -> None:
    top = next(section for section in digest.sections if section.dynamic == "decoupling").top
    assert [(story.story_id, story.articles, story.outlets, story.new) for story in top] == [
        ("a1", 3, 3, True),
        ("p3", 1, 1, False),
    ]


def test_an_entity_is_new_to_a_dynamic_only_if_the_lookback_never_named_it_there(digest: Digest) -> None:
    found = {section.dynamic: section.new_entities for section in digest.sections}
    assert found == {
        "exclusivity": (),
        "capex": ("Humain <@U1> @here",),
        "decoupling": ("Anthropic",),
        "edge": ("Oracle",),
    }


def test_an_entity_named_earlier_on_the_day_a_period_starts_is_not_new(store_file: Path) -> None:
    with Store.open(store_file, read_only=True) as store:
        period = period_of("90m", "2026-03-09T12:00Z")  # a3 at 11:00; a1 and a2 named Anthropic at 09:00 and 10:00
        digest = read_digest(store.connection, "noon", period, ("decoupling",))
    assert digest.sections[0].articles == Change(1, 2)
    assert digest.sections[0].new_entities == ()


def test_only_the_alerts_fired_in_the_period_and_of_the_dynamics_asked_for(store_file: Path, digest: Digest) -> None:
    assert [alert.rule for alert in digest.alerts] == ["decoupling-spike", "capex <!here>"]
    only = _read(store_file, ("decoupling",), every_alert=False)
    assert [(alert.rule, alert.fired_at.day) for alert in only.alerts] == [("decoupling-spike", 9)]


# -- each format, byte for byte ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("format", FORMATS)
def test_each_format_renders_the_fixed_store_byte_for_byte(digest: Digest, format: str) -> None:
    expected = (GOLDEN / FILES[format]).read_bytes()
    assert render_digest(digest, format).encode("utf-8") == expected


# -- hostile feed text ------------------------------------------------------------------------------------------------


def test_slack_shows_mentions_and_links_from_feeds_as_text(digest: Digest) -> None:
    text = render_digest(digest, "slack")
    assert "<!channel>" not in text
    assert "<!here>" not in text
    assert "<@U" not in text
    assert "<script" not in text
    assert "&lt;!channel&gt; @everyone" in text
    assert "<https://news.example/humain_%281%29?a=1&amp;b=%3C2%3E|" in text  # the URL cannot close its link
    assert "\n# heading" not in text  # a newline in a title cannot start a line of its own


def test_discord_breaks_broadcasts_and_escapes_markdown_from_feeds(digest: Digest) -> None:
    text = render_digest(digest, "discord")
    assert "@everyone" not in text
    assert "@here" not in text
    assert "@\u200beveryone" in text
    assert "\\<@U1\\>" in text
    assert "[click]" not in text
    assert "\\*Humain\\*" in text
    assert "\\`code\\`" in text
    assert "(https://news.example/humain_%281%29?a=1&b=%3C2%3E)" in text


def test_markdown_escapes_every_markup_character_from_feeds(digest: Digest) -> None:
    text = render_digest(digest, "markdown")
    assert "<script>" not in text
    assert "[click]" not in text
    assert "*Humain*" not in text
    assert "\\<script\\>alert\\(1\\)\\<\\/script\\>" in text
    assert "\\&" in text
    assert "\n# heading" not in text


def test_the_terminal_gets_no_control_characters_and_titles_stay_on_one_line() -> None:
    story = TopStory("s1", "Red\x1b[31m alert\r\nfake line\x07", "https://x.example/\x1b]8;;evil", 1, 1, NOW, True)
    alert = DigestAlert(NOW, "rule\x1b[2J", "warning", "firing", "edge", "two\nlines")
    section = DynamicDigest("edge", Change(1, 0), Change(1, 0), (story,), ("Name\x00X",))
    text = render_digest(Digest("edge", Period(NOW.replace(hour=0), NOW), (section,), (alert,)), "text")
    assert "\x1b" not in text
    assert "\r" not in text
    assert "\x07" not in text
    assert "\x00" not in text
    assert "Red [31m alert fake line" in text
    assert "rule [2J" in text
    assert ": two lines" in text


def test_a_hostile_title_is_inert_in_every_webhook_body(digest: Digest) -> None:
    slack = digest_body(digest, "slack", NOW)
    discord = digest_body(digest, "discord", NOW)
    standard = digest_body(digest, "standard", NOW)
    blocks = slack["blocks"]
    assert isinstance(blocks, list)
    assert all(block["text"]["verbatim"] is True for block in blocks)
    assert "<!channel>" not in json.dumps(slack, ensure_ascii=False)
    assert discord["allowed_mentions"] == {"parse": []}
    assert "@everyone" not in json.dumps(discord, ensure_ascii=False)
    data = standard["data"]
    assert standard["type"] == "digest"
    assert isinstance(data, dict)
    assert data["markdown"] == render_digest(digest, "markdown")
    titles = [story["title"] for section in data["dynamics"] for story in section["top_stories"]]
    assert HOSTILE_TITLE in titles  # the data is the data; only the markdown is escaped


def test_a_long_digest_is_cut_at_whole_lines_within_each_chat_limit() -> None:
    stories = tuple(TopStory(f"s{i}", "x" * 500, "https://x.example/", 1, 1, NOW, True) for i in range(9))
    sections = tuple(
        DynamicDigest(f"d{i}", Change(1, 0), Change(1, 0), stories, ()) for i in range(60)
    )  # more parts than Slack's blocks or Discord's embeds allow
    digest = Digest("all", Period(NOW.replace(hour=0), NOW), sections, ())
    slack = digest_body(digest, "slack", NOW)["blocks"]
    discord = digest_body(digest, "discord", NOW)["embeds"]
    assert isinstance(slack, list)
    assert isinstance(discord, list)
    assert len(slack) == 50
    assert all(len(block["text"]["text"]) <= 3000 for block in slack)
    assert "more part(s)" in slack[-1]["text"]["text"]
    assert len(discord) <= 10
    assert sum(len(embed["description"]) for embed in discord) <= 6000
    assert all(
        line.endswith(")") or not line.startswith("- [") for e in discord for line in e["description"].split("\n")
    )


# -- the model ------------------------------------------------------------------------------------------------------


def test_a_story_that_began_before_the_period_weighs_half() -> None:
    old = TopStory("old", "o", "", 3, 3, NOW.replace(day=1), False)
    new = TopStory("new", "n", "", 2, 1, NOW, True)
    assert sorted([old, new], key=story_rank) == [new, old]


def test_a_period_ends_at_until_and_names_a_wrong_value() -> None:
    assert period_of("7d", "2026-03-10").describe() == "2026-03-03 00:00 to 2026-03-10 00:00 UTC (7d)"
    assert period_of("12h", "2026-03-10T08:00+02:00").end == datetime(2026, 3, 10, 6, tzinfo=UTC)
    with pytest.raises(PeriodError, match=r"^since: expected a duration") as error:
        period_of("yesterday")
    assert error.value.key == "since"
    with pytest.raises(PeriodError, match=r"^until: expected an ISO 8601 date or time"):
        period_of("1d", "tomorrow")
    with pytest.raises(PeriodError, match=r"^since: a digest covers a minute at least"):
        period_of("5s")


# -- the command ----------------------------------------------------------------------------------------------------


@pytest.fixture
def config(store_file: Path, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "stackwatch.yaml"
    path.write_text(f"storage:\n  path: {json.dumps(str(store_file))}\n", encoding="utf-8")
    return path


def test_the_command_prints_the_digest_and_says_which_file_it_read(config: Path, store_file: Path) -> None:
    result = CliRunner().invoke(cli, ["digest", "-c", str(config), "--since", "1d", "--until", UNTIL])
    assert result.exit_code == 0, result.output
    assert result.stdout == (GOLDEN / FILES["text"]).read_text(encoding="utf-8")
    assert result.stderr == f"digest: reading the store {store_file}\n"


def test_the_command_digests_one_dynamic_named_in_any_case(config: Path) -> None:
    args = ["digest", "-c", str(config), "--until", UNTIL, "--dynamic", "DECOUPLING", "--format", "json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["name"] == "decoupling"
    assert [section["dynamic"] for section in data["dynamics"]] == ["decoupling"]
    assert data["dynamics"][0]["articles"] == {"current": 4, "previous": 2, "delta": 2}
    assert [alert["rule"] for alert in data["alerts"]] == ["decoupling-spike"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dynamic", "sovereignty"], "Invalid value for --dynamic: unknown dynamic 'sovereignty' (known: "),
        (["--since", "a while"], "Invalid value for --since: expected a duration such as 30s"),
        (["--until", "next monday"], "Invalid value for --until: expected an ISO 8601 date or time"),
    ],
)
def test_the_command_names_the_option_it_cannot_read(config: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["digest", "-c", str(config), *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_the_command_names_both_files_when_there_is_no_store(tmp_path: Path) -> None:
    config = tmp_path / "stackwatch.yaml"
    config.write_text(f"storage:\n  path: {json.dumps(str(tmp_path / 'none.duckdb'))}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["digest", "-c", str(config)])
    assert result.exit_code == 1
    assert "digest: cannot read the store or its snapshot" in result.stderr
    assert "none.duckdb: no such file" in result.stderr


def _rewrite(directory: Path) -> None:
    """Write the golden files from a fresh fixed store (``python -m tests.test_digest``)."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        digest = _read(fill_digest_store(Path(scratch) / "stackwatch.duckdb"))
    directory.mkdir(parents=True, exist_ok=True)
    for format, name in FILES.items():
        (directory / name).write_bytes(render_digest(digest, format).encode("utf-8"))
        print(f"wrote {directory / name}", file=sys.stderr)


if __name__ == "__main__":
    _rewrite(GOLDEN)
