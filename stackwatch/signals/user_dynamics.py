"""How the transformer backend scores a dynamic its classifier head has no weights for (one a user added).

Such a dynamic is scored one of two ways, each labelled at its own cut (``dynamics[].threshold``):

- **by similarity**: the cosine between the text and the closest of its description and examples, plus
  :data:`KEYWORD_BOOST` when one of its ``keywords`` matches the text, labelled at ``threshold`` (by default
  ``classifier.similarity_threshold``) and reported through a logistic curve centred there;
- **by its own head**, a :class:`DynamicHead` file from ``stackwatch train --dynamic``: a logistic regression over
  the embedding and one keyword feature (1 when a keyword matches), labelled at the probability the training
  chose (or ``threshold``).

A keyword matches as a whole word or phrase, in any case, with RE2 (linear time in the text)::

    >>> feature = KeywordFeature(["sovereign (ai|compute)"])
    >>> feature.hits(["Sovereign AI push", "the sovereign aix"]).tolist()
    [1.0, 0.0]

Scores depend on the text alone, never on the texts classified with it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import re2

from stackwatch.errors import ClassifierError
from stackwatch.signals.encoder import SentenceEncoder
from stackwatch.signals.head import save_json
from stackwatch.signals.taxonomy import Dynamic

__all__ = [
    "DYNAMIC_HEAD_FORMAT",
    "KEYWORD_BOOST",
    "SIMILARITY_SHARPNESS",
    "DynamicHead",
    "DynamicScorer",
    "KeywordFeature",
    "keyword_problem",
]

log = logging.getLogger(__name__)

KEYWORD_BOOST: Final = 0.1
"""Cosine similarity added to a similarity-scored dynamic's score when any of its keywords matches (once, however
many match): a text 0.1 under the threshold with a keyword sits on it."""
SIMILARITY_SHARPNESS: Final = 20.0
"""Slope of the logistic curve that turns a similarity into a score: ±0.1 around the threshold is 0.12 / 0.88."""
DYNAMIC_HEAD_FORMAT: Final = "stackwatch-dynamic-head/1"

_NOT_WORD = r"[^\pL\pN_]"  # what Python's \w is not, so a keyword matches whole words only


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = False
    options.dot_nl = True  # as the keyword backend's re.DOTALL
    return options


def _compile(pattern: str) -> Any:
    return re2.compile(f"(?:^|{_NOT_WORD})(?:{pattern})(?:{_NOT_WORD}|$)", _options())


def keyword_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a keyword (both backends read it: Python ``re`` and RE2), or None.

    >>> keyword_problem("(?<=ai) chips")
    'RE2 cannot run it: invalid perl operator: (?<='
    """
    try:
        re.compile(pattern)
    except re.error as error:
        return f"not a regular expression: {error}"
    try:
        _compile(pattern)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        return f"RE2 cannot run it: {reason.decode() if isinstance(reason, bytes) else reason}"
    return None


