"""What happens to an alert between firing and a webhook: routing, grouping, inhibition, silences.

Pure functions over label mappings, in the spirit of Prometheus Alertmanager::

    >>> Matcher.parse("dynamic=~cap.*").matches({"dynamic": "capex"})
    True
    >>> group_key({"alertname": "surge", "dynamic": "capex", "severity": "warning"}, ["alertname", "dynamic"])
    'alertname=surge,dynamic=capex'

Silence regexes are matched as Alertmanager matches them: with RE2 (linear time in the label's length, whatever
the pattern: no backtracking, so no look-around and no backreferences) and anchored at both ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import re2

__all__ = [
    "MAX_MATCHER_NAME",
    "MAX_MATCHER_VALUE",
    "Inhibition",
    "Matcher",
    "Route",
    "Silence",
    "compile_pattern",
    "group_key",
    "inhibited_by",
    "route",
    "silenced_by",
]

MAX_MATCHER_NAME = 64
"""The longest label name a matcher may name (as long as a label name in the settings)."""
MAX_MATCHER_VALUE = 1024
"""The longest value or regular expression a matcher may hold."""
_OPS = ("=~", "!~", "!=", "=")


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the caller's error, not a line on stderr
    options.max_mem = 1 << 20  # patterns that need more are refused when compiled
    return options


_RE2_OPTIONS = _options()
_NAME = re2.compile(r"[A-Za-z_][A-Za-z0-9_]*", _RE2_OPTIONS)
_MATCHER = re2.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*", _RE2_OPTIONS)


def compile_pattern(pattern: str) -> Any:
    """The RE2 program of a user's ``pattern`` (bounded memory); ValueError with RE2's reason when it cannot
    compile it."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        reason = error.args[0] if error.args else "not a valid pattern"
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise ValueError(f"{text} (RE2 syntax: no look-around, no backreferences)") from None


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex``.

    Regexes use RE2 syntax and match the whole value (``dynamic=~cap`` does not match ``capex``). A name longer
    than :data:`MAX_MATCHER_NAME`, a value longer than :data:`MAX_MATCHER_VALUE` or a regex RE2 cannot compile is
    a ValueError, whether the matcher is parsed or built.
    """

    name: str
    op: str
    value: str
    _program: Any = field(init=False, repr=False, compare=False, hash=False, default=None)

    def __post_init__(self) -> None:
        if len(self.name) > MAX_MATCHER_NAME or not _NAME.fullmatch(self.name):
            expected = f"a label name of at most {MAX_MATCHER_NAME} letters, digits and underscores"
            raise ValueError(f"matcher name {self.name[:80]!r}: expected {expected}")
        if self.op not in _OPS:
            raise ValueError(f"matcher operator {self.op!r}: expected one of {', '.join(_OPS)}")
        if len(self.value) > MAX_MATCHER_VALUE:
            raise ValueError(f"matcher {self.name}{self.op}...: value longer than {MAX_MATCHER_VALUE} characters")
        if self.op in ("=~", "!~"):
            try:
                program = compile_pattern(self.value)
            except ValueError as error:
                raise ValueError(f"matcher {str(self)[:200]!r}: bad regular expression: {error}") from None
            object.__setattr__(self, "_program", program)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        if len(text) > MAX_MATCHER_NAME + MAX_MATCHER_VALUE + 64:
            raise ValueError(f"not a matcher: {len(text)} characters (a value holds at most {MAX_MATCHER_VALUE})")
        match = _MATCHER.fullmatch(text)
        if not match:
            raise ValueError(f"not a matcher: {text[:200]!r} (expected name=value, name!=value, name=~re or name!~re)")
        name, op, value = match.groups()
        return cls(name, op, value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = self._program.fullmatch(actual) is not None
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
