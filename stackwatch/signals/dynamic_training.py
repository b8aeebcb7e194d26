"""Training one dynamic's own head (:class:`~stackwatch.signals.user_dynamics.DynamicHead`) from a handful of
labelled examples, for ``stackwatch train --dynamic NAME --examples FILE``.

The examples file is JSONL, one text a line with whether it is an example of the dynamic::

    {"text": "Government funds 10,000-GPU national cluster", "label": true}
    {"title": "Lumora launches 'sovereign' cloud tier", "text": "Data stays in Germany.", "label": false}

    examples = read_examples("docs/examples/sovereignty.jsonl")
    head = train_dynamic_head("sovereignty", examples, encoder.encode([e.text for e in examples]), keywords,
                              encoder=encoder.name, adapter=encoder.adapter)

The model is a class-balanced, L2-regularised logistic regression over the embedding and one keyword feature (1
when one of the dynamic's keywords matches), fitted by Newton's method, so the same file gives the same head. With
so few examples nothing is held out for good: the L2 strength and the threshold are chosen on out-of-fold
probabilities (leave-one-out up to :data:`LEAVE_ONE_OUT_UP_TO` examples, else :data:`FOLDS` folds): the strength
with the lowest log-loss, then the F1-best cut, ties broken towards 0.5. Those out-of-fold figures are the head's
honest estimate and go into its metrics; the head itself is fitted on every example.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np

from stackwatch.signals.corpus import CorpusError, combine
from stackwatch.signals.evaluation import f1
from stackwatch.signals.training import best_threshold
from stackwatch.signals.user_dynamics import DynamicHead, KeywordFeature

__all__ = [
    "FOLDS",
    "L2_STRENGTHS",
    "LEAVE_ONE_OUT_UP_TO",
    "MIN_PER_CLASS",
    "Example",
    "read_examples",
    "train_dynamic_head",
]

MIN_PER_CLASS: Final = 5
"""Positive and negative examples a file needs at least of each."""
L2_STRENGTHS: Final = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001)
"""Tried strongest first; a weaker one must have a strictly lower out-of-fold log-loss to win."""
LEAVE_ONE_OUT_UP_TO: Final = 60
FOLDS: Final = 10
_KEYS = frozenset({"id", "title", "text", "label"})


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text of an examples file, with its line number."""

    text: str
    label: bool
    line: int


def _example(data: object, number: int) -> Example:
    if not isinstance(data, dict):
        raise ValueError('expected a JSON object like {"text": "...", "label": true}')
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} (expected text and label, and optionally title, id)")
    for key in ("title", "text"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f"{key}: expected text, got {type(data[key]).__name__}")
    if "label" not in data:
        raise ValueError("label: missing (true if the text is an example of the dynamic, else false)")
    if not isinstance(data["label"], bool):
        raise ValueError(f"label: expected true or false, got {data['label']!r}")
    text = combine(data.get("title"), data.get("text"))
    if not text:
        raise ValueError("no text (title and text are empty)")
    return Example(text, data["label"], number)


