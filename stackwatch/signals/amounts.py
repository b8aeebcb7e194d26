"""Amounts a news text states: money, power, percentages and large counts, each as (unit, value) rounded to two
significant figures, so "$10bn" and "$10 billion" are one amount and "$14 billion" another::

    >>> sorted(amounts("Meta signs $10bn cloud deal; 5 GW and 27% more, one million TPUs"))
    [('gw', 5.0), ('n', 1000000.0), ('pct', 27.0), ('usd', 10000000000.0)]
    >>> amounts("Nvidia's GB300 and H20 chips, due in 2026, at $23.28 a share")
    frozenset()
    >>> amounts_conflict(amounts("CoreWeave signs $14 billion deal"), amounts("CoreWeave's $6.5 billion deal"))
    True

Two reports of one event usually state the same sum or leave it out; two deals of the same companies usually
differ in it. Model names (GB300, H20), years, share prices and small bare numbers are not amounts. Every currency
sign counts as one unit: the texts compared are reports of one market, not conversions.
"""

from __future__ import annotations

import math
import re

__all__ = ["Amount", "amounts", "amounts_conflict"]

Amount = tuple[str, float]
"""(unit, value): ``usd`` (any currency sign), ``gw``, ``mw``, ``pct`` or ``n`` (a count)."""

_SCALES = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
}
_UNITS = {"gigawatt": "gw", "gigawatts": "gw", "gw": "gw", "megawatt": "mw", "megawatts": "mw", "mw": "mw"}
_WORDS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_WORDS |= {"ten": 10}
_AMOUNT = re.compile(
    r"(?<![\w.])(?P<currency>[$€£])?\s?"
    r"(?P<number>\d[\d,]*(?:\.\d+)?|a|one|two|three|four|five|six|seven|eight|nine|ten)\s?"
    r"(?P<scale>thousand|million|billion|trillion|bn|tn|k|m|b)?(?!\w)\s?"
    r"(?P<unit>gigawatts?|gw|megawatts?|mw|%|percent|per cent)?(?!\w)",
    re.IGNORECASE,
)
_SMALLEST_SUM = 1e6
"""Money below this is a price (a share at $23.28), not the sum of a deal."""


def amounts(text: str) -> frozenset[Amount]:
    """The amounts ``text`` states (see the module docstring)."""
    found: set[Amount] = set()
    for match in _AMOUNT.finditer(text):
        number = match["number"].casefold()
        scale = (match["scale"] or "").casefold()
        unit = (match["unit"] or "").casefold()
        currency = match["currency"]
        if number in _WORDS:
            if not scale and not unit:  # "a deal", "one of the largest"
                continue
            value = float(_WORDS[number])
        else:
            value = float(number.replace(",", ""))
            if not (currency or scale or unit) and (value < 1000 or 1900 <= value <= 2100):
                continue  # a small count, an ordinal or a year
        value *= _SCALES.get(scale, 1.0)
        kind = "usd" if currency else "pct" if unit in {"%", "percent", "per cent"} else _UNITS.get(unit, "n")
        if (kind == "usd" and value < _SMALLEST_SUM) or value <= 0:
            continue
        found.add((kind, round(value, 1 - math.floor(math.log10(value)))))
    return frozenset(found)


def amounts_conflict(first: frozenset[Amount], second: frozenset[Amount]) -> bool:
    """True when both texts state an amount of one unit and have no amount in common."""
    return first.isdisjoint(second) and not {unit for unit, _ in first}.isdisjoint(unit for unit, _ in second)
