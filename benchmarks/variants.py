"""Classifier variants on the corpus splits, each against the production path measured in the same run.

    HF_HUB_OFFLINE=1 python -m benchmarks.variants [--floor 0.85] [--rounds 3]

Every variant reads the bundled head (its adapter merged in the encoder) through the production encoder (ONNX, int8,
static activation ranges), as ``stackwatch eval`` runs it:

1. production: ``classify`` in batches of 64, the head's own thresholds.
2. thresholds: the same scores, each dynamic cut where its validation F1 is best among the cuts with validation
   precision at least ``--floor`` (training's :func:`~stackwatch.signals.training.best_threshold`), applied to
   test. Free at inference.
3. sentences: every sentence of a text (lines, then ``.``/``!``/``?`` runs; the title is one) encoded on its own and
   scored by the head; a dynamic's score is its best sentence's ("max"), the larger of that and the whole text's
   score ("max with text"), or their mean, at the shipped cuts and at cuts chosen on validation as in 2 (with the
   floor, and without: the F1-best cut).
4. a reliability table of the production scores: per dynamic, ten probability bins with their count, mean
   predicted probability and observed positive rate, and the expected calibration error (ECE).

Speed: articles/s over validation + test in alternating rounds (the first gives the scores), as a ratio to the
production path, since the machine is shared. The combined scores cost the production pass plus the sentence pass;
"max" alone the sentence pass (a service would still need the whole-text embedding for event links). The encoder
cost of the sentence pass is printed against encoding the whole texts alone, in time and in tokens. No choice
reads the test split.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.machine import machine
from stackwatch.settings import ClassifierSettings
from stackwatch.signals.corpus import LabelledText, read_labelled
from stackwatch.signals.evaluation import Report, evaluate
from stackwatch.signals.explanations import sentence_spans
from stackwatch.signals.head import Head
from stackwatch.signals.taxonomy import Taxonomy
from stackwatch.signals.training import best_threshold
from stackwatch.signals.transformer import TransformerClassifier

__all__ = ["reliability", "sentences"]

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
EVAL_BATCH = 64
"""Texts per ``classify`` call, as ``stackwatch eval`` sends them."""
BINS = 10
Scores = dict[str, np.ndarray]
"""Per dynamic, one probability per text."""


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` as the classifier's explanations split them (the title is one)."""
    return [text[start:end] for start, end in sentence_spans(text)] or [text]


@dataclass(frozen=True, slots=True)
class Bin:
    """One probability bin of a reliability table: how many texts, their mean score, the share labelled."""

    count: int
    predicted: float
    observed: float


def reliability(probabilities: np.ndarray, truth: np.ndarray, bins: int = BINS) -> tuple[list[Bin], float]:
    """Equal-width probability bins (the last one closed at 1.0) and the expected calibration error: the
    count-weighted mean of ``|mean predicted - observed rate|`` over the bins.

    >>> table, ece = reliability(np.array([0.05, 0.15, 0.95, 0.95]), np.array([False, False, True, False]))
    >>> table[0], round(ece, 3)
    (Bin(count=1, predicted=0.05, observed=0.0), 0.275)
    """
    index = np.minimum((probabilities * bins).astype(int), bins - 1)
    table, error = [], 0.0
    for number in range(bins):
        inside = index == number
        count = int(inside.sum())
        predicted = float(probabilities[inside].mean()) if count else 0.0
        observed = float(truth[inside].mean()) if count else 0.0
        table.append(Bin(count, predicted, observed))
        error += count * abs(predicted - observed)
    return table, error / max(len(probabilities), 1)


def _labels(scores: Scores, cuts: dict[str, float], names: Sequence[str]) -> list[tuple[str, ...]]:
    rows = len(next(iter(scores.values())))
    return [tuple(name for name in names if scores[name][row] >= cuts[name]) for row in range(rows)]


def _truth(items: Sequence[LabelledText], name: str) -> np.ndarray:
    return np.array([name in item.labels for item in items], dtype=bool)


