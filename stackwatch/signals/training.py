"""Training the head (:mod:`stackwatch.signals.head`): logistic regressions on frozen embeddings, or a low-rank
adaptation of the encoder trained jointly with them.

    head = train_head(train_x, train_labels, validation_x, validation_labels, names, encoder_name)
    head, tuning = fine_tune(encoder, train_texts, train_labels, validation_texts, validation_labels, names)

Thresholds are chosen per dynamic on a validation split (the F1-best cut, ties broken towards 0.5).

:func:`fine_tune` adapts the encoder itself: low-rank (LoRA) updates of every Linear layer of each transformer
block, trained jointly with the head's logistic regressions on the multi-label loss with a learning rate that
decays linearly to zero, one adapter kept per epoch and the best on validation chosen (no adapter at all if none
beats the frozen encoder). The adapter is stored in the head file and merged into the encoder's weights at load,
so inference costs the same.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

from stackwatch.errors import ClassifierError
from stackwatch.signals.encoder import Adapter, Encoder, mean_pool
from stackwatch.signals.evaluation import f1
from stackwatch.signals.head import DynamicWeights, Head

__all__ = [
    "EPOCHS",
    "FINE_TUNE_EPOCHS",
    "WEIGHT_DECAYS",
    "FineTuning",
    "best_threshold",
    "fine_tune",
    "train_head",
    "train_head_on_both_precisions",
]

WEIGHT_DECAYS = (1e-5, 3e-5, 1e-4, 1e-3)
"""L2 strengths tried in training; the one with the best validation macro-F1 wins."""
EPOCHS = 500
FINE_TUNE_EPOCHS = 10
"""Passes over the training texts when adapting the encoder; the best epoch on validation is kept."""
LORA_RANK = 8
LORA_SCALE = 2.0
LORA_TARGETS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
"""Which Linear layers of every transformer block get a low-rank update (BERT-style module names): all of them.
On the corpus, adapting all six beat adapting the attention query and value alone (docs/classifier.md)."""
FINE_TUNE_BATCH = 16
ADAPTER_LEARNING_RATE = 1e-3
HEAD_LEARNING_RATE = 1e-2


def best_threshold(probabilities: np.ndarray, truth: np.ndarray, floor: float = 0.0) -> float:
    """The cut in [0.05, 0.95] (steps of 0.01) with the best F1 on these examples among those whose precision is at
    least ``floor``; ties go to the cut nearest 0.5. If no cut reaches the floor, the most precise cut (then the best
    F1).

    >>> best_threshold(np.array([0.9, 0.8, 0.7, 0.3]), np.array([True, False, True, False]))
    0.5
    >>> best_threshold(np.array([0.9, 0.8, 0.7, 0.3]), np.array([True, False, True, False]), floor=0.9)
    0.81
    """
    best = (False, -1.0, -1.0, 0.0, 0.5)
    for cut in np.round(np.arange(0.05, 0.951, 0.01), 2):
        predicted = probabilities >= cut
        tp, fp = int((predicted & truth).sum()), int((predicted & ~truth).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        score = f1(tp, fp, int((~predicted & truth).sum()))
        met = precision >= floor
        candidate = (met, score if met else precision, score, -abs(float(cut) - 0.5), float(cut))
        best = max(best, candidate)
    return best[4]


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


def train_head_on_both_precisions(
    fp32: np.ndarray,
    int8: np.ndarray,
    cut: int,
    train_labels: Sequence[Sequence[str]],
    validation_labels: Sequence[Sequence[str]],
    names: Sequence[str],
    **options: Any,
) -> Head:
    """:func:`train_head` on the fp32 and the int8 embeddings of the same texts at once (rows before ``cut``
    train, the rest validate), so that both precisions share one head and its cuts. ``options`` go to
    :func:`train_head`."""
    return train_head(
        np.vstack([fp32[:cut], int8[:cut]]),
        [*train_labels, *train_labels],
        np.vstack([fp32[cut:], int8[cut:]]),
        [*validation_labels, *validation_labels],
        names,
        **options,
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
    steps = max(1, epochs * math.ceil(len(train_texts) / FINE_TUNE_BATCH))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0 - step / steps)  # linear decay to 0

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
            schedule.step()
            tick(len(rows))
        scores.append(_validation_macro_f1(validation_probabilities(), y_valid))
        if scores[-1] > best[0]:
            layers = {
                name: (u.down.detach().numpy().copy(), u.up.detach().numpy().copy()) for name, u in updates.items()
            }
            best = (scores[-1], epoch, Adapter(encoder.name, rank, LORA_SCALE, layers))
    return FineTuning(best[2], best[1], tuple(scores))
