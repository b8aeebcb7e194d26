"""The pieces of ``benchmarks.variants`` that choose and judge: cuts under a precision floor (training's
:func:`best_threshold`), reliability bins."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.variants import reliability, sentences
from stackwatch.signals.training import best_threshold


def _synthetic(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores that separate two classes imperfectly: positives around 0.65, negatives around 0.35."""
    generator = np.random.default_rng(seed)
    truth = generator.random(400) < 0.3
    scores = np.clip(np.where(truth, 0.65, 0.35) + generator.normal(0.0, 0.15, 400), 0.0, 1.0)
    return scores, truth


def _precision(scores: np.ndarray, truth: np.ndarray, cut: float) -> float:
    predicted = scores >= cut
    return float((predicted & truth).sum() / max(predicted.sum(), 1))


def test_without_a_floor_the_cut_is_the_f1_best_one() -> None:
    for seed in range(5):
        scores, truth = _synthetic(seed)
        cut = best_threshold(scores, truth)
        predicted = scores >= cut
        best = max(2 * (p & truth).sum() / (p.sum() + truth.sum()) for p in (scores >= c / 100 for c in range(5, 96)))
        assert 2 * (predicted & truth).sum() / (predicted.sum() + truth.sum()) == best


def test_a_floor_raises_the_cut_until_precision_reaches_it() -> None:
    scores, truth = _synthetic(0)
    free = best_threshold(scores, truth)
    floored = best_threshold(scores, truth, floor=0.9)
    assert _precision(scores, truth, free) < 0.9
    assert floored > free
    assert _precision(scores, truth, floored) >= 0.9


def test_an_unreachable_floor_gives_the_most_precise_cut() -> None:
    scores = np.array([0.9, 0.8, 0.6, 0.2])
    truth = np.array([False, True, True, False])  # the top score is a negative: precision never passes 2/3
    cut = best_threshold(scores, truth, floor=0.95)
    assert _precision(scores, truth, cut) == max(_precision(scores, truth, c / 100) for c in range(5, 96))


def test_calibrated_scores_have_no_calibration_error_and_overconfident_ones_do() -> None:
    scores = np.array([0.25] * 4 + [0.75] * 4)
    truth = np.array([True, False, False, False, True, True, True, False])
    table, error = reliability(scores, truth)
    assert [b.count for b in table] == [0, 0, 4, 0, 0, 0, 0, 4, 0, 0]
    assert error == 0.0
    _, overconfident = reliability(np.array([0.95] * 4), np.array([True, True, False, False]))
    assert overconfident == pytest.approx(0.45)


def test_a_title_is_a_sentence_of_its_own() -> None:
    assert sentences("Meta lifts capex to $70bn\nIt will spend more. Shares rose.") == [
        "Meta lifts capex to $70bn",
        "It will spend more.",
        "Shares rose.",
    ]
