"""The multi-label head: one logistic regression per dynamic over sentence embeddings, with its own threshold,
and optionally the encoder :class:`~stackwatch.signals.encoder.Adapter` it was trained with.

Trained by ``stackwatch train``; saved as JSON with a version, so a service only ever loads it::

    >>> head = Head.bundled()                                           # doctest: +SKIP
    >>> head.version, head.names                                        # doctest: +SKIP
    ('all-MiniLM-L6-v2+head-20250101T000000-1a2b3c4d', ('exclusivity', 'capex', 'decoupling', 'edge'))

Thresholds are chosen per dynamic on a validation split (the F1-best cut, ties broken towards 0.5).

:func:`fine_tune` adapts the encoder itself: low-rank (LoRA) updates of the attention query and value layers,
trained jointly with the head's logistic regressions on the multi-label loss, one adapter kept per epoch and the
best on validation chosen (no adapter at all if none beats the frozen encoder). The adapter is stored in the
head file and merged into the encoder's weights at load, so inference costs the same.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stackwatch.errors import ClassifierError
from stackwatch.signals.encoder import Adapter, Encoder, mean_pool
from stackwatch.signals.evaluation import f1

__all__ = ["FORMAT", "DynamicWeights", "FineTuning", "Head", "best_threshold", "fine_tune", "train_head"]

FORMAT = 2
"""Format 2 adds ``adapter`` (null or the encoder adapter); format 1 files (no adapter) still load."""
BUNDLED = "head.json"
WEIGHT_DECAYS = (1e-5, 3e-5, 1e-4, 1e-3)
"""L2 strengths tried in training; the one with the best validation macro-F1 wins."""
EPOCHS = 500
FINE_TUNE_EPOCHS = 4
"""Passes over the training texts when adapting the encoder; the best epoch on validation is kept."""
LORA_RANK = 8
LORA_SCALE = 2.0
LORA_TARGETS = ("attention.self.query", "attention.self.value")
"""Which Linear layers of every transformer block get a low-rank update (BERT-style module names)."""
FINE_TUNE_BATCH = 16
ADAPTER_LEARNING_RATE = 1e-3
HEAD_LEARNING_RATE = 1e-2


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
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return file

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


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run small tensor work on one thread: on a busy machine two threads make it ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
    adapter: Adapter | None = None,
    fine_tuning: dict[str, Any] | None = None,
) -> Head:
    """Fit one logistic regression per dynamic on ``train_x`` and pick its threshold on ``validation_x``.

    The embeddings must come from the encoder with ``adapter`` merged in, if there is one; ``fine_tuning`` goes
    into the metrics as it is. ``tick`` is called once per optimisation step (``len(WEIGHT_DECAYS) * EPOCHS``
    in all): a progress hook.
    """
    y_train = _label_matrix(train_labels, names)
    y_valid = _label_matrix(validation_labels, names)
    missing = [name for index, name in enumerate(names) if not y_train[:, index].any()]
    if missing:
        raise ClassifierError(f"no training example is labelled {', '.join(missing)}")
    best: tuple[float, list[DynamicWeights], dict[str, float], float] | None = None
    for weight_decay in WEIGHT_DECAYS:
        with _one_thread():
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
    weights_and_adapter = json.dumps([[d.weights for d in dynamics], adapter.digest if adapter is not None else None])
    digest = hashlib.sha256(weights_and_adapter.encode()).hexdigest()[:8]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    metrics = {
        "validation_f1": scores,
        "validation_macro_f1": round(macro, 4),
        "weight_decay": weight_decay,
        "train_examples": len(train_labels),
        "validation_examples": len(validation_labels),
    }
    if fine_tuning is not None:
        metrics["fine_tuning"] = fine_tuning
    return Head(
        version=version or f"{encoder}+head-{stamp}-{digest}",
        encoder=encoder,
        dimension=int(train_x.shape[1]),
        dynamics=tuple(dynamics),
        metrics=metrics,
        adapter=adapter,
    )


@dataclass(frozen=True)
class FineTuning:
    """What :func:`fine_tune` chose: the adapter (None: the frozen encoder was best) and why."""

    adapter: Adapter | None
    epoch: int
    validation_macro_f1: tuple[float, ...]
    """Per epoch, 0 being the frozen encoder with the starting head."""

    def summary(self) -> dict[str, Any]:
        return {
            "epochs": len(self.validation_macro_f1) - 1,
            "chosen_epoch": self.epoch,
            "validation_macro_f1_per_epoch": [round(score, 4) for score in self.validation_macro_f1],
            "rank": self.adapter.rank if self.adapter is not None else None,
            "targets": list(LORA_TARGETS),
        }


class _LowRank(torch.nn.Module):
    """A frozen Linear layer plus a trainable ``scale * up @ down`` update (``up`` starts at zero)."""

    def __init__(self, base: torch.nn.Linear, rank: int, scale: float) -> None:
        super().__init__()
        self.base = base
        self.scale = scale
        self.down = torch.nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.up = torch.nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        adapted: torch.Tensor = self.base(x) + (x @ self.down.T @ self.up.T) * self.scale
        return adapted


def _validation_macro_f1(probabilities: np.ndarray, truth: np.ndarray) -> float:
    scores = []
    for index in range(truth.shape[1]):
        predicted = probabilities[:, index] >= best_threshold(probabilities[:, index], truth[:, index])
        column = truth[:, index]
        scores.append(
            f1(int((predicted & column).sum()), int((predicted & ~column).sum()), int((~predicted & column).sum()))
        )
    return sum(scores) / len(scores)


def fine_tune(
    encoder: Encoder,
    train_texts: Sequence[str],
    train_labels: Sequence[Sequence[str]],
    validation_texts: Sequence[str],
    validation_labels: Sequence[Sequence[str]],
    start: Head,
    *,
    epochs: int = FINE_TUNE_EPOCHS,
    rank: int = LORA_RANK,
    tick: Callable[[int], None] = lambda texts: None,
) -> FineTuning:
    """Train a LoRA adapter of ``encoder`` (fp32, none merged yet) together with ``start``'s regressions.

    Deterministic (fixed seeds). After each epoch the validation texts are encoded and scored at their best
    thresholds; the epoch with the best validation macro-F1 wins, epoch 0 (the frozen encoder and ``start``)
    included. ``tick`` gets the number of texts each step processed (``epochs * len(train) + (epochs + 1) *
    len(validation)`` in all). ``encoder`` is left as it was: training works on a copy of its network.
    """
    if encoder.precision != "fp32" or encoder.adapter is not None:
        raise ClassifierError("fine-tuning needs the fp32 encoder without an adapter")
    names = start.names
    y_train = torch.from_numpy(_label_matrix(train_labels, names).astype(np.float32))
    y_valid = _label_matrix(validation_labels, names)
    torch.manual_seed(0)
    network = copy.deepcopy(encoder.model)
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    updates: dict[str, _LowRank] = {}
    for name, module in list(network.named_modules()):
        if isinstance(module, torch.nn.Linear) and name.endswith(LORA_TARGETS):
            parent_name, _, attribute = name.rpartition(".")
            update = _LowRank(module, rank, LORA_SCALE)
            setattr(network.get_submodule(parent_name), attribute, update)
            updates[name] = update
    if not updates:
        raise ClassifierError(f"{encoder.name}: no Linear layer named like {', '.join(LORA_TARGETS)} to adapt")
    weights = torch.nn.Parameter(torch.tensor([d.weights for d in start.dynamics], dtype=torch.float32))
    bias = torch.nn.Parameter(torch.tensor([d.bias for d in start.dynamics], dtype=torch.float32))
    optimiser = torch.optim.AdamW(
        [
            {"params": [p for u in updates.values() for p in (u.down, u.up)], "lr": ADAPTER_LEARNING_RATE},
            {"params": [weights, bias], "lr": HEAD_LEARNING_RATE},
        ],
        weight_decay=0.0,
    )
    positives = y_train.sum(dim=0).clamp(min=1.0)
    loss_of = torch.nn.BCEWithLogitsLoss(pos_weight=(y_train.shape[0] - positives) / positives)

    def embed(texts: Sequence[str]) -> torch.Tensor:
        batch = encoder.tokenizer(
            list(texts), padding=True, truncation=True, max_length=encoder.max_length, return_tensors="pt"
        )
        return mean_pool(network(**batch).last_hidden_state, batch["attention_mask"])

    def validation_probabilities() -> np.ndarray:
        network.eval()
        rows = []
        with torch.inference_mode():
            for first in range(0, len(validation_texts), 4 * FINE_TUNE_BATCH):
                chunk = validation_texts[first : first + 4 * FINE_TUNE_BATCH]
                rows.append(torch.sigmoid(embed(chunk) @ weights.T + bias).numpy())
                tick(len(chunk))
        return np.concatenate(rows)

    frozen = start.probabilities(encoder.encode(validation_texts))
    tick(len(validation_texts))
    scores = [_validation_macro_f1(np.stack([frozen[name] for name in names], axis=1), y_valid)]
    best: tuple[float, int, Adapter | None] = (scores[0], 0, None)
    order = torch.Generator().manual_seed(0)
    for epoch in range(1, epochs + 1):
        network.train()
        permutation = torch.randperm(len(train_texts), generator=order).tolist()
        for first in range(0, len(permutation), FINE_TUNE_BATCH):
            rows = permutation[first : first + FINE_TUNE_BATCH]
            optimiser.zero_grad()
            loss = loss_of(embed([train_texts[row] for row in rows]) @ weights.T + bias, y_train[rows])
            loss.backward()
            optimiser.step()
            tick(len(rows))
        scores.append(_validation_macro_f1(validation_probabilities(), y_valid))
        if scores[-1] > best[0]:
            layers = {
                name: (u.down.detach().numpy().copy(), u.up.detach().numpy().copy()) for name, u in updates.items()
            }
            best = (scores[-1], epoch, Adapter(encoder.name, rank, LORA_SCALE, layers))
    return FineTuning(best[2], best[1], tuple(scores))
