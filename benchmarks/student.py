"""A smaller student encoder distilled from the shipped classifier: quality and speed against the same baselines.

    HF_HUB_OFFLINE=1 python -m benchmarks.student [--layers 3] [--epochs 6] [--learning-rate 1e-4]

The student is all-MiniLM-L6-v2 cut to its first ``--layers`` transformer blocks (of six). Every weight of those
blocks (the word embeddings stay frozen) is trained jointly with the head's regressions, on the training split,
towards both the corpus labels and the shipped classifier's probabilities for the same texts (the teacher: the
production path, the adapter of every Linear layer merged), half each; the rate decays linearly to zero and the
epoch best on validation is kept. Then a head is fitted on the student's fp32 and int8 embeddings, as
``stackwatch train`` does, with its cuts chosen on validation. The student is written as a model directory,
``data/student-L<layers>/``, and its head to ``data/heads/student-L<layers>.json``: ``classifier.model`` and
``classifier.head`` pointing at them run it in the service.

It prints the validation and test macro-F1 (with each dynamic's precision and recall on test) of the student on
the production path (ONNX Runtime, int8, static activation ranges) and in fp32, and the throughput of the naive
baseline, the shipped production path and the student's production path, timed in alternating rounds in one run
(see benchmarks.classifier). Takes about 20 minutes on 2 cores; no choice reads the test split.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from benchmarks.classifier import articles, naive_seconds, production_seconds
from benchmarks.full_fine_tuning import tune_blocks
from benchmarks.machine import machine
from stackwatch.pipeline.roles.classifiers import build_classifier
from stackwatch.settings import ClassifierSettings
from stackwatch.signals.corpus import LabelledText, read_labelled
from stackwatch.signals.encoder import Encoder
from stackwatch.signals.evaluation import Report, evaluate
from stackwatch.signals.taxonomy import Taxonomy
from stackwatch.signals.training import train_head_on_both_precisions
from stackwatch.signals.transformer import TransformerClassifier

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
NAMES = ("exclusivity", "capex", "decoupling", "edge")
TEACHER_WEIGHT = 0.5
"""The share of the loss that follows the teacher's probabilities (the rest: the corpus labels)."""


def teacher_probabilities(teacher: TransformerClassifier, texts: Sequence[str]) -> np.ndarray:
    """The shipped classifier's probability of each dynamic for each text (rows: texts, columns: NAMES)."""
    results = teacher.classify(list(texts))
    return np.array([[result.scores.get(name, 0.0) for name in NAMES] for result in results], dtype=np.float32)


def distil(
    layers: int,
    train: Sequence[LabelledText],
    valid: Sequence[LabelledText],
    teacher: np.ndarray,
    epochs: int,
    learning_rate: float,
    threads: int,
) -> Encoder:
    """The fp32 student: the bundled encoder's first ``layers`` blocks, trained as the module docstring says."""
    base = Encoder.load(None, precision="fp32", threads=threads)
    network: Any = copy.deepcopy(base.model)  # a transformers BertModel
    network.encoder.layer = network.encoder.layer[:layers]
    network.config.num_hidden_layers = layers
    student = dataclasses.replace(base, model=network)
    tune_blocks(
        student,
        train,
        valid,
        NAMES,
        epochs=epochs,
        learning_rate=learning_rate,
        teacher=teacher,
        teacher_weight=TEACHER_WEIGHT,
    )
    return student


def judged(classifier: TransformerClassifier, items: Sequence[LabelledText]) -> Report:
    results = classifier.classify([item.content for item in items])
    return evaluate([item.labels for item in items], [result.labels for result in results], NAMES)


def rates(
    naive: Encoder, fast: Sequence[TransformerClassifier], texts: list[str], naive_count: int, rounds: int = 5
) -> list[float]:
    """Articles/s of ``naive`` (one text per pass) and of each of ``fast``, in alternating rounds."""
    naive_seconds(naive, texts[:2])
    for classifier in fast:
        production_seconds(classifier, texts[:64])
    spent = [0.0] * (1 + len(fast))
    naive_share, fast_share = naive_count // rounds, len(texts) // rounds
    for round_ in range(rounds):
        spent[0] += naive_seconds(naive, texts[round_ * naive_share : (round_ + 1) * naive_share])
        for index, classifier in enumerate(fast, start=1):
            spent[index] += production_seconds(classifier, texts[round_ * fast_share : (round_ + 1) * fast_share])
    return [naive_share * rounds / spent[0], *(fast_share * rounds / seconds for seconds in spent[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--naive", type=int, default=300)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    print(machine())
    train, valid, test = (read_labelled(CORPUS / f"{split}.jsonl") for split in ("train", "validation", "test"))
    taxonomy = Taxonomy.builtin()
    teacher = build_classifier(ClassifierSettings(), taxonomy, threads=options.threads)
    assert isinstance(teacher, TransformerClassifier)
    soft = teacher_probabilities(teacher, [item.content for item in train])
    student = distil(options.layers, train, valid, soft, options.epochs, options.learning_rate, options.threads)
    directory = Path("data") / f"student-L{options.layers}"
    cast(Any, student.model).save_pretrained(directory)  # a transformers BertModel
    student.tokenizer.save_pretrained(directory)
    views = [Encoder.load(str(directory), precision=p, threads=options.threads) for p in ("fp32", "int8")]
    texts = [item.content for item in [*train, *valid]]
    fp32, int8 = (view.encode(texts) for view in views)
    head = train_head_on_both_precisions(
        fp32, int8, len(train), [i.labels for i in train], [i.labels for i in valid], NAMES, encoder=str(directory)
    )
    head_file = Path("data/heads") / f"student-L{options.layers}.json"
    head.save(head_file)
    settings = ClassifierSettings(model=str(directory), head=head_file)
    production = build_classifier(settings, taxonomy, threads=options.threads)
    full = build_classifier(settings.model_copy(update={"runtime": "torch", "precision": "fp32"}), taxonomy)
    assert isinstance(production, TransformerClassifier)
    assert isinstance(full, TransformerClassifier)
    for label, classifier in (("production (onnx int8)", production), ("fp32", full)):
        on_valid, on_test = judged(classifier, valid), judged(classifier, test)
        print(f"student L{options.layers}, {label}: validation {on_valid.macro_f1:.3f}, test {on_test.macro_f1:.3f}")
        for name in NAMES:
            scored = on_test.per_dynamic[name]
            print(f"  test {name}: F1 {scored.f1:.3f}  P {scored.precision:.3f}  R {scored.recall:.3f}")
    corpus = articles(options.articles)
    naive, shipped, small = rates(Encoder.load(precision="fp32"), [teacher, production], corpus, options.naive)
    print(f"naive fp32, one at a time: {naive:8.1f} articles/s")
    print(f"shipped production path:   {shipped:8.1f} articles/s  ({shipped / naive:.2f}x naive)")
    print(f"student production path:   {small:8.1f} articles/s  ({small / naive:.2f}x naive)")


if __name__ == "__main__":
    main()
