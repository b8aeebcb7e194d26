"""Zero-shot tagging with a natural-language-inference model (transformers' zero-shot pipeline).

For users with an NLI model (e.g. ``facebook/bart-large-mnli``) and no labelled data::

    classifier: {backend: zero-shot, model: facebook/bart-large-mnli}

Each dynamic's description is a candidate label ("This article is about <description>"), scored
independently (multi-label); a dynamic is a label when its entailment probability reaches ``threshold``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackwatch.errors import ClassifierError
from stackwatch.signals.classifier import Classification
from stackwatch.signals.taxonomy import Taxonomy

__all__ = ["ZeroShotClassifier"]

TEMPLATE = "This article is about {}"


class ZeroShotClassifier:
    """Multi-label zero-shot classification over the taxonomy's descriptions."""

    def __init__(self, model: str | None, taxonomy: Taxonomy, *, threshold: float = 0.5, batch_size: int = 8) -> None:
        if not model:
            raise ClassifierError(
                "classifier.model: the zero-shot backend needs an NLI model (a Hugging Face id such as "
                "facebook/bart-large-mnli, or a local path); none is bundled"
            )
        try:
            from transformers import pipeline
        except ImportError as error:  # pragma: no cover - transformers is a core dependency
            raise ClassifierError("the zero-shot backend needs transformers: pip install transformers") from error
        local_only = Path(model).exists() or os.environ.get("HF_HUB_OFFLINE", "1") != "0"
        try:
            # Offline-ness comes from HF_HUB_OFFLINE: the pipeline passes its own local_files_only downstream.
            self._pipeline: Any = pipeline("zero-shot-classification", model=model)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            hint = " (offline: only local paths and cached models; HF_HUB_OFFLINE=0 downloads)" if local_only else ""
            raise ClassifierError(
                f"classifier.model: cannot load NLI model {model!r} for the zero-shot backend{hint}: {error}"
            ) from error
        self._model = model
        self._names = taxonomy.names
        self._labels = {dynamic.description: dynamic.name for dynamic in taxonomy}
        self._threshold = threshold
        self._batch_size = batch_size

    @property
    def version(self) -> str:
        return f"zero-shot:{self._model}"

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        outputs = self._pipeline(
            list(texts),
            candidate_labels=list(self._labels),
            hypothesis_template=TEMPLATE,
            multi_label=True,
            batch_size=self._batch_size,
        )
        if isinstance(outputs, dict):
            outputs = [outputs]
        results = []
        for output in outputs:
            by_name = {
                self._labels[label]: float(score)
                for label, score in zip(output["labels"], output["scores"], strict=True)
            }
            scores = {name: round(by_name.get(name, 0.0), 4) for name in self._names}
            results.append(Classification(tuple(n for n in self._names if scores[n] >= self._threshold), scores))
        return results