def _production(classifier: TransformerClassifier, names: Sequence[str], texts: Sequence[str]) -> Scores:
    found: dict[str, list[float]] = {name: [] for name in names}
    for start in range(0, len(texts), EVAL_BATCH):
        for result in classifier.classify(texts[start : start + EVAL_BATCH]):
            for name, values in found.items():
                values.append(result.scores[name])
    return {name: np.array(values) for name, values in found.items()}


def _head(classifier: TransformerClassifier) -> Head:
    head = Head.bundled()
    if classifier.version != head.version:
        raise SystemExit(f"the production classifier runs {classifier.version}, not the bundled {head.version}")
    return head


def _sentence_max(classifier: TransformerClassifier, head: Head, texts: Sequence[str]) -> Scores:
    """Per text and dynamic, the highest score of any of its sentences."""
    best = {name: np.zeros(len(texts)) for name in head.names}
    for start in range(0, len(texts), EVAL_BATCH):
        chunk = [sentences(text) for text in texts[start : start + EVAL_BATCH]]
        owners = np.repeat(np.arange(start, start + len(chunk)), [len(parts) for parts in chunk])
        scores = head.probabilities(classifier.encoder.encode([part for parts in chunk for part in parts]))
        for name, values in scores.items():
            np.maximum.at(best[name], owners, values)
    return best


def _encoded(classifier: TransformerClassifier, head: Head, texts: Sequence[str]) -> Scores:
    """The head's scores over the whole texts' embeddings, without the rest of ``classify``."""
    rows = [classifier.encoder.encode(texts[start : start + EVAL_BATCH]) for start in range(0, len(texts), EVAL_BATCH)]
    return head.probabilities(np.concatenate(rows))


def _timed(run: Callable[[], Scores]) -> tuple[Scores, float]:
    start = time.perf_counter()
    scores = run()
    return scores, time.perf_counter() - start


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    validation: Report
    test: Report
    speed: float
    """Articles/s as a ratio to the production path."""
    cuts: dict[str, float]


def _variant(
    name: str,
    scores: tuple[Scores, Scores],
    items: tuple[list[LabelledText], list[LabelledText]],
    cuts: dict[str, float],
    speed: float,
    names: Sequence[str],
) -> Variant:
    reports = [
        evaluate([item.labels for item in split], _labels(split_scores, cuts, names), names)
        for split, split_scores in zip(items, scores, strict=True)
    ]
    return Variant(name, reports[0], reports[1], speed, cuts)


def _print_variants(variants: Sequence[Variant], names: Sequence[str]) -> None:
    print(f"\n{'variant':<48}{'val F1':>8}{'test F1':>9}{'speed':>7}   test P/R per dynamic; cuts")
    for variant in variants:
        per = ", ".join(
            f"{n} {variant.test.per_dynamic[n].precision:.3f}/{variant.test.per_dynamic[n].recall:.3f}" for n in names
        )
        cuts = " ".join(f"{variant.cuts[n]:.2f}" for n in names)
        print(
            f"{variant.name:<48}{variant.validation.macro_f1:>8.3f}{variant.test.macro_f1:>9.3f}"
            f"{variant.speed:>6.2f}x   {per}; cuts {cuts}"
        )


