"""The transformer classifier: a sentence encoder, a trained multi-label head, and a similarity fallback.

    >>> classifier = TransformerClassifier(Encoder.load(), Head.bundled(), Taxonomy.builtin())  # doctest: +SKIP
    >>> classifier.classify(["Anthropic will train on a million Google TPUs"])[0].labels       # doctest: +SKIP
    ('decoupling',)

Dynamics the head has weights for use them and their validation-chosen thresholds (or ``dynamics[].threshold``).
A dynamic the head does not know (one a user added in ``dynamics:``) is scored by its own head file, if it names
one, else by similarity: the cosine between the text and the closest of the dynamic's description and examples,
raised when one of its keywords matches, labelled at its ``threshold`` (``similarity_threshold``, 0.45, by default)
and reported as a probability-like score through a logistic curve centred there
(:mod:`stackwatch.signals.user_dynamics`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from stackwatch.signals.classifier import Classification
from stackwatch.signals.encoder import SentenceEncoder
from stackwatch.signals.head import Head
from stackwatch.signals.messages import Embedding
from stackwatch.signals.stories import quantize
from stackwatch.signals.taxonomy import Taxonomy
from stackwatch.signals.user_dynamics import SIMILARITY_SHARPNESS, DynamicScorer

__all__ = ["SIMILARITY_SHARPNESS", "SIMILARITY_THRESHOLD", "TransformerClassifier"]

log = logging.getLogger(__name__)

SIMILARITY_THRESHOLD = 0.45
"""Cosine similarity (MiniLM embeddings) at which a head-less dynamic becomes a label."""


class TransformerClassifier:
    """Tags texts with the taxonomy's dynamics. Thread-safe; build once per process."""

    def __init__(
        self,
        encoder: SentenceEncoder,
        head: Head | None,
        taxonomy: Taxonomy,
        *,
        similarity_threshold: float = SIMILARITY_THRESHOLD,
    ) -> None:
        adapter = head.adapter.digest if head is not None and head.adapter is not None else None
        if head is not None and (
            head.encoder != encoder.name or head.dimension != encoder.dimension or adapter != encoder.adapter
        ):
            log.warning(
                "classifier head %s was trained on %s (adapter %s), not %s (adapter %s): "
                "every dynamic falls back to similarity",
                head.version,
                head.encoder,
                adapter,
                encoder.name,
                encoder.adapter,
            )
            head = None
        self._encoder = encoder
        self._taxonomy = taxonomy
        self._threshold = similarity_threshold
        own = {dynamic.name for dynamic in taxonomy if dynamic.head is not None}  # a dynamic's own head wins
        known = set(head.names) - own if head is not None else set()
        self._head = head
        self._thresholds = {d.name: d.threshold for d in head.dynamics} if head is not None else {}
        self._thresholds |= {d.name: d.threshold for d in taxonomy if d.name in known and d.threshold is not None}
        self._scorers = {
            dynamic.name: DynamicScorer.build(dynamic, encoder, similarity_threshold)
            for dynamic in taxonomy
            if dynamic.name not in known
        }
        self._prototypes = {name: scorer.prototypes for name, scorer in self._scorers.items()}
        self._version = head.version if head is not None else f"{encoder.name}+similarity"
        self._space = f"{encoder.name}+{encoder.adapter}" if encoder.adapter else encoder.name

    @property
    def version(self) -> str:
        return self._version

    @property
    def encoder(self) -> SentenceEncoder:
        return self._encoder

    @property
    def similarity_dynamics(self) -> tuple[str, ...]:
        """The dynamics scored by similarity because no head has weights for them."""
        return tuple(name for name, scorer in self._scorers.items() if scorer.kind == "similarity")

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        if not texts:
            return []
        return self.classify_embeddings(self._encoder.encode(texts), texts)

    def classify_embeddings(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> list[Classification]:
        """Classify already encoded texts (for evaluation and benchmarks that reuse embeddings); each result
        carries its text's embedding, int8-quantized, for the store's event clustering. Without ``texts`` no
        user dynamic's keyword matches."""
        probabilities = self._head.probabilities(embeddings) if self._head is not None else {}
        cuts = dict(self._thresholds)
        for name, scorer in self._scorers.items():
            probabilities[name], cuts[name] = scorer.score(embeddings, texts)
        names = self._taxonomy.names
        results = []
        for row in range(embeddings.shape[0]):
            scores = {name: round(float(probabilities[name][row]), 4) for name in names}
            labels = tuple(name for name in names if probabilities[name][row] >= cuts[name])
            embedding = Embedding(self._space, quantize(embeddings[row]))
            results.append(Classification(labels, scores, embedding))
        return results
