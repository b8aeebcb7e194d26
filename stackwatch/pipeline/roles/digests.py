"""Digests in each output format, with feed text escaped as the alert webhooks escape it; the period asked for.

    period = period_of("1d", "2026-03-10")      # the day before 2026-03-10 00:00 UTC
    render_digest(digest, "slack")               # Slack mrkdwn text
    digest_body(digest, "discord", now)          # the webhook's JSON body, as delivery sends it

The layouts are :mod:`stackwatch.signals.digest`'s; the escapes are :mod:`stackwatch.pipeline.roles.markup`'s
(the alert formats' own) for Slack and Discord, and :func:`markdown_text` for the Markdown of the Standard Webhooks
body, which a receiver may render anywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stackwatch.pipeline.roles.markup import discord_link, discord_text, link_url, slack_link, slack_text
from stackwatch.settings.base import parse_duration
from stackwatch.signals.digest import LAYOUTS, PLAIN, Digest, Escapes, Period, render, render_sections

__all__ = [
    "ESCAPES",
    "FORMATS",
    "JSONObject",
    "PeriodError",
    "digest_body",
    "markdown_link",
    "markdown_text",
    "period_of",
    "render_digest",
]

JSONObject = dict[str, object]

_MARKDOWN_SPECIAL = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
"""CommonMark's ASCII punctuation: any of it may be backslash-escaped, and escaped it is always literal."""

_SLACK_BLOCK = 3000
_SLACK_BLOCKS = 50
_DISCORD_EMBED = 4096
_DISCORD_EMBEDS = 10
_DISCORD_TOTAL = 6000


class PeriodError(ValueError):
    """A period that cannot be read: ``key`` is the value at fault (``since`` or ``until``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def period_of(since: str, until: str | None = None, now: datetime | None = None) -> Period:
    """The period of length ``since`` (``1d``, ``7d``, ``12h``: at least a minute) that ends at ``until`` (an ISO
    8601 date or time, UTC unless it names a zone), else at ``now``. :class:`PeriodError` naming the wrong value.

    >>> period_of("1d", "2026-03-10").describe()
    '2026-03-09 00:00 to 2026-03-10 00:00 UTC (1d)'
    """
    try:
        seconds = parse_duration(since)
    except ValueError as error:
        raise PeriodError("since", str(error)) from None
    if seconds < 60:
        raise PeriodError("since", f"a digest covers a minute at least, got {since!r}")
    if until is None:
        end = now or datetime.now(UTC)
    else:
        try:
            end = datetime.fromisoformat(until)
        except ValueError:
            raise PeriodError(
                "until", f"expected an ISO 8601 date or time such as 2026-03-10T08:00Z, got {until!r}"
            ) from None
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
    end = end.astimezone(UTC)
    return Period(end - timedelta(seconds=round(seconds)), end)


def markdown_text(text: str) -> str:
    """``text`` as CommonMark shows it literally: every ASCII punctuation character backslash-escaped, so no
    emphasis, link, HTML, entity, heading or list can be formed.

    >>> print(markdown_text("*big* [deal](http://x) <b>&amp;"))
    \\*big\\* \\[deal\\]\\(http\\:\\/\\/x\\) \\<b\\>\\&amp\\;
    """
    return "".join(f"\\{char}" if char in _MARKDOWN_SPECIAL else char for char in text)


def markdown_link(url: str, label: str) -> str:
    """A ``[label](url)`` link, or the escaped label alone when ``url`` is not an http(s) URL."""
    target = link_url(url)
    if target is None:
        return markdown_text(label)
    return f"[{markdown_text(label)}]({target})"


ESCAPES: dict[str, Escapes] = {
    "text": PLAIN,
    "slack": Escapes(slack_text, slack_link),
    "discord": Escapes(discord_text, discord_link),
    "markdown": Escapes(markdown_text, markdown_link),
}
"""Feed text's escapes by format name."""

FORMATS = tuple(ESCAPES)
"""The formats a digest is rendered in: ``text``, ``slack``, ``discord``, ``markdown``."""


def render_digest(digest: Digest, format: str) -> str:
    """The digest as one document in ``format`` (one of :data:`FORMATS`)."""
    return render(digest, LAYOUTS[format], ESCAPES[format])


def _cut(part: str, limit: int) -> str:
    """``part``'s whole lines while they fit in ``limit`` characters, then ``…`` (markup is never cut)."""
    if len(part) <= limit:
        return part
    kept: list[str] = []
    size = 1
    for line in part.split("\n"):
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join([*kept, "…"])


def _fitted(parts: tuple[str, ...], each: int, count: int, total: int | None = None) -> list[str]:
    """The parts that fit: each cut to ``each`` characters, at most ``count`` of them and ``total`` characters in
    all; when some are left out, the last says how many."""
    kept: list[str] = []
    size = 0
    for index, part in enumerate(parts):
        text = _cut(part, each)
        if (len(kept) == count - 1 and index < len(parts) - 1) or (total and size + len(text) > total - 80):
            kept.append(f"… {len(parts) - index} more part(s): see the digest page on the dashboard")
            break
        kept.append(text)
        size += len(text)
    return kept


def digest_body(digest: Digest, webhook_format: str, now: datetime) -> JSONObject:
    """A webhook's JSON body for the digest, in a webhook format (``standard``, ``slack`` or ``discord``).

    ``standard``: ``{"type": "digest", "timestamp": ..., "data": {...digest, "markdown": ...}}``. ``slack``: a
    ``verbatim`` mrkdwn section per part (no automatic links or mentions). ``discord``: an embed per part, and
    ``allowed_mentions`` that let nothing ping.
    """
    if webhook_format == "standard":
        return {
            "type": "digest",
            "timestamp": now.isoformat(),
            "data": {**digest.to_dict(), "markdown": render_digest(digest, "markdown")},
        }
    if webhook_format == "slack":
        parts = _fitted(render_sections(digest, LAYOUTS["slack"], ESCAPES["slack"]), _SLACK_BLOCK, _SLACK_BLOCKS)
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": part, "verbatim": True}} for part in parts]
        return {"text": slack_text(f"Stackwatch digest: {digest.name}", 3000), "blocks": blocks}
    if webhook_format == "discord":
        layout, escapes = LAYOUTS["discord"], ESCAPES["discord"]
        parts = _fitted(render_sections(digest, layout, escapes), _DISCORD_EMBED, _DISCORD_EMBEDS, _DISCORD_TOTAL)
        return {
            "content": discord_text(f"Stackwatch digest: {digest.name}", 2000),
            "embeds": [{"description": part} for part in parts],
            "allowed_mentions": {"parse": []},
        }
    raise ValueError(f"unknown webhook format {webhook_format!r} (known: standard, slack, discord)")
