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

Each label comes with its explanation: the sentence that added most to the dynamic's logit, read from the token
states of the same forward pass (:mod:`stackwatch.signals.explanations`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from stackwatch.signals.classifier import Classification
from stackwatch.signals.encoder import SentenceEncoder
from stackwatch.signals.explanations import TokenStates, strongest
from stackwatch.signals.head import Head
from stackwatch.signals.messages import Embedding, Explanation
from stackwatch.signals.stories import dynamics_basis, event_vectors, quantize
from stackwatch.signals.taxonomy import Taxonomy
from stackwatch.signals.user_dynamics import KEYWORD_BOOST, SIMILARITY_SHARPNESS, DynamicScorer

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
        self._weights = {
            d.name: (np.array(d.weights, dtype=np.float32), d.bias) for d in (head.dynamics if head is not None else ())
        }
        self._scorers = {
            dynamic.name: DynamicScorer.build(dynamic, encoder, similarity_threshold)
            for dynamic in taxonomy
            if dynamic.name not in known
        }
        self._prototypes = {name: scorer.prototypes for name, scorer in self._scorers.items()}
        self._version = head.version if head is not None else f"{encoder.name}+similarity"
        # Stories compare embeddings with the head's dynamic directions removed, so the space is the head's too.
        self._dynamics = dynamics_basis([weights for weights, _ in self._weights.values()])
        encoded = f"{encoder.name}+{encoder.adapter}" if encoder.adapter else encoder.name
        self._space = f"{encoded}/events-{head.version}" if head is not None else encoded

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
        """Labels, scores and embedding of each text, and the explanation of each label."""
        if not texts:
            return []
        embeddings, tokens = self._encoder.encode_tokens(texts)
        results = self.classify_embeddings(embeddings, texts)
        return [
            self._explained(text, states, result, embedding)
            for text, states, result, embedding in zip(texts, tokens, results, embeddings, strict=True)
        ]

    def _explained(
        self, text: str, tokens: TokenStates, result: Classification, embedding: np.ndarray
    ) -> Classification:
        if not result.labels:
            return result
        linear = [self._linear(name, text, embedding) for name in result.labels]
        found = strongest(
            text,
            tokens,
            np.stack([direction for direction, _, _ in linear]),
            np.array([offset for _, offset, _ in linear]),
            np.array([scale for _, _, scale in linear]),
        )
        explanations = tuple(
            Explanation(name, sentence, score)
            for name, (sentence, score) in zip(result.labels, found, strict=True)
            if sentence
        )
        return dataclasses.replace(result, explanations=explanations)

    def _linear(self, name: str, text: str, embedding: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``(d, c, k)`` with ``name``'s logit for this text equal to ``k (d·e + c)``: what its explanation splits.
        A keyword feature is constant over the text, so it joins the bias ``c``."""
        scorer = self._scorers.get(name)
        if scorer is None:
            weights, bias = self._weights[name]
            return weights, bias, 1.0
        hit = float(scorer.keywords.hits([text])[0])
        if scorer.head is not None:
            head = scorer.head
            return np.asarray(head.weights, dtype=np.float32), head.bias + head.keyword_weight * hit, 1.0
        # the logit of the similarity curve, through the prototype that gave the similarity
        prototype = scorer.prototypes[int(np.argmax(scorer.prototypes @ embedding))]
        return prototype, KEYWORD_BOOST * hit - scorer.threshold, SIMILARITY_SHARPNESS

    def classify_embeddings(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> list[Classification]:
        """Classify already encoded texts (for evaluation and benchmarks that reuse embeddings); each result
        carries its text's embedding for the store's event clustering, the head's directions removed
        (``event_vectors``) and int8-quantized. Without ``texts`` no
        user dynamic's keyword matches."""
        probabilities = self._head.probabilities(embeddings) if self._head is not None else {}
        cuts = dict(self._thresholds)
        for name, scorer in self._scorers.items():
            probabilities[name], cuts[name] = scorer.score(embeddings, texts)
        names = self._taxonomy.names
        events = event_vectors(embeddings, self._dynamics)
        results = []
        for row in range(embeddings.shape[0]):
            scores = {name: round(float(probabilities[name][row]), 4) for name in names}
            labels = tuple(name for name in names if probabilities[name][row] >= cuts[name])
            embedding = Embedding(self._space, quantize(events[row]))
            results.append(Classification(labels, scores, embedding))
        return results
