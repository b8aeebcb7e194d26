"""The amounts a news text states (signals/amounts.py), which hold apart two deals of the same companies in the
event score (signals/stories.py, docs/stories.md)."""

from __future__ import annotations

import pytest

from stackwatch.signals.amounts import amounts, amounts_conflict
from stackwatch.signals.stories import ENTITY_WEIGHT, event_score


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Meta signs $10bn cloud deal", {("usd", 1e10)}),
        ("Meta signs $10 billion cloud deal.", {("usd", 1e10)}),
        ("Microsoft signs $17.4 billion GPU deal", {("usd", 1.7e10)}),  # two significant figures
        ("Anthropic to use up to one million Google TPUs", {("n", 1e6)}),
        ("plans 1.9 gigawatts of data centers and a gigawatt more", {("gw", 1.9), ("gw", 1.0)}),
        ("a 5 GW campus", {("gw", 5.0)}),
        ("AMD stock surges 30% as OpenAI takes a 10 percent stake", {("pct", 30.0), ("pct", 10.0)}),
        ("Nvidia to sell 18,000 Blackwell chips", {("n", 18000.0)}),
        ("Nvidia's GB300, H20 and MI450 rivals ship in 2026", set()),
        ("Nvidia will buy Intel stock at $23.28 a share", set()),
        ("one of the largest deals, signed by two companies in 3 countries", set()),
        ("", set()),
    ],
)
def test_the_amounts_a_text_states(text: str, expected: set[tuple[str, float]]) -> None:
    assert amounts(text) == expected


def test_amounts_conflict_only_when_both_state_one_unit_and_share_none() -> None:
    fourteen, six = amounts("$14 billion deal"), amounts("$6.5 billion expansion")
    assert amounts_conflict(fourteen, six)
    assert not amounts_conflict(fourteen, amounts("a $14bn contract and 2 GW"))
    assert not amounts_conflict(fourteen, amounts("2 GW of capacity"))  # different units say nothing
    assert not amounts_conflict(fourteen, frozenset())


def test_the_event_score_adds_shared_entities_and_takes_off_conflicting_amounts() -> None:
    same = {"CoreWeave", "Meta"}
    assert event_score(0.4, same, same, frozenset(), frozenset()) == pytest.approx(0.4 + ENTITY_WEIGHT)
    assert event_score(0.4, set(), set(), frozenset(), frozenset()) == pytest.approx(0.4)
    apart = event_score(0.4, same, {"CoreWeave", "OpenAI"}, amounts("$14 billion"), amounts("$6.5 billion"))
    assert apart < event_score(0.4, same, {"CoreWeave", "OpenAI"}, amounts("$14 billion"), amounts("$14bn"))