def _print_reliability(split: str, scores: Scores, items: Sequence[LabelledText], names: Sequence[str]) -> None:
    print(f"\nreliability, production, {split} ({len(items)} texts): per bin count / mean predicted / observed")
    tables = {name: reliability(scores[name], _truth(items, name)) for name in names}
    print(f"{'bin':<10}" + "".join(f"{name:>24}" for name in names))
    for number in range(BINS):
        cells = []
        for name in names:
            cell = tables[name][0][number]
            cells.append(f"{cell.count:>5} / {cell.predicted:.3f} / {cell.observed:.3f}" if cell.count else "0")
        print(f"{number / BINS:.1f}-{(number + 1) / BINS:.1f}   " + "".join(f"{c:>24}" for c in cells))
    print(f"{'ECE':<10}" + "".join(f"{tables[name][1]:>24.3f}" for name in names))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.variants", description=__doc__.split("\n")[0])
    parser.add_argument("--floor", type=float, default=0.85, help="validation precision floor for chosen cuts")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        choices=range(1, 100),
        metavar="N",
        help="alternating timing rounds over validation + test",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.floor <= 1.0:
        parser.error(f"--floor: a precision between 0 and 1, not {args.floor}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from stackwatch.pipeline.roles.classifiers import build_classifier

    taxonomy = Taxonomy.builtin()
    classifier = build_classifier(ClassifierSettings(), taxonomy)
    assert isinstance(classifier, TransformerClassifier)
    head = _head(classifier)
    names = taxonomy.names
    items = (read_labelled(CORPUS / "validation.jsonl"), read_labelled(CORPUS / "test.jsonl"))
    texts = [item.content for split in items for item in split]
    parts = sum(len(sentences(text)) for text in texts)
    print(machine())
    print(f"{classifier.version}, {classifier.encoder.name} {type(classifier.encoder).__name__}")
    print(f"validation {len(items[0])} + test {len(items[1])} texts, {parts} sentences ({parts / len(texts):.1f}/text)")

    classifier.classify(texts[:EVAL_BATCH])  # warm-up: first-call allocations are not throughput
    whole, time_whole = _timed(lambda: _production(classifier, names, texts))
    sentence, time_sentence = _timed(lambda: _sentence_max(classifier, head, texts))
    time_encoder = _timed(lambda: _encoded(classifier, head, texts))[1]
    for _ in range(args.rounds - 1):
        time_whole += _timed(lambda: _production(classifier, names, texts))[1]
        time_sentence += _timed(lambda: _sentence_max(classifier, head, texts))[1]
        time_encoder += _timed(lambda: _encoded(classifier, head, texts))[1]
    tokens = sum(classifier.encoder.token_counts(texts))
    sentence_tokens = sum(classifier.encoder.token_counts([part for text in texts for part in sentences(text)]))
    rate = args.rounds * len(texts)
    print(
        f"articles/s: production {rate / time_whole:.1f}; sentence pass {rate / time_sentence:.1f}; "
        f"encoder alone on whole texts {rate / time_encoder:.1f}"
    )
    print(
        f"encoder cost of the sentence pass: {time_sentence / time_encoder:.2f}x the whole-text encoding's time, "
        f"{sentence_tokens / tokens:.2f}x its tokens ({sentence_tokens} against {tokens}, truncated at "
        f"{classifier.encoder.max_length} per text)"
    )

    cut = len(items[0])

    def split(scores: Scores) -> tuple[Scores, Scores]:
        return {n: s[:cut] for n, s in scores.items()}, {n: s[cut:] for n, s in scores.items()}

    both = {name: np.maximum(whole[name], sentence[name]) for name in names}
    mean = {name: (whole[name] + sentence[name]) / 2 for name in names}
    shipped = {d.name: d.threshold for d in head.dynamics}
    variants = []
    for label, scores, speed in (
        ("production", whole, 1.0),
        ("sentences: max", sentence, time_whole / time_sentence),
        ("sentences: max with text", both, time_whole / (time_whole + time_sentence)),
        ("sentences: mean of max and text", mean, time_whole / (time_whole + time_sentence)),
    ):
        pair = split(scores)
        chosen = {n: best_threshold(pair[0][n], _truth(items[0], n), args.floor) for n in names}
        best = {n: best_threshold(pair[0][n], _truth(items[0], n)) for n in names}
        variants.append(_variant(f"{label}, shipped cuts", pair, items, shipped, speed, names))
        variants.append(_variant(f"{label}, P>={args.floor:.2f} cuts", pair, items, chosen, speed, names))
        variants.append(_variant(f"{label}, F1-best cuts", pair, items, best, speed, names))
    _print_variants(variants, names)
    for name, scores in zip(("validation", "test"), split(whole), strict=True):
        _print_reliability(name, scores, items[0] if name == "validation" else items[1], names)


if __name__ == "__main__":
    main()
