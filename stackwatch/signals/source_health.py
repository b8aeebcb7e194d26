"""Source health on the wall clock: sources that stopped delivering or keep failing, as firing and resolved alerts.

Pure code over plain values; the source-health role (:mod:`stackwatch.pipeline.roles.source_health`) gathers the
values every few seconds and publishes the alerts as the rules' alerts go out::

    rule = HealthRule("feeds-down", stale_after=timedelta(hours=2), failing_after=timedelta(minutes=30))
    report = SourceReport("wire", last_delivery=stored_at, failing_since=None, last_success=polled_at)
    alerts = judge([rule], [report], firing={}, now=utcnow(), watching_since=started)

Unlike the ``silence`` rule, which judges event time (it moves only when articles arrive), this judges the wall
clock, so a source fires while nothing at all arrives. Two problems per source, each its own alert:

- ``stale``: no article of the source stored for ``stale_after``, counted from the later of its last stored
  article and ``watching_since`` (the service's start: time the service was down is no source's fault, and a
  source that never delivered gets ``stale_after`` to do so);
- ``failing``: no poll since ``failing_since`` succeeded (each failed, or was asked to come back later: HTTP 429
  or 503), for ``failing_after``.

An alert resolves only on evidence of recovery: an article stored within ``stale_after``; a successful poll after
the failures began. Not knowing (a restart that forgot the in-memory state) changes nothing. An alert of a
source no longer watched (removed or disabled) resolves. Ids are stable (:func:`~stackwatch.signals.rules.alert_id`
of the rule, the dedup key and the time the problem began to hold), so a firing sent twice is one alert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stackwatch.signals.messages import Alert
from stackwatch.signals.rules import alert_id

__all__ = ["INDICATORS", "KIND", "WINDOW", "Firing", "HealthRule", "SourceReport", "judge"]

KIND = "source_health"
"""The ``kind`` of the rule and of its alerts."""
WINDOW = "wall"
"""The alerts' ``window``: judged on the wall clock, not in buckets."""
INDICATORS = {"stale": "hours_without_articles", "failing": "hours_failing"}
"""Each problem's ``indicator`` (the value is in hours, as a silence rule's ``hours_quiet``)."""


