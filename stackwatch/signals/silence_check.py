"""Does a new silence reach any configured rule? A warning when it cannot, with the nearest rule name.

    >>> from stackwatch.signals.conditions import Threshold
    >>> rules = [Rule("capex-surge", Threshold("capex", threshold=3))]
    >>> silence_warnings([Matcher.parse("alertname=capex-surg")], rules)  # doctest: +ELLIPSIS
    ["no configured rule's alerts match alertname=capex-surg (did you mean alertname=capex-surge?); ...]

A rule's alerts always carry ``alertname`` (its name), ``severity``, ``kind`` and its own ``labels``; the other
labels (``dynamic``, ``window``, ``entity``...) come from the value that fires it. A matcher on one of the former is
judged against each rule; a matcher on any other label is taken to match, since only the firing tells. So the
warning is certain where it matters most: an ``alertname`` that no rule has.

It is a warning, not a refusal, as in Alertmanager: a silence may be added before the rule it is for (a rule
that a reload is about to add), and a silence that matches nothing mutes nothing, which the alerts that keep
arriving make visible.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from stackwatch.signals.alerting import Matcher
from stackwatch.signals.conditions import Rule

__all__ = ["silence_warnings"]


def _could_match(matcher: Matcher, static: dict[str, str]) -> bool:
    return matcher.name not in static or matcher.matches(static)


def silence_warnings(matchers: Sequence[Matcher], rules: Sequence[Rule]) -> list[str]:
    """Empty when some rule's alerts may match every matcher; else one warning that names the configured rules,
    and suggests the nearest rule name for an exact ``alertname=`` that names none."""
    names = sorted(rule.name for rule in rules)
    if any(all(_could_match(m, rule.alert_labels({})) for m in matchers) for rule in rules):
        return []
    shown = " ".join(str(matcher) for matcher in matchers)
    hints = []
    for matcher in matchers:
        if matcher.name == "alertname" and matcher.op == "=" and matcher.value not in names:
            nearest = difflib.get_close_matches(matcher.value, names, n=1, cutoff=0.6)
            if nearest:
                hints.append(f"did you mean alertname={nearest[0]}?")
    hint = f" ({' '.join(hints)})" if hints else ""
    configured = ", ".join(names) if names else "none"
    return [
        f"no configured rule's alerts match {shown}{hint}; the configured rules: {configured}."
        " The silence is stored all the same: it mutes such alerts if a rule that fires them is added before it ends"
    ]
