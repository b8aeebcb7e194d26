"""The multi-label head: one logistic regression per dynamic over sentence embeddings, with its own threshold.

Trained by ``stackwatch train``; saved as JSON with a version, so a service only ever loads it::

    >>> head = Head.bundled()                                           # doctest: +SKIP
    >>> head.version, head.names                                        # doctest: +SKIP
    ('all-MiniLM-L6-v2+head-20250101T000000-1a2b3c4d', ('exclusivity', 'capex', 'decoupling', 'edge'))

Thresholds are chosen per dynamic on a validation split (the F1-best cut, ties broken towards 0.5).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stackwatch.errors import ClassifierError
from stackwatch.signals.evaluation import f1

__all__ = ["FORMAT", "DynamicWeights", "Head", "best_threshold", "train_head"]

FORMAT = 1
BUNDLED = "head.json"
WEIGHT_DECAYS = (1e-5, 3e-5, 1e-4, 1e-3)
"""L2 strengths tried in training; the one with the best validation macro-F1 wins."""
EPOCHS = 500


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
        }

    def save(self, path: str | Path) -> Path:
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return file

    @classmethod
    def from_dict(cls, data: Any, origin: str) -> Head:
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
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
            return cls(str(data["version"]), str(data["encoder"]), dimension, dynamics, dict(data["metrics"]))
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


def best_threshold(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """The cut in [0.05, 0.95] with the best F1 on these examples; ties go to the cut nearest 0.5."""
    if not truth.any():
        return 0.5
    best = (-1.0, 0.0, 0.5)
    for cut in np.round(np.arange(0.05, 0.951, 0.01), 2):
        predicted = probabilities >= cut
        score = f1(int((predicted & truth).sum()), int((predicted & ~truth).sum()), int((~predicted & truth).sum()))
        candidate = (score, -abs(float(cut) - 0.5), float(cut))
        best = max(best, candidate)
    return best[2]


def _label_matrix(labels: Sequence[Sequence[str]], names: Sequence[str]) -> np.ndarray:
    return np.array([[name in row for name in names] for row in labels], dtype=bool)


def _fit(x: np.ndarray, y: np.ndarray, weight_decay: float, tick: Callable[[], None]) -> tuple[np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    features = torch.from_numpy(x)
    targets = torch.from_numpy(y.astype(np.float32))
    positives = targets.sum(dim=0).clamp(min=1.0)
    pos_weight = (targets.shape[0] - positives) / positives  # balance rare dynamics against the many negatives
    weights = torch.zeros(x.shape[1], y.shape[1], requires_grad=True)
    bias = torch.zeros(y.shape[1], requires_grad=True)
    optimiser = torch.optim.Adam([weights, bias], lr=0.05)
    loss_of = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    for _ in range(EPOCHS):
        optimiser.zero_grad()
        loss = loss_of(features @ weights + bias, targets) + weight_decay * (weights**2).sum()
        loss.backward()
        optimiser.step()
        tick()
    return weights.detach().numpy().T.copy(), bias.detach().numpy().copy()


def train_head(
    train_x: np.ndarray,
    train_labels: Sequence[Sequence[str]],
    validation_x: np.ndarray,
    validation_labels: Sequence[Sequence[str]],
    names: Sequence[str],
    *,
    encoder: str,
    tick: Callable[[], None] = lambda: None,
    version: str | None = None,
) -> Head:
    """Fit one logistic regression per dynamic on ``train_x`` and pick its threshold on ``validation_x``.

    ``tick`` is called once per optimisation step (``len(WEIGHT_DECAYS) * EPOCHS`` in all): a progress hook.
    """
    y_train = _label_matrix(train_labels, names)
    y_valid = _label_matrix(validation_labels, names)
    missing = [name for index, name in enumerate(names) if not y_train[:, index].any()]
    if missing:
        raise ClassifierError(f"no training example is labelled {', '.join(missing)}")
    best: tuple[float, list[DynamicWeights], dict[str, float], float] | None = None
    for weight_decay in WEIGHT_DECAYS:
        weights, biases = _fit(train_x, y_train, weight_decay, tick)
        probabilities = 1.0 / (1.0 + np.exp(-(validation_x @ weights.T + biases)))
        dynamics, scores = [], {}
        for index, name in enumerate(names):
            cut = best_threshold(probabilities[:, index], y_valid[:, index])
            predicted = probabilities[:, index] >= cut
            truth = y_valid[:, index]
            scores[name] = round(
                f1(int((predicted & truth).sum()), int((predicted & ~truth).sum()), int((~predicted & truth).sum())),
                4,
            )
            dynamics.append(DynamicWeights(name, tuple(float(w) for w in weights[index]), float(biases[index]), cut))
        macro = sum(scores.values()) / len(scores)
        if best is None or macro > best[0]:
            best = (macro, dynamics, scores, weight_decay)
    assert best is not None
    macro, dynamics, scores, weight_decay = best
    digest = hashlib.sha256(json.dumps([d.weights for d in dynamics]).encode()).hexdigest()[:8]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    metrics = {
        "validation_f1": scores,
        "validation_macro_f1": round(macro, 4),
        "weight_decay": weight_decay,
        "train_examples": len(train_labels),
        "validation_examples": len(validation_labels),
    }
    return Head(
        version=version or f"{encoder}+head-{stamp}-{digest}",
        encoder=encoder,
        dimension=int(train_x.shape[1]),
        dynamics=tuple(dynamics),
        metrics=metrics,
    )
