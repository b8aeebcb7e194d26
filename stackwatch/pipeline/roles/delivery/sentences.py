"""An alert as a sentence a person reads: what moved, by how much, against what threshold, in which bucket.

Plain text; each format escapes it for its markup (:mod:`stackwatch.pipeline.roles.markup`)::

    >>> from datetime import UTC, datetime
    >>> from stackwatch.signals.messages import Alert
    >>> start = datetime(2026, 12, 2, tzinfo=UTC)
    >>> machine = "decoupling zscore(article_count) 2 >= 2 in the 1d bucket starting 2026-12-02T00:00:00+00:00"
    >>> print(sentence(Alert("a1", "decoupling-spike", "warning", "decoupling", "zscore(article_count)", "1d",
    ...     start, 2.0, 2.0, machine, ())))
    The z-score of the article count of decoupling was 2, at or above the threshold of 2, on Wednesday 2 December 2026.
    >>> bucket_phrase("1h", datetime(2026, 12, 2, 14, tzinfo=UTC))
    'in the hour from 14:00 UTC on Wednesday 2 December 2026'

The rule engine writes its alerts' messages as sentences (:mod:`stackwatch.signals.alert_text`); alerts stored
before it did carry a machine message (``... 2 >= 2 in the 1d bucket starting ...``), which is rebuilt here from
the alert's fields, its comparison read from that message.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from stackwatch.signals.messages import Alert

__all__ = ["bucket_phrase", "indicator_phrase", "number", "sentence"]

_OPERATORS = {
    ">=": "at or above",
    ">": "above",
    "<=": "at or below",
    "<": "below",
    "==": "equal to",
}
_OPERATOR = re.compile(r"\s(>=|<=|==|>|<)\s")
_NAMES = {
    "article_count": "article count",
    "source_count": "number of distinct sources",
    "story_count": "number of stories",
    "score_sum": "sum of classifier scores",
    "share": "share of coverage",
    "novelty": "novelty",
    "ewma": "EWMA",
    "zscore": "z-score",
    "momentum": "momentum",
    "index": "index",
    "cooccurrence": "number of articles naming its entities",
    "cooccurrence_stories": "number of stories naming its entities",
    "hours_quiet": "hours without an article",
    "first_seen": "first appearance",
}
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\((.*)\)\s*$")


def indicator_phrase(indicator: str) -> str:
    """``zscore(article_count)`` → ``z-score of the article count``; an unknown name reads with spaces.

    >>> indicator_phrase("momentum(share)"), indicator_phrase("distinct_things")
    ('momentum of the share of coverage', 'distinct things')
    """
    call = _CALL.match(indicator)
    if call:
        return f"{indicator_phrase(call.group(1))} of the {indicator_phrase(call.group(2))}"
    return _NAMES.get(indicator, indicator.replace("_", " "))


def number(value: float) -> str:
    """A value as people write it: ``3,333``, ``2.62``, ``0.305``.

    >>> number(3333.0), number(2.6234), number(0.30512), number(float("nan"))
    ('3,333', '2.62', '0.305', 'n/a')
    """
    if math.isnan(value) or math.isinf(value):
        return "n/a"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def bucket_phrase(window: str, start: datetime) -> str:
    """When the judged bucket was, as a date (UTC): ``on Wednesday 2 December 2026`` for a day."""
    day = f"{start:%A} {start.day} {start:%B %Y}"
    if window == "1d":
        return f"on {day}"
    if window == "1h":
        return f"in the hour from {start:%H:%M} UTC on {day}"
    return f"in the {window} from {start:%H:%M} UTC on {day}"


def _subject(alert: Alert) -> str:
    """The dynamic, narrowed by the scope labels an alert may carry (an entity, entities, a source)."""
    subject = alert.dynamic
    labels = alert.labels
    entity = labels.get("entity") or labels.get("entities")
    if entity and entity != "*":
        subject += f" × {entity.replace(',', ', ')}"
    source = labels.get("source")
    if source and source != "*":
        subject += f" from {source}"
    return subject


_MACHINE = re.compile(r" (>=|<=|==|>|<) \S+ in the \w+ bucket starting \d{4}-\d\d-\d\dT")


def sentence(alert: Alert) -> str:
    """One sentence for ``alert``, firing or resolved: its ``message`` when the rule wrote one for people, else
    one built from its fields (alerts stored with the machine message ``capex article_count 5 >= 3 in the 1h
    bucket starting 2026-...``)."""
    if not _MACHINE.search(alert.message):
        return alert.message
    what = indicator_phrase(alert.indicator)
    found = _OPERATOR.search(alert.message)
    comparison = _OPERATORS[found.group(1)] if found else "against"
    against = f"{comparison} the threshold of {number(alert.threshold)}"
    when = bucket_phrase(alert.window, alert.bucket_start)
    value = number(alert.value)
    subject = _subject(alert)
    if alert.indicator == "hours_quiet":
        quiet = f"{subject} had no article for {value} hours"
        if alert.status == "resolved":
            return f"Resolved: {quiet} {when}, no longer {against}."
        return f"Quiet: {quiet}, {against}, {when}."
    if alert.status == "resolved":
        return f"Resolved: the {what} of {subject} was {value} {when}, no longer {against}."
    text = f"The {what} of {subject} was {value}, {against}, {when}."
    return text[0].upper() + text[1:]
