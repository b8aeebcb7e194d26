"""Classifiers: text in, dynamics and scores out.

Every backend has the same small interface, so the stream, the CLI and the benchmarks do not care which one
runs::

    >>> classifier = KeywordClassifier(Taxonomy.builtin())
    >>> [result.labels for result in classifier.classify(["Meta signs a deal for Google TPUs"])]
    [('decoupling',)]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from stackwatch.signals.messages import Article, Embedding, Explanation, TaggedArticle
from stackwatch.signals.taxonomy import Taxonomy

__all__ = ["NO_TEXT", "Classification", "Classifier", "KeywordClassifier"]

NO_TEXT = "no text to classify"


@dataclass(frozen=True, slots=True)
class Classification:
    """The dynamics one text speaks to, with a probability-like score per dynamic, the text's sentence
    embedding if the backend computed one (the store groups articles into events by it), and the explanation of
    each label if the backend gives them (the transformer backend: :mod:`stackwatch.signals.explanations`)."""

    labels: tuple[str, ...]
    scores: dict[str, float]
    embedding: Embedding | None = None
    explanations: tuple[Explanation, ...] = ()

    def tagged(self, article: Article, model_version: str) -> TaggedArticle:
        """``article`` with these tags, as the classify agent sends it and ``reclassify`` writes it."""
        return TaggedArticle(
            article,
            self.labels,
            self.scores,
            model_version,
            embedding=self.embedding,
            explanations=self.explanations,
        )


class Classifier(Protocol):
    """What the classify agent and the CLI need of a classifier."""

    @property
    def version(self) -> str: ...

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """One classification per text, in order. Texts are never empty (callers dead-letter those)."""
        ...


class KeywordClassifier:
    """One set of regular expressions per dynamic: the honest baseline the transformer is measured against."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self._patterns = {
            dynamic.name: [re.compile(pattern, re.IGNORECASE | re.DOTALL) for pattern in dynamic.keywords]
            for dynamic in taxonomy
        }

    @property
    def version(self) -> str:
        return "keyword-1"

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        results = []
        for text in texts:
            scores = {
                name: min(1.0, 0.5 * sum(1 for pattern in patterns if pattern.search(text)))
                for name, patterns in self._patterns.items()
            }
            labels = tuple(name for name, score in scores.items() if score >= 0.5)
            results.append(Classification(labels, scores))
        return results
