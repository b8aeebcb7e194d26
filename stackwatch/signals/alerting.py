"""What happens to an alert between firing and a webhook: routing, grouping, inhibition, silences.

Pure functions over label mappings, in the spirit of Prometheus Alertmanager::

    >>> Matcher.parse("dynamic=~cap.*").matches({"dynamic": "capex"})
    True
    >>> group_key({"alertname": "surge", "dynamic": "capex", "severity": "warning"}, ["alertname", "dynamic"])
    'alertname=surge,dynamic=capex'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Inhibition", "Matcher", "Route", "Silence", "group_key", "inhibited_by", "route", "silenced_by"]

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex`` (regexes match the whole value)."""

    name: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        match = _MATCHER.match(text)
        if not match:
            raise ValueError(f"not a matcher: {text!r} (expected name=value, name!=value, name=~re or name!~re)")
        name, op, value = match.groups()
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"matcher {text!r}: bad regular expression: {error}") from None
        return cls(name, op, value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes every alert that all ``matchers`` match, from ``starts_at`` until ``ends_at``."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    comment: str = ""

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.matchers)


@dataclass(frozen=True, slots=True)
class Inhibition:
    """A firing alert matching ``source`` mutes alerts matching ``target`` that share the ``equal`` labels."""

    source: Mapping[str, str]
    target: Mapping[str, str]
    equal: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Route:
    """Alerts whose labels contain every ``match`` pair also go to ``webhooks``."""

    match: Mapping[str, str]
    webhooks: tuple[str, ...]


def _contains(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(name) == value for name, value in wanted.items())


def route(labels: Mapping[str, str], routes: Iterable[Route]) -> list[str]:
    """The webhooks label routes add for an alert, in route order, without repeats."""
    hooks: dict[str, None] = {}
    for item in routes:
        if _contains(labels, item.match):
            hooks.update(dict.fromkeys(item.webhooks))
    return list(hooks)


def group_key(labels: Mapping[str, str], group_by: Sequence[str]) -> str:
    """Alerts with the same values of the ``group_by`` labels share one notification."""
    return ",".join(f"{name}={labels.get(name, '')}" for name in group_by)


def silenced_by(labels: Mapping[str, str], silences: Iterable[Silence], now: datetime) -> str | None:
    """The id of the first active silence that matches, if any."""
    for silence in silences:
        if silence.active(now) and silence.matches(labels):
            return silence.id
    return None


def inhibited_by(
    labels: Mapping[str, str], firing: Iterable[Mapping[str, str]], rules: Iterable[Inhibition]
) -> Mapping[str, str] | None:
    """The labels of a firing alert that inhibits this one (its critical twin), if any."""
    firing = list(firing)
    for rule in rules:
        if not _contains(labels, rule.target):
            continue
        for other in firing:
            if other is labels or not _contains(other, rule.source) or _contains(other, rule.target):
                continue
            if all(other.get(name) == labels.get(name) for name in rule.equal):
                return other
    return None