def read_examples(path: str | Path, *, minimum: int = MIN_PER_CLASS) -> list[Example]:
    """Every example in a JSONL file; a bad line, a text labelled both ways, or fewer than ``minimum`` positives
    or negatives raise :class:`~stackwatch.signals.corpus.CorpusError` naming the file (and the line)."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CorpusError(f"{file}: cannot read: {error}") from error
    examples: list[Example] = []
    seen: dict[str, Example] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise CorpusError(f"{file}:{number}: not JSON: {error}") from error
        try:
            example = _example(data, number)
        except ValueError as error:
            raise CorpusError(f"{file}:{number}: {error}") from error
        twin = seen.setdefault(example.text, example)
        if twin.label != example.label:
            raise CorpusError(f"{file}:{number}: the same text as line {twin.line}, with the opposite label")
        examples.append(example)
    positives = sum(example.label for example in examples)
    negatives = len(examples) - positives
    if positives < minimum or negatives < minimum:
        raise CorpusError(
            f"{file}: {positives} positive and {negatives} negative example(s); training needs at least {minimum} "
            'of each ({"text": ..., "label": true} and {"text": ..., "label": false})'
        )
    return examples


def _fit(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    """Coefficients (the bias last) of the class-balanced logistic regression with an L2 penalty on all but the
    bias, by Newton's method."""
    weight = np.where(y, 0.5 / y.sum(), 0.5 / (~y).sum())
    design = np.hstack([x, np.ones((x.shape[0], 1))])
    penalty = np.full(design.shape[1], strength)
    penalty[-1] = 1e-8  # the bias is free; this only keeps the Hessian invertible
    theta = np.zeros(design.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        gradient = design.T @ (weight * (p - y)) + penalty * theta
        hessian = (design.T * (weight * p * (1.0 - p))) @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-9:
            break
    return theta


def _fit_nonnegative_keyword(x: np.ndarray, y: np.ndarray, strength: float, keyword: bool) -> np.ndarray:
    """As :func:`_fit`; the keyword feature (the last column when ``keyword``) may only raise a score: a negative
    weight is refitted as 0."""
    theta = _fit(x, y, strength)
    if keyword and theta[-2] < 0:
        theta = np.insert(_fit(x[:, :-1], y, strength), -1, 0.0)
    return theta


def _out_of_fold(x: np.ndarray, y: np.ndarray, strength: float, keyword: bool) -> np.ndarray:
    rows = np.arange(x.shape[0])
    folds = rows if x.shape[0] <= LEAVE_ONE_OUT_UP_TO else rows % FOLDS
    probabilities = np.empty(x.shape[0])
    for fold in np.unique(folds):
        held = folds == fold
        theta = _fit_nonnegative_keyword(x[~held], y[~held], strength, keyword)
        probabilities[held] = 1.0 / (1.0 + np.exp(-(x[held] @ theta[:-1] + theta[-1])))
    return probabilities


def _log_loss(probabilities: np.ndarray, y: np.ndarray) -> float:
    clipped = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return float(-(np.log(clipped[y]).mean() + np.log(1 - clipped[~y]).mean()) / 2)  # class-balanced


def train_dynamic_head(
    dynamic: str,
    examples: Sequence[Example],
    embeddings: np.ndarray,
    keywords: Sequence[str],
    *,
    encoder: str,
    adapter: str | None,
    version: str | None = None,
) -> DynamicHead:
    """Fit ``dynamic``'s head on every example (``embeddings`` row by row, from the encoder the classifier runs)
    and choose its L2 strength and threshold out of fold."""
    y = np.array([example.label for example in examples])
    x = embeddings.astype(np.float64)
    keyword = bool(keywords)
    if keyword:
        hits = KeywordFeature(keywords).hits([example.text for example in examples])
        x = np.hstack([x, hits[:, None].astype(np.float64)])
    losses = {}
    best: tuple[float, float, np.ndarray] | None = None
    for strength in L2_STRENGTHS:
        probabilities = _out_of_fold(x, y, strength, keyword)
        losses[strength] = round(_log_loss(probabilities, y), 4)
        if best is None or losses[strength] < best[0]:
            best = (losses[strength], strength, probabilities)
    assert best is not None
    _, strength, probabilities = best
    threshold = best_threshold(probabilities, y)
    predicted = probabilities >= threshold
    tp, fp, fn = int((predicted & y).sum()), int((predicted & ~y).sum()), int((~predicted & y).sum())
    theta = _fit_nonnegative_keyword(x, y, strength, keyword)
    dimension = embeddings.shape[1]
    weights = tuple(float(w) for w in theta[:dimension])
    digest = hashlib.sha256(json.dumps([weights, list(keywords), adapter]).encode()).hexdigest()[:8]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return DynamicHead(
        dynamic=dynamic,
        version=version or f"{encoder}+{dynamic}-{stamp}-{digest}",
        encoder=encoder,
        adapter=adapter,
        weights=weights,
        bias=float(theta[-1]),
        keyword_weight=float(theta[dimension]) if keyword else 0.0,
        keywords=tuple(keywords),
        threshold=threshold,
        metrics={
            "examples": len(examples),
            "positives": int(y.sum()),
            "negatives": int((~y).sum()),
            "keyword_matches": int(x[:, dimension].sum()) if keyword else 0,
            "l2": strength,
            "out_of_fold": "leave-one-out" if len(examples) <= LEAVE_ONE_OUT_UP_TO else f"{FOLDS} folds",
            "out_of_fold_log_loss": losses,
            "out_of_fold_precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
            "out_of_fold_recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
            "out_of_fold_f1": round(f1(tp, fp, fn), 4),
        },
    )
