"""A digest: what happened in a period, per dynamic, against the period before; and how it reads in each format.

    digest = Digest("daily", Period(start, end), sections, alerts)
    render(digest, LAYOUTS["text"], PLAIN)            # the terminal's text
    render(digest, LAYOUTS["slack"], slack_escapes)   # Slack mrkdwn, feed text escaped by the caller's functions

A section per dynamic holds its article and story counts with those of the previous period of the same length,
its top stories (:func:`story_rank`: size in the period, halved for a story that began before it) and the
entities it named for the first time; the digest lists the alerts fired in the period. The store's queries
(:mod:`stackwatch.storage.digest`) build it; this module only holds it and lays it out.

Feed text is hostile. A layout writes markup of its own (headings, bold, bullets) and passes every piece of feed
text through :class:`Escapes`: the chat formats' escapes live with the webhook code (``pipeline/roles/markup``),
which this package does not import, so the caller hands them in. Every piece is first made one line of visible
characters (:func:`one_line`): a newline cannot start a heading or a quote, an ANSI escape cannot reach a
terminal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "LAYOUTS",
    "PLAIN",
    "Change",
    "Digest",
    "DigestAlert",
    "DynamicDigest",
    "Escapes",
    "Layout",
    "Period",
    "TopStory",
    "one_line",
    "render",
    "render_sections",
    "story_rank",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s+")


def one_line(text: str) -> str:
    """``text`` on one line of visible characters: control characters (ANSI escapes' ESC included) and line
    breaks become spaces, runs of spaces one space.

    >>> one_line("NVIDIA\\n# wins\\x1b[31m big ")
    'NVIDIA # wins [31m big'
    """
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _length(span: timedelta) -> str:
    """``1d``, ``7d``, ``12h`` or ``90m``: the period's length as the CLI's ``--since`` writes it."""
    seconds = int(span.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


@dataclass(frozen=True, slots=True)
class Period:
    """The UTC interval ``[start, end)``; :attr:`previous` is the one of the same length just before it."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"a period ends after it starts (got {self.start.isoformat()} to {self.end.isoformat()})")

    @property
    def previous(self) -> Period:
        return Period(self.start - (self.end - self.start), self.start)

    @property
    def length(self) -> str:
        return _length(self.end - self.start)

    def describe(self) -> str:
        """``2026-12-02 00:00 to 2026-12-03 00:00 UTC (1d)``."""
        return f"{_when(self.start)} to {_when(self.end)} UTC ({self.length})"


@dataclass(frozen=True, slots=True)
class Change:
    """A count in the period and in the previous one."""

    current: int
    previous: int

    @property
    def delta(self) -> int:
        return self.current - self.previous

    def describe(self) -> str:
        """``12 (+3 from 9)``, ``4 (-2 from 6)``, ``5 (same as before)``."""
        if self.delta == 0:
            return f"{self.current} (same as before)"
        return f"{self.current} ({self.delta:+d} from {self.previous})"


@dataclass(frozen=True, slots=True)
class TopStory:
    """A story with articles in the period: ``articles`` and ``outlets`` count those in the period; ``new`` when
    it began in it (its first article was published in the period)."""

    story_id: str
    title: str
    url: str
    articles: int
    outlets: int
    first_seen: datetime
    new: bool


def story_rank(story: TopStory) -> tuple[float, int, float, str]:
    """The order of top stories, as a sort key: size in the period (halved for a story that began before it, so
    a new event outranks an old one of equal size), then outlets, then the newest first, then id."""
    weight = story.articles * (1.0 if story.new else 0.5)
    return (-weight, -story.outlets, -story.first_seen.timestamp(), story.story_id)


@dataclass(frozen=True, slots=True)
class DynamicDigest:
    """One dynamic's part of a digest."""

    dynamic: str
    articles: Change
    stories: Change
    top: tuple[TopStory, ...]
    new_entities: tuple[str, ...]
    """Entities its articles named in the period and not in the lookback before it, by name."""


@dataclass(frozen=True, slots=True)
class DigestAlert:
    """An alert fired in the period."""

    fired_at: datetime
    rule: str
    severity: str
    status: str
    dynamic: str
    message: str


@dataclass(frozen=True, slots=True)
class Digest:
    """A digest named ``name`` over ``period``: a section per dynamic, and the alerts fired in the period."""

    name: str
    period: Period
    sections: tuple[DynamicDigest, ...]
    alerts: tuple[DigestAlert, ...]

    def to_dict(self) -> dict[str, Any]:
        """The digest as JSON values (times as ISO 8601), for the Standard Webhooks body's ``data``."""

        def change(value: Change) -> dict[str, int]:
            return {"current": value.current, "previous": value.previous, "delta": value.delta}

        return {
            "name": self.name,
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "previous": {"start": self.period.previous.start.isoformat(), "end": self.period.start.isoformat()},
            "dynamics": [
                {
                    "dynamic": section.dynamic,
                    "articles": change(section.articles),
                    "stories": change(section.stories),
                    "top_stories": [
                        {
                            "story_id": story.story_id,
                            "title": story.title,
                            "url": story.url,
                            "articles": story.articles,
                            "outlets": story.outlets,
                            "first_seen": story.first_seen.isoformat(),
                            "new": story.new,
                        }
                        for story in section.top
                    ],
                    "new_entities": list(section.new_entities),
                }
                for section in self.sections
            ],
            "alerts": [
                {
                    "fired_at": alert.fired_at.isoformat(),
                    "rule": alert.rule,
                    "severity": alert.severity,
                    "status": alert.status,
                    "dynamic": alert.dynamic,
                    "message": alert.message,
                }
                for alert in self.alerts
            ],
        }


@dataclass(frozen=True, slots=True)
class Escapes:
    """How feed text is written into a format: ``text(s)`` shows ``s`` literally; ``link(url, label)`` is a link
    (or the label alone when ``url`` is not fit to be one)."""

    text: Callable[[str], str]
    link: Callable[[str, str], str]


def _plain_link(url: str, label: str) -> str:
    return f"{label} <{url}>" if url else label


PLAIN = Escapes(text=lambda text: text, link=_plain_link)
"""The terminal's: text as it is (already one line of visible characters), a link as ``label <url>``."""


@dataclass(frozen=True, slots=True)
class Layout:
    """A format's own markup around escaped text: ``title`` and ``heading`` wrap a line, ``bullet`` starts a list
    item, ``strong`` marks a word."""

    title: Callable[[str], str]
    heading: Callable[[str], str]
    bullet: str
    strong: Callable[[str], str]


LAYOUTS: dict[str, Layout] = {
    "text": Layout(lambda line: f"{line}\n{'=' * len(line)}", lambda line: f"{line}\n{'-' * len(line)}", "  - ", str),
    "slack": Layout(lambda line: f"*{line}*", lambda line: f"*{line}*", "• ", lambda word: f"*{word}*"),
    "discord": Layout(lambda line: f"## {line}", lambda line: f"**{line}**", "- ", lambda word: f"**{word}**"),
    "markdown": Layout(lambda line: f"# {line}", lambda line: f"## {line}", "- ", lambda word: f"**{word}**"),
}
"""The layouts by format name: ``text`` (terminal), ``slack`` (mrkdwn), ``discord`` and ``markdown`` (CommonMark,
the Standard Webhooks body's)."""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _story_line(story: TopStory, layout: Layout, escapes: Escapes) -> str:
    title = one_line(story.title) or "(no title)"
    size = f"{_count(story.articles, 'article')}, {_count(story.outlets, 'outlet')}"
    mark = layout.strong("new") if story.new else f"since {story.first_seen.astimezone(UTC):%Y-%m-%d}"
    return f"{layout.bullet}{escapes.link(one_line(story.url), title)} ({size}; {mark})"


def _section(section: DynamicDigest, layout: Layout, escapes: Escapes) -> str:
    lines = [
        layout.heading(escapes.text(one_line(section.dynamic))),
        f"Articles: {section.articles.describe()}. Stories: {section.stories.describe()}.",
    ]
    if section.top:
        lines += ["Top stories:", *(_story_line(story, layout, escapes) for story in section.top)]
    else:
        lines.append("No stories in this period.")
    names = ", ".join(escapes.text(one_line(name)) for name in section.new_entities)
    lines.append(f"New entities: {names}." if names else "No new entities.")
    return "\n".join(lines)


def _alerts(alerts: tuple[DigestAlert, ...], layout: Layout, escapes: Escapes) -> str:
    lines = [layout.heading(f"Alerts ({len(alerts)})")]
    for alert in alerts:
        mark = "RESOLVED" if alert.status == "resolved" else one_line(alert.severity).upper()
        lines.append(
            f"{layout.bullet}{_when(alert.fired_at)} [{escapes.text(mark)}] {escapes.text(one_line(alert.rule))}"
            f" ({escapes.text(one_line(alert.dynamic))}): {escapes.text(one_line(alert.message))}"
        )
    if not alerts:
        lines.append("No alerts fired in this period.")
    return "\n".join(lines)


def render_sections(digest: Digest, layout: Layout, escapes: Escapes) -> tuple[str, ...]:
    """The digest as parts that stand alone (a title, one per dynamic, the alerts), for formats that send each
    part as a block of its own."""
    head = "\n".join(
        [
            layout.title(f"Stackwatch digest: {escapes.text(one_line(digest.name))}"),
            f"{digest.period.describe()}, compared with the {digest.period.length} before.",
        ]
    )
    body = tuple(_section(section, layout, escapes) for section in digest.sections)
    return (head, *body, _alerts(digest.alerts, layout, escapes))


def render(digest: Digest, layout: Layout, escapes: Escapes) -> str:
    """The digest as one document: its parts separated by a blank line, ending with a newline."""
    return "\n\n".join(render_sections(digest, layout, escapes)) + "\n"
