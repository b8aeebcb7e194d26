"""The transformer classifier: a sentence encoder, a trained multi-label head, and a similarity fallback.

    >>> classifier = TransformerClassifier(Encoder.load(), Head.bundled(), Taxonomy.builtin())  # doctest: +SKIP
    >>> classifier.classify(["Anthropic will train on a million Google TPUs"])[0].labels       # doctest: +SKIP
    ('decoupling',)

Dynamics the head has weights for use them and their validation-chosen thresholds. A dynamic the head does not
know (one a user added in ``dynamics:``) is scored by similarity instead: the cosine between the text and the
closest of the dynamic's description and examples, labelled at ``similarity_threshold`` (0.45 by default) and
reported as a probability-like score through a logistic curve centred on that threshold.
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

__all__ = ["SIMILARITY_SHARPNESS", "SIMILARITY_THRESHOLD", "TransformerClassifier"]

log = logging.getLogger(__name__)

SIMILARITY_THRESHOLD = 0.45
"""Cosine similarity (MiniLM embeddings) at which a head-less dynamic becomes a label."""
SIMILARITY_SHARPNESS = 20.0
"""Slope of the logistic curve that turns a similarity into a score: ±0.1 around the threshold is 0.12 / 0.88."""


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
        known = set(head.names) if head is not None else set()
        self._head = head
        self._thresholds = {d.name: d.threshold for d in head.dynamics} if head is not None else {}
        self._prototypes: dict[str, np.ndarray] = {}
        for dynamic in taxonomy:
            if dynamic.name not in known:
                self._prototypes[dynamic.name] = encoder.encode([dynamic.description, *dynamic.examples])
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
        """The dynamics scored by similarity because the head has no weights for them."""
        return tuple(self._prototypes)

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        if not texts:
            return []
        return self.classify_embeddings(self._encoder.encode(texts))

    def classify_embeddings(self, embeddings: np.ndarray) -> list[Classification]:
        """Classify already encoded texts (for evaluation and benchmarks that reuse embeddings); each result
        carries its text's embedding, int8-quantized, for the store's event clustering."""
        probabilities = self._head.probabilities(embeddings) if self._head is not None else {}
        cuts = dict(self._thresholds)
        for name, prototypes in self._prototypes.items():
            similarity = (embeddings @ prototypes.T).max(axis=1)
            probabilities[name] = 1.0 / (1.0 + np.exp(-SIMILARITY_SHARPNESS * (similarity - self._threshold)))
            cuts[name] = 0.5
        names = self._taxonomy.names
        results = []
        for row in range(embeddings.shape[0]):
            scores = {name: round(float(probabilities[name][row]), 4) for name in names}
            labels = tuple(name for name in names if probabilities[name][row] >= cuts[name])
            embedding = Embedding(self._space, quantize(embeddings[row]))
            results.append(Classification(labels, scores, embedding))
        return results
