"""Slack and Discord bodies carry feed text as text: no mention, link or markup of the feed's making survives.

A hostile feed goes through the real RSS parser into a real DuckDB store; the alert's notification is delivered
to a real local receiver, and the bytes it receives are checked against the expected body.
"""

from __future__ import annotations

import asyncio
import doctest
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackwatch.connectors import text as text_module
from stackwatch.connectors.rss import parse_feed
from stackwatch.connectors.text import clean_text
from stackwatch.pipeline.roles import markup
from stackwatch.pipeline.roles.delivery import Deliverer
from stackwatch.pipeline.roles.markup import discord_link, discord_text, link_url, slack_link, slack_text
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import WebhookSettings
from stackwatch.signals.messages import Alert, TaggedArticle
from stackwatch.storage.outbox import Grouping
from stackwatch.storage.store import Batch, Store
from tests.helpers.http import LocalServer

NOON = datetime(2026, 5, 1, 12, tzinfo=UTC)
ZWSP = "\u200b"
SOURCE = "<!here>|*wire*_[x](http://y.example)"
HOSTILE_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>wire</title>
<item>
  <title><![CDATA[&lt;!channel&gt; Nvidia & AMD <https://evil.example/login|verify> <@U024BE7LH> @everyone]]></title>
  <link>https://news.example/a?x=1&amp;y=(2)</link>
  <guid>a1</guid>
  <pubDate>Fri, 01 May 2026 12:10:00 GMT</pubDate>
</item>
<item>
  <title>Read [the filing](http://x.example/) **now** ](http://evil.example) #1 &lt;#C024BE7LR&gt; @here</title>
  <link>javascript:alert(document.cookie)</link>
  <guid>a2</guid>
  <pubDate>Fri, 01 May 2026 12:20:00 GMT</pubDate>
</item>
<item>
  <title>A data: link</title>
  <link>data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==</link>
  <guid>a3</guid>
  <pubDate>Fri, 01 May 2026 12:30:00 GMT</pubDate>
</item>
</channel></rss>"""

MESSAGE = "capex <!channel> [x](http://evil.example) @here & more"
TEAM = "<!here> *ops* @everyone"


def hostile_alert() -> Alert:
    labels = {"alertname": "surge", "severity": "warning", "dynamic": "capex", "window": "1h", "team": TEAM}
    return Alert(
        "alert_hostile", "surge", "warning", "capex", "article_count", "1h", NOON, 3.0, 3.0, MESSAGE, ("chat",),
        NOON, labels=labels, values={"article_count": 3.0},
    )  # fmt: skip


def delivered_body(tmp_path: Path, server: LocalServer, format: str) -> bytes:
    """What a receiver gets for the hostile feed's alert: parsed, stored, grouped and sent for real."""
    articles, rejected = parse_feed(HOSTILE_FEED, SOURCE, NOON + timedelta(hours=1))
    assert rejected == []
    tagged = [
        TaggedArticle(article, ("capex",), {"capex": 0.9 - index / 10}, "v1", NOON)
        for index, article in enumerate(articles)
    ]
    server.route("/hook", "ok")
    hook = WebhookSettings(name="chat", url=server.url("/hook"), format=format)
    grouping = Grouping(group_by=("alertname", "team"), group_wait=timedelta(0))

    async def deliver(store: Store) -> None:
        deliverer = Deliverer(StoreThread(store), {"chat": hook}, grouping)
        try:
            assert await deliverer.deliver_due(now=datetime.now(UTC) + timedelta(days=1)) == 1
        finally:
            await deliverer.close()

    with Store.open(tmp_path / "formats.duckdb") as store:
        store.write(Batch(tagged=tagged, alerts=[hostile_alert()]))
        asyncio.run(deliver(store))
    (request,) = server.received("/hook")
    return request.body


def as_sent(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def test_a_hostile_feed_item_reaches_slack_as_text(tmp_path: Path, http_server: LocalServer) -> None:
    source = "&lt;!here&gt;|*wire*_[x](http://y.example)"
    expected = {
        "text": "[WARNING] surge: capex &lt;!channel&gt; [x](http://evil.example) @here &amp; more",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "stackwatch: 1 alert(s)"}},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*[WARNING] surge*\n"
                    "capex &lt;!channel&gt; [x](http://evil.example) @here &amp; more\n"
                    # the CDATA's &lt;!channel&gt; and the disguised <https://evil.example/login|…> link are gone
                    # (decoded, then dropped as tags); what is left is text, linked to the escaped http(s) URL
                    "• <https://news.example/a?x=1&amp;y=%282%29|Nvidia &amp; AMD &lt;@U024BE7LH&gt; @everyone>"
                    f" ({source})\n"
                    # javascript: and data: URLs are no links: the title alone, as text
                    "• Read [the filing](http://x.example/) **now** ](http://evil.example) #1 &lt;#C024BE7LR&gt;"
                    f" @here ({source})\n"
                    f"• A data: link ({source})",
                    "verbatim": True,
                },
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "group alertname=surge,team=&lt;!here&gt; *ops* @everyone",
                        "verbatim": True,
                    }
                ],
            },
        ],
    }
    assert delivered_body(tmp_path, http_server, "slack") == as_sent(expected)


