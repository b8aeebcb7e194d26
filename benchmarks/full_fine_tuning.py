"""Full fine-tuning of the encoder, against the shipped low-rank adapter (docs/classifier.md#quality).

    HF_HUB_OFFLINE=1 python -m benchmarks.full_fine_tuning [--epochs 6] [--learning-rate 5e-5] [--rank 32]

Trains every weight of the six transformer blocks (the word embeddings stay frozen) jointly with the head's
regressions, on the same loss, batches, seeds and linearly decaying learning rate as ``stackwatch train``; the epoch
best on validation is kept. It prints, per epoch, the validation macro-F1 at the best cuts, then that of a head fitted
on the tuned fp32 embeddings (cuts chosen on validation) on validation and on the test split.

A fully tuned encoder is 10.6M numbers to ship beside the published weights (42 MB as float32), where the adapter is
332k. So the update of each Linear weight is also cut to its best rank-``--rank`` approximation (truncated SVD), which
fits the head file's adapter format, and a head is trained through it on fp32 and int8 views as ``stackwatch train``
does. It is written to ``data/heads/full-rank<R>.json``; judge it on the production path with ``stackwatch eval`` and
``classifier.head`` pointing at it. Takes about 25 minutes on 2 cores; no choice reads the test split.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stackwatch.signals.corpus import LabelledText, read_labelled
from stackwatch.signals.encoder import Adapter, Encoder, mean_pool
from stackwatch.signals.evaluation import evaluate
from stackwatch.signals.head import Head
from stackwatch.signals.training import (
    FINE_TUNE_BATCH,
    HEAD_LEARNING_RATE,
    _label_matrix,
    _validation_macro_f1,
    train_head,
    train_head_on_both_precisions,
)

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def _report(head: Head, embeddings: np.ndarray, labels: Sequence[Sequence[str]]) -> float:
    """Macro-F1 of ``head`` at its own cuts."""
    probabilities = head.probabilities(embeddings)
    predicted = [
        [d.name for d in head.dynamics if probabilities[d.name][row] >= d.threshold] for row in range(len(labels))
    ]
    return evaluate(labels, predicted, head.names).macro_f1


def tune_blocks(
    encoder: Encoder,
    train: Sequence[LabelledText],
    valid: Sequence[LabelledText],
    names: Sequence[str],
    *,
    epochs: int,
    learning_rate: float,
    teacher: np.ndarray | None = None,
    teacher_weight: float = 0.5,
) -> Callable[[Sequence[str]], np.ndarray]:
    """Train every weight of ``encoder``'s transformer blocks in place (the word embeddings stay frozen) jointly
    with a head's regressions started from its frozen embeddings; keep the epoch best on validation; return the
    tuned encoder's ``encode``. With ``teacher`` (a probability per training text and dynamic), ``teacher_weight``
    of the loss follows those probabilities and the rest the labels: distillation."""
    network = encoder.model
    texts = [item.content for item in [*train, *valid]]
    cut = len(train)

    def embed(batch_texts: Sequence[str]) -> torch.Tensor:
        batch = encoder.tokenizer(
            list(batch_texts), padding=True, truncation=True, max_length=encoder.max_length, return_tensors="pt"
        )
        return mean_pool(network(**batch).last_hidden_state, batch["attention_mask"])

    def encode(batch_texts: Sequence[str]) -> np.ndarray:
        network.eval()
        with torch.inference_mode():
            return np.concatenate([embed(batch_texts[i : i + 64]).numpy() for i in range(0, len(batch_texts), 64)])

    frozen = encode(texts)
    start = train_head(
        frozen[:cut], [i.labels for i in train], frozen[cut:], [i.labels for i in valid], names, encoder=encoder.name
    )
    y_train = torch.from_numpy(_label_matrix([i.labels for i in train], names).astype(np.float32))
    y_valid = _label_matrix([i.labels for i in valid], names)
    torch.manual_seed(0)
    for name, parameter in network.named_parameters():
        parameter.requires_grad_(name.startswith("encoder."))
    weights = torch.nn.Parameter(torch.tensor([d.weights for d in start.dynamics], dtype=torch.float32))
    bias = torch.nn.Parameter(torch.tensor([d.bias for d in start.dynamics], dtype=torch.float32))
    optimiser = torch.optim.AdamW(
        [
            {"params": [p for p in network.parameters() if p.requires_grad], "lr": learning_rate},
            {"params": [weights, bias], "lr": HEAD_LEARNING_RATE},
        ],
        weight_decay=0.01,  # AdamW's default strength, decoupled: with every weight free, a little restraint
    )
    steps = epochs * math.ceil(cut / FINE_TUNE_BATCH)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0 - step / steps)
    positives = y_train.sum(dim=0).clamp(min=1.0)
    labels_loss = torch.nn.BCEWithLogitsLoss(pos_weight=(y_train.shape[0] - positives) / positives)
    teacher_loss = torch.nn.BCEWithLogitsLoss()
    soft = None if teacher is None else torch.from_numpy(teacher)

    def loss_of(logits: torch.Tensor, rows: list[int]) -> Any:  # a scalar tensor
        loss = labels_loss(logits, y_train[rows])
        if soft is None:
            return loss
        return (1 - teacher_weight) * loss + teacher_weight * teacher_loss(logits, soft[rows])

    order = torch.Generator().manual_seed(0)
    best_score, best_state, began = -1.0, copy.deepcopy(network.state_dict()), time.monotonic()
    for epoch in range(1, epochs + 1):
        network.train()
        permutation = torch.randperm(cut, generator=order).tolist()
        for first in range(0, cut, FINE_TUNE_BATCH):
            rows = permutation[first : first + FINE_TUNE_BATCH]
            optimiser.zero_grad()
            loss_of(embed([texts[row] for row in rows]) @ weights.T + bias, rows).backward()
            optimiser.step()
            schedule.step()
        logits = encode(texts[cut:]) @ weights.detach().numpy().T + bias.detach().numpy()
        score = _validation_macro_f1(1.0 / (1.0 + np.exp(-logits)), y_valid)
        print(f"epoch {epoch}: validation macro-F1 {score:.4f} ({time.monotonic() - began:.0f} s)", flush=True)
        if score > best_score:
            best_score, best_state = score, copy.deepcopy(network.state_dict())
    network.load_state_dict(best_state)
    return encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    train, valid, test = (read_labelled(CORPUS / f"{split}.jsonl") for split in ("train", "validation", "test"))
    texts = [item.content for item in [*train, *valid]]
    cut = len(train)
    base = Encoder.load(None, precision="fp32", threads=options.threads)
    names = ["exclusivity", "capex", "decoupling", "edge"]
    tuned_encoder = dataclasses.replace(base, model=copy.deepcopy(base.model))
    encode = tune_blocks(tuned_encoder, train, valid, names, epochs=options.epochs, learning_rate=options.learning_rate)
    best_state = tuned_encoder.model.state_dict()
    tuned = encode(texts)
    head = train_head(
        tuned[:cut], [i.labels for i in train], tuned[cut:], [i.labels for i in valid], names, encoder=base.name
    )
    test_x = encode([item.content for item in test])
    on_validation = _report(head, tuned[cut:], [i.labels for i in valid])
    on_test = _report(head, test_x, [i.labels for i in test])
    print(f"full fine-tuning, fp32, head on its embeddings: validation {on_validation:.3f}, test {on_test:.3f}")
    layers: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, module in base.model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.startswith("encoder."):
            update = (best_state[f"{name}.weight"] - module.weight.detach()).double()
            left, singular, right = torch.linalg.svd(update, full_matrices=False)
            r = options.rank
            layers[name] = (right[:r].float().numpy().copy(), (left[:, :r] * singular[:r]).float().numpy().copy())
    adapter = Adapter(base.name, options.rank, 1.0, layers)
    views = [Encoder.load(None, precision=p, adapter=adapter, threads=options.threads) for p in ("fp32", "int8")]
    fp32, int8 = (view.encode(texts) for view in views)
    compressed = train_head_on_both_precisions(
        fp32,
        int8,
        cut,
        [i.labels for i in train],
        [i.labels for i in valid],
        names,
        encoder=base.name,
        adapter=adapter,
    )
    target = Path("data/heads") / f"full-rank{options.rank}.json"
    compressed.save(target)
    print(
        f"rank-{options.rank} approximation ({adapter.size:,} numbers): validation macro-F1"
        f" {compressed.metrics['validation_macro_f1']:.3f} (fp32 and int8 views); wrote {target}:"
        f" judge it with classifier.head: {target} and stackwatch eval"
    )


if __name__ == "__main__":
    main()