@dataclass(frozen=True, slots=True)
class HealthRule:
    """Watch ``source`` (None: every watched source) for ``stale_after`` without a stored article and for
    ``failing_after`` of failing polls (None: that problem is not watched)."""

    name: str
    source: str | None = None
    stale_after: timedelta | None = None
    failing_after: timedelta | None = None
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    webhooks: tuple[str, ...] = ()
    dedup: str = "{rule}|{source}|{problem}"

    def dedup_key(self, source: str, problem: str) -> str:
        return self.dedup.format(rule=self.name, severity=self.severity, source=source, problem=problem)

    def thresholds(self) -> dict[str, timedelta]:
        """The problems this rule watches, with their durations."""
        both = {"stale": self.stale_after, "failing": self.failing_after}
        return {problem: after for problem, after in both.items() if after is not None}


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What is known of a source: its newest stored article, its last successful poll, and since when its polls
    have failed without a success in between (None when its last poll did not fail, or nothing is known)."""

    source: str
    last_delivery: datetime | None = None
    last_success: datetime | None = None
    failing_since: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Firing:
    """An open health alert: a firing alert with no resolution after it (read back from the store at start)."""

    rule: str
    dedup_key: str
    source: str
    problem: str
    since: datetime
    """When the problem began to hold: the firing's ``bucket_start``; its resolution's id is derived from it."""


Router = Callable[[Mapping[str, str]], Iterable[str]]


def judge(
    rules: Sequence[HealthRule],
    reports: Iterable[SourceReport],
    firing: Mapping[tuple[str, str], Firing],
    now: datetime,
    *,
    watching_since: datetime,
    router: Router = lambda labels: (),
) -> list[Alert]:
    """The alerts to send at ``now``: firings of problems that hold and are not open in ``firing`` (keyed by
    rule and dedup key), resolutions of open ones that recovered or whose source is no longer reported."""
    by_source = {report.source: report for report in reports}
    alerts: list[Alert] = []
    judged: set[tuple[str, str]] = set()
    for rule in rules:
        names = [rule.source] if rule.source is not None else sorted(by_source)
        for name in names:
            report = by_source.get(name)
            if report is None:
                continue
            for problem, after in rule.thresholds().items():
                key = (rule.name, rule.dedup_key(name, problem))
                if key in judged:
                    continue  # a dedup template without {source} or {problem}: one alert for all of them
                judged.add(key)
                open_alert = firing.get(key)
                since, value = _holds(problem, report, after, now, watching_since)
                if open_alert is None and since is not None:
                    alerts.append(_alert(rule, name, problem, key[1], since, value, after, report, now, router))
                elif open_alert is not None and _recovered(problem, report, after, open_alert, now):
                    alerts.append(
                        _alert(rule, name, problem, key[1], open_alert.since, value, after, report, now, router, True)
                    )
    watched = {rule.name: rule for rule in rules}
    for key, open_alert in firing.items():
        owner = watched.get(open_alert.rule)
        if key in judged or owner is None or open_alert.problem not in owner.thresholds():
            continue  # judged above, or a rule no longer configured: left as it is
        if open_alert.source not in by_source or owner.source not in (None, open_alert.source):
            after = owner.thresholds()[open_alert.problem]
            gone = SourceReport(open_alert.source)
            problem, since = open_alert.problem, open_alert.since
            alerts.append(
                _alert(owner, open_alert.source, problem, key[1], since, 0.0, after, gone, now, router, True, "gone")
            )
    return alerts


def _holds(
    problem: str, report: SourceReport, after: timedelta, now: datetime, watching_since: datetime
) -> tuple[datetime | None, float]:
    """When the problem began to hold (None: it does not hold at ``now``), and its value in hours."""
    if problem == "stale":
        reference = max(report.last_delivery or watching_since, watching_since)
        hours = (now - (report.last_delivery or reference)).total_seconds() / 3600.0
        return (reference + after if now - reference >= after else None), hours
    if report.failing_since is None:
        return None, 0.0
    hours = (now - report.failing_since).total_seconds() / 3600.0
    return (report.failing_since + after if now - report.failing_since >= after else None), hours


def _recovered(problem: str, report: SourceReport, after: timedelta, open_alert: Firing, now: datetime) -> bool:
    """Evidence of recovery, never its absence: a restart that knows less must not resolve what still holds."""
    if problem == "stale":
        return report.last_delivery is not None and now - report.last_delivery < after
    return (
        report.failing_since is None
        and report.last_success is not None
        and report.last_success >= open_alert.since - after
    )


def _alert(
    rule: HealthRule,
    source: str,
    problem: str,
    dedup: str,
    since: datetime,
    hours: float,
    after: timedelta,
    report: SourceReport,
    now: datetime,
    router: Router,
    resolved: bool = False,
    note: str = "",
) -> Alert:
    indicator = INDICATORS[problem]
    labels = {
        "alertname": rule.name,
        "severity": rule.severity,
        "kind": KIND,
        "dynamic": f"source:{source}",
        "indicator": indicator,
        "window": WINDOW,
        "source": source,
        "problem": problem,
        **rule.labels,
    }
    values = {indicator: round(hours, 6)}
    if problem == "failing":
        values["consecutive_failures"] = float(report.consecutive_failures)
    return Alert(
        id=alert_id(rule.name, dedup, since.isoformat(), *(("resolved",) if resolved else ())),
        rule=rule.name,
        severity=rule.severity,
        dynamic=f"source:{source}",
        indicator=indicator,
        window=WINDOW,
        bucket_start=since,
        value=round(hours, 6),
        threshold=after.total_seconds() / 3600.0,
        message=_message(source, problem, hours, after, report, resolved, note),
        webhooks=tuple(dict.fromkeys([*rule.webhooks, *router(labels)])),
        fired_at=now,
        status="resolved" if resolved else "firing",
        kind=KIND,
        dedup_key=dedup,
        labels=labels,
        values=values,
    )


def _message(
    source: str, problem: str, hours: float, after: timedelta, report: SourceReport, resolved: bool, note: str
) -> str:
    limit = _duration(after)
    if resolved:
        if note:
            return f"resolved: source {source} is no longer watched (removed or disabled)"
        if problem == "stale":
            stored = report.last_delivery.isoformat() if report.last_delivery else "?"
            return f"resolved: source {source} delivers again (newest article stored {stored})"
        success = report.last_success.isoformat() if report.last_success else "?"
        return f"resolved: source {source} polls again (last success {success})"
    took = _duration(timedelta(hours=hours))
    if problem == "stale":
        if report.last_delivery is None:
            return f"source {source} has stored no article yet, {limit} after the service started watching it"
        return (
            f"source {source}: no new article for {took} (newest stored {report.last_delivery.isoformat()};"
            f" stale after {limit})"
        )
    count = f"{report.consecutive_failures} failed in a row; " if report.consecutive_failures else ""
    error = f"; last error: {report.last_error}" if report.last_error else ""
    return f"source {source}: no successful poll for {took} ({count}failing after {limit}){error}"


def _duration(span: timedelta) -> str:
    """``2h 5m``, ``45m``, ``30s``."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    text = " ".join(part for part in parts if part)
    return text or f"{seconds}s"
