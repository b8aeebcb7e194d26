"""The multi-label head, the classifier's artefact: one logistic regression per dynamic over sentence embeddings,
with its own threshold, and optionally the encoder :class:`~stackwatch.signals.encoder.Adapter` it was trained
with.

Trained by ``stackwatch train`` (:mod:`stackwatch.signals.training`); saved as JSON with a version, so a service
only ever loads it::

    >>> head = Head.bundled()                                           # doctest: +SKIP
    >>> head.version, head.names                                        # doctest: +SKIP
    ('all-MiniLM-L6-v2+head-20250101T000000-1a2b3c4d', ('exclusivity', 'capex', 'decoupling', 'edge'))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from stackwatch.errors import ClassifierError
from stackwatch.signals.encoder import Adapter

__all__ = ["FORMAT", "DynamicWeights", "Head", "save_json"]

FORMAT = 2
"""Format 2 adds ``adapter`` (null or the encoder adapter); format 1 files (no adapter) still load."""
BUNDLED = "head.json"


@dataclass(frozen=True, slots=True)
class DynamicWeights:
    """One dynamic's logistic regression and the probability above which it is a label."""

    name: str
    weights: tuple[float, ...]
    bias: float
    threshold: float


@dataclass(frozen=True)
class Head:
    """Weights for some dynamics over one encoder's embeddings."""

    version: str
    encoder: str
    dimension: int
    dynamics: tuple[DynamicWeights, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    adapter: Adapter | None = None
    """Low-rank updates to merge into the encoder before use (``Encoder.load(adapter=...)``)."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dynamic.name for dynamic in self.dynamics)

    def probabilities(self, embeddings: np.ndarray) -> dict[str, np.ndarray]:
        """Per dynamic, one probability per embedding row."""
        weights = np.array([dynamic.weights for dynamic in self.dynamics], dtype=np.float32)
        biases = np.array([dynamic.bias for dynamic in self.dynamics], dtype=np.float32)
        logits = embeddings @ weights.T + biases
        probabilities = 1.0 / (1.0 + np.exp(-logits))
        return {dynamic.name: probabilities[:, index] for index, dynamic in enumerate(self.dynamics)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "encoder": self.encoder,
            "dimension": self.dimension,
            "metrics": self.metrics,
            "dynamics": [
                {"name": d.name, "threshold": d.threshold, "bias": d.bias, "weights": list(d.weights)}
                for d in self.dynamics
            ],
            "adapter": self.adapter.to_dict() if self.adapter is not None else None,
        }

    def save(self, path: str | Path) -> Path:
        return save_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, origin: str) -> Head:
        try:
            if data.get("format") not in (1, FORMAT):
                raise ValueError(f"format {data.get('format')!r}, expected 1 or {FORMAT}")
            dimension = int(data["dimension"])
            dynamics = tuple(
                DynamicWeights(
                    str(d["name"]),
                    tuple(float(w) for w in d["weights"]),
                    float(d["bias"]),
                    float(d["threshold"]),
                )
                for d in data["dynamics"]
            )
            for dynamic in dynamics:
                if len(dynamic.weights) != dimension:
                    raise ValueError(f"{dynamic.name}: {len(dynamic.weights)} weights, expected {dimension}")
            adapter = Adapter.from_dict(data["adapter"]) if data.get("adapter") is not None else None
            if adapter is not None and adapter.base != str(data["encoder"]):
                raise ValueError(f"adapter for {adapter.base!r}, head for {data['encoder']!r}")
            return cls(str(data["version"]), str(data["encoder"]), dimension, dynamics, dict(data["metrics"]), adapter)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise ClassifierError(f"{origin}: not a stackwatch classifier head: {error}") from error

    @classmethod
    def load(cls, path: str | Path) -> Head:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ClassifierError(f"classifier.head: cannot read {path}: {error}") from error
        return cls.from_dict(data, str(path))

    @classmethod
    def bundled(cls) -> Head:
        """The head trained on the repository's corpus, shipped as package data."""
        resource = resources.files("stackwatch").joinpath("models", BUNDLED)
        return cls.from_dict(json.loads(resource.read_text(encoding="utf-8")), f"stackwatch/models/{BUNDLED}")


def save_json(path: str | Path, data: Any) -> Path:
    """Write a model artefact as indented JSON, creating its directory; returns the path."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return file
