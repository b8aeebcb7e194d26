"""Precision, recall and F1 per dynamic, and their macro average, for multi-label predictions.

>>> report = evaluate([("capex",), ()], [("capex",), ("edge",)], ("capex", "edge"))
>>> report.per_dynamic["capex"].f1, report.per_dynamic["edge"].recall
(1.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Report", "Score", "evaluate", "f1"]


@dataclass(frozen=True, slots=True)
class Score:
    """One dynamic's counts and scores."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Report:
    """Scores per dynamic, in taxonomy order, and the macro-F1 over them."""

    per_dynamic: dict[str, Score]

    @property
    def macro_f1(self) -> float:
        scores = list(self.per_dynamic.values())
        return sum(score.f1 for score in scores) / len(scores) if scores else 0.0


def f1(true_positives: int, false_positives: int, false_negatives: int) -> float:
    denominator = 2 * true_positives + false_positives + false_negatives
    return 2 * true_positives / denominator if denominator else 0.0


def evaluate(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], names: Sequence[str]) -> Report:
    """Compare predicted label sets with gold ones, text by text."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold label sets but {len(predicted)} predictions")
    per_dynamic = {}
    for name in names:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if name in g and name in p)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if name not in g and name in p)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if name in g and name not in p)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        per_dynamic[name] = Score(precision, recall, f1(tp, fp, fn), tp + fn)
    return Report(per_dynamic)