class KeywordFeature:
    """Whether any of a dynamic's keywords matches a text, as a whole word or phrase, in any case."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._programs = [_compile(pattern) for pattern in self.patterns]

    def hits(self, texts: Sequence[str] | None, rows: int | None = None) -> np.ndarray:
        """1.0 per text with a match, else 0.0; with no texts (``rows`` embeddings only) every row is 0.0."""
        if texts is None:
            return np.zeros(rows or 0, dtype=np.float32)
        return np.array([float(any(p.search(text) for p in self._programs)) for text in texts], dtype=np.float32)


@dataclass(frozen=True)
class DynamicHead:
    """One dynamic's logistic regression over an encoder's embeddings and its keyword feature; ``stackwatch train
    --dynamic`` writes it, ``dynamics[].head`` names it. ``keywords`` are the patterns it was trained with: the
    feature means what it meant in training, whatever the configuration says now."""

    dynamic: str
    version: str
    encoder: str
    adapter: str | None
    """Digest of the encoder adapter the embeddings came through (the classifier head's), if any."""
    weights: tuple[float, ...]
    bias: float
    keyword_weight: float
    keywords: tuple[str, ...]
    threshold: float
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def dimension(self) -> int:
        return len(self.weights)

    def probabilities(self, embeddings: np.ndarray, hits: np.ndarray) -> np.ndarray:
        """One probability per embedding row; ``hits`` is the keyword feature per row."""
        logits = embeddings @ np.asarray(self.weights, dtype=np.float32) + self.bias + self.keyword_weight * hits
        probabilities: np.ndarray = 1.0 / (1.0 + np.exp(-logits))
        return probabilities

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": DYNAMIC_HEAD_FORMAT,
            "dynamic": self.dynamic,
            "version": self.version,
            "encoder": self.encoder,
            "adapter": self.adapter,
            "threshold": self.threshold,
            "bias": self.bias,
            "keyword_weight": self.keyword_weight,
            "keywords": list(self.keywords),
            "metrics": self.metrics,
            "weights": list(self.weights),
        }

    def save(self, path: str | Path) -> Path:
        return save_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path, dynamic: str) -> DynamicHead:
        """The head in ``path`` for ``dynamic``; a ClassifierError naming ``dynamics[].head`` if it is not one."""
        origin = f"dynamics[{dynamic}].head: {path}"
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ClassifierError(f"{origin}: cannot read it: {error}") from error
        try:
            if data.get("format") != DYNAMIC_HEAD_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {DYNAMIC_HEAD_FORMAT!r}")
            head = cls(
                dynamic=str(data["dynamic"]),
                version=str(data["version"]),
                encoder=str(data["encoder"]),
                adapter=None if data["adapter"] is None else str(data["adapter"]),
                weights=tuple(float(w) for w in data["weights"]),
                bias=float(data["bias"]),
                keyword_weight=float(data["keyword_weight"]),
                keywords=tuple(str(k) for k in data["keywords"]),
                threshold=float(data["threshold"]),
                metrics=dict(data["metrics"]),
            )
            for pattern in head.keywords:
                if (problem := keyword_problem(pattern)) is not None:
                    raise ValueError(f"keyword {pattern!r}: {problem}")
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise ClassifierError(f"{origin}: not a stackwatch dynamic head: {error}") from error
        if head.dynamic != dynamic:
            raise ClassifierError(f"{origin}: a head for {head.dynamic!r}, not for {dynamic!r}")
        return head


@dataclass(frozen=True)
class DynamicScorer:
    """Scores one dynamic by similarity to its prototypes or by its own head, with its keyword feature."""

    name: str
    kind: Literal["similarity", "head"]
    keywords: KeywordFeature
    threshold: float
    """The cut on the raw score: the similarity, or the head's probability."""
    prototypes: np.ndarray
    """The embeddings of its description and examples (kept with a head too: explanations read them)."""
    head: DynamicHead | None = None

    @classmethod
    def build(cls, dynamic: Dynamic, encoder: SentenceEncoder, similarity_threshold: float) -> DynamicScorer:
        """The dynamic's own head if it names one that fits ``encoder``, else similarity (a head that does not
        fit is refused with a warning, as the classifier head is)."""
        prototypes = encoder.encode([dynamic.description, *dynamic.examples])
        if dynamic.head is not None:
            head = DynamicHead.load(dynamic.head, dynamic.name)
            if (head.encoder, head.adapter, head.dimension) == (encoder.name, encoder.adapter, encoder.dimension):
                threshold = dynamic.threshold if dynamic.threshold is not None else head.threshold
                return cls(dynamic.name, "head", KeywordFeature(head.keywords), threshold, prototypes, head)
            log.warning(
                "dynamic %s: head %s was trained on %s (adapter %s), not %s (adapter %s): scored by similarity",
                dynamic.name,
                dynamic.head,
                head.encoder,
                head.adapter,
                encoder.name,
                encoder.adapter,
            )
        threshold = dynamic.threshold if dynamic.threshold is not None else similarity_threshold
        return cls(dynamic.name, "similarity", KeywordFeature(dynamic.keywords), threshold, prototypes)

    def score(self, embeddings: np.ndarray, texts: Sequence[str] | None) -> tuple[np.ndarray, float]:
        """Per row a probability-like score, and the score at which it is a label."""
        hits = self.keywords.hits(texts, embeddings.shape[0])
        if self.head is not None:
            return self.head.probabilities(embeddings, hits), self.threshold
        similarity = (embeddings @ self.prototypes.T).max(axis=1) + KEYWORD_BOOST * hits
        return 1.0 / (1.0 + np.exp(-SIMILARITY_SHARPNESS * (similarity - self.threshold))), 0.5
