"""Webhook bodies: a notification as the JSON a receiver expects, by format name (``webhooks[].format``).

    render_body(note, "slack")      # {"text": ..., "blocks": [...]}
    FORMATS["discord"](note, now)   # {"content": ..., "embeds": [...], "allowed_mentions": {"parse": []}}

Slack and Discord read as sentences for people (:mod:`.sentences`: what moved, by how much, against what
threshold, in which bucket); the standard body keeps every machine field and adds the sentence as ``text``. Feed
text reaches Slack and Discord as text, never as markup (:mod:`stackwatch.pipeline.roles.markup` escapes it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from stackwatch.pipeline.roles.delivery.sentences import sentence
from stackwatch.pipeline.roles.markup import discord_link, discord_text, slack_link, slack_text
from stackwatch.signals.messages import utcnow
from stackwatch.storage.outbox import AlertRow, Notification

__all__ = ["FORMATS", "Format", "JSONObject", "render_body"]

JSONObject = dict[str, object]
"""A webhook body: a JSON object, built here and only ever serialised."""

Format = Callable[[Notification, datetime], JSONObject]
"""A webhook body format: the notification and the send time in, the JSON body out."""

_COLORS = {"critical": 0xD62728, "warning": 0xFF7F0E, "info": 0x1F77B4}


def _alert_json(row: AlertRow) -> JSONObject:
    return {**row.alert.to_dict(), "text": sentence(row.alert), "evidence": dict(row.evidence)}


def _standard(note: Notification, now: datetime) -> JSONObject:
    """Standard Webhooks JSON. ``data`` is the first alert (with ``alerts``: all of the group's); ``repeat`` is
    true when the notification re-sends alerts still firing, unchanged (``alerting.repeat_interval``)."""
    statuses = {row.alert.status for row in note.alerts}
    kind = "alert.group" if len(statuses) > 1 else f"alert.{'resolved' if statuses == {'resolved'} else 'fired'}"
    alerts = [_alert_json(row) for row in note.alerts]
    return {
        "type": kind,
        "timestamp": now.isoformat(),
        "data": {**alerts[0], "group_key": note.group_key, "repeat": note.repeat, "alerts": alerts},
    }


def _header(note: Notification) -> str:
    return f"stackwatch: {len(note.alerts)} alert(s)" + (" still firing" if note.repeat else "")


def _title(row: AlertRow, escape: Callable[[str], str]) -> str:
    mark = "RESOLVED" if row.alert.status == "resolved" else row.alert.severity.upper()
    return f"[{mark}] {escape(row.alert.rule)}"


def _articles(row: AlertRow, limit: int = 3) -> list[dict[str, str]]:
    """The top evidence articles, each field a string (evidence is stored JSON: anything may be missing)."""
    items = row.evidence.get("articles")
    if not isinstance(items, list):
        return []
    return [
        {key: str(item.get(key) or "") for key in ("title", "url", "source")}
        for item in items[:limit]
        if isinstance(item, dict)
    ]


def _lines(lines: list[str], limit: int) -> str:
    """Whole lines joined while they fit in ``limit`` characters (markup is never cut in the middle)."""
    kept: list[str] = []
    size = -1
    for line in lines:
        if size + 1 + len(line) > limit:
            break
        kept.append(line)
        size += 1 + len(line)
    return "\n".join(kept)


def _slack(note: Notification, now: datetime) -> JSONObject:
    """Slack incoming-webhook blocks: a header, one section per alert with its top articles as links.

    Feed text is escaped as mrkdwn (``&``, ``<``, ``>``) and text objects are ``verbatim`` (no automatic links or
    mentions); an article links only to an http(s) URL.
    """
    blocks: list[JSONObject] = [{"type": "header", "text": {"type": "plain_text", "text": _header(note)[:150]}}]
    for row in note.alerts[:20]:  # Slack allows 50 blocks per message
        lines = [f"*{_title(row, slack_text)}*", slack_text(sentence(row.alert), 1500)]
        lines += [
            f"• {slack_link(item['url'], item['title'], 2400)} ({slack_text(item['source'], 100)})"
            for item in _articles(row)
        ]
        text = _lines(lines, 3000)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}})
    group = {"type": "mrkdwn", "text": f"group {slack_text(note.group_key, 290)}", "verbatim": True}
    blocks.append({"type": "context", "elements": [group]})
    summary = "; ".join(f"{_title(row, str)}: {sentence(row.alert)}" for row in note.alerts)
    return {"text": slack_text(summary, 3000), "blocks": blocks}


def _discord(note: Notification, now: datetime) -> JSONObject:
    """Discord webhook embeds: one per alert (at most 10), coloured by severity.

    Feed text is escaped as Discord markdown (mentions included), ``allowed_mentions`` lets nothing ping, and an
    article links only to an http(s) URL.
    """
    embeds = []
    for row in note.alerts[:10]:
        fields = [
            {
                "name": discord_text(item["source"] or "article", 256),
                "value": discord_link(
                    item["url"], item["title"] or "(no title)", 1024
                ),  # never empty: Discord refuses it
            }
            for item in _articles(row)
        ]
        embeds.append(
            {
                "title": _title(row, lambda text: discord_text(text, 200)),
                "description": discord_text(sentence(row.alert), 4096),
                "color": 0x2CA02C if row.alert.status == "resolved" else _COLORS.get(row.alert.severity, 0x7F7F7F),
                "timestamp": row.alert.bucket_start.isoformat(),
                "fields": fields,
            }
        )
    content = f"{_header(note)} ({discord_text(note.group_key, 1900)})"
    return {"content": content, "embeds": embeds, "allowed_mentions": {"parse": []}}


FORMATS: dict[str, Format] = {"standard": _standard, "slack": _slack, "discord": _discord}
"""Webhook body formats by name: each takes a notification and the send time and returns the JSON body."""


def render_body(note: Notification, format: str, now: datetime | None = None) -> JSONObject:
    """The JSON body of ``note`` in a webhook format (``standard``, ``slack`` or ``discord``)."""
    return FORMATS[format](note, now or utcnow())