def test_a_hostile_feed_item_reaches_discord_as_text(tmp_path: Path, http_server: LocalServer) -> None:
    source = "\\<!here\\>\\|\\*wire\\*\\_\\[x\\]\\(http://y.example\\)"
    expected = {
        "content": f"stackwatch: 1 alert(s) (alertname=surge,team=\\<!here\\> \\*ops\\* @{ZWSP}everyone)",
        "embeds": [
            {
                "title": "[WARNING] surge",
                "description": f"capex \\<!channel\\> \\[x\\]\\(http://evil.example\\) @{ZWSP}here & more",
                "color": 0xFF7F0E,
                "timestamp": "2026-05-01T12:00:00+00:00",
                "fields": [
                    {
                        "name": source,
                        "value": f"[Nvidia & AMD \\<@U024BE7LH\\> @{ZWSP}everyone](https://news.example/a?x=1&y=%282%29)",
                    },
                    {
                        "name": source,
                        "value": "Read \\[the filing\\]\\(http://x.example/\\) \\*\\*now\\*\\* \\]\\(http://evil.example\\)"
                        f" \\#1 \\<\\#C024BE7LR\\> @{ZWSP}here",
                    },
                    {"name": source, "value": "A data: link"},
                ],
            }
        ],
        "allowed_mentions": {"parse": []},
    }
    assert delivered_body(tmp_path, http_server, "discord") == as_sent(expected)


@pytest.mark.parametrize(
    ("text", "slack", "discord"),
    [
        ("<!channel>", "&lt;!channel&gt;", "\\<!channel\\>"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;", "\\<https://evil.example\\|click\\>"),
        ("](http://x)", "](http://x)", "\\]\\(http://x\\)"),
        ("@everyone @here @Everyone", "@everyone @here @Everyone", f"@{ZWSP}everyone @{ZWSP}here @{ZWSP}Everyone"),
        ("<@123456789012345678>", "&lt;@123456789012345678&gt;", "\\<@123456789012345678\\>"),
        (
            "`code` ~strike~ > quote # head \\",
            "`code` ~strike~ &gt; quote # head \\",
            "\\`code\\` \\~strike\\~ \\> quote \\# head \\\\",
        ),
        ("AT&T", "AT&amp;T", "AT&T"),
    ],
)
def test_feed_text_is_escaped_for_each_markup(text: str, slack: str, discord: str) -> None:
    assert slack_text(text) == slack
    assert discord_text(text) == discord


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "file:///etc/passwd",
        "//evil.example/x",
        "https://good.example@evil.example/",
        "https:///nohost",
        "https://evil.example\\@good.example/",
        "https://evil.example/\nline",
        "",
    ],
)
def test_only_http_urls_become_links(url: str) -> None:
    assert link_url(url) is None
    assert slack_link(url, "label") == "label"
    assert discord_link(url, "label") == "label"


def test_a_link_label_cannot_close_its_link_and_a_url_cannot_either() -> None:
    assert slack_link("https://a.example/x>y|z", "a > b|c") == "<https://a.example/x%3Ey%7Cz|a &gt; b|c>"
    assert discord_link("https://a.example/(x) [y]", "a](http://evil.example) [b]") == (
        "[a\\)\\(http://evil.example\\) \\(b\\)](https://a.example/%28x%29%20%5By%5D)"
    )


def test_limits_cut_text_before_escaping_and_keep_links_whole() -> None:
    assert slack_text("<<<<", 10) == "&lt;&lt;…"
    assert discord_text("****", 5) == "\\*\\*…"
    link = slack_link("https://a.example/", "x" * 100, 40)
    assert link == "<https://a.example/|" + "x" * 18 + "…>"
    assert len(link) == 40
    assert discord_link("https://a.example/" + "p" * 60, "title", 40) == "title"  # no room for the URL: text


def test_the_markup_module_examples_hold() -> None:
    assert doctest.testmod(markup).failed == 0
    assert doctest.testmod(text_module).failed == 0


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("&lt;script&gt;alert(1)&lt;/script&gt; news", "alert(1) news"),
        ("&lt;!channel&gt; big news", "big news"),
        ("&lt;https://evil.example/login|verify&gt; here", "here"),
        ("<b>bold</b> &amp; plain", "bold & plain"),
        ("3 &lt; 5 and 7 > 2", "3 < 5 and 7 > 2"),
        ("cut off &lt;img src=x onerror=alert(1)", "cut off"),
        ("&amp;lt;b&amp;gt; stays text", "&lt;b&gt; stays text"),
    ],
)
def test_clean_text_decodes_entities_before_dropping_tags(raw: str, cleaned: str) -> None:
    assert clean_text(raw, 200) == cleaned
