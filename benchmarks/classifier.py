"""Classifier throughput: the naive transformers baseline against stackwatch's production path, same run.

    HF_HUB_OFFLINE=1 python -m benchmarks.classifier [--articles 2000] [--naive 300]

(a) naive: fp32 all-MiniLM-L6-v2 through transformers, one article per forward pass (no batching).
(b) production: ``build_classifier`` with default settings (the ONNX Runtime encoder, int8 weights and static
    activation ranges, texts sorted by length and padded per sub-batch), fed batches of 32 as the classify agent
    does.
The corpus is 2,000+ distinct "title + lead" texts built from the repository corpus (every title with every
record's first sentence, cycling), truncated at 128 tokens like production. The naive pass runs on a subset
(``--naive``, default 300) because at its rate the whole corpus would take minutes; articles/s is a rate.
Both are timed in five alternating rounds, so load from other processes on the machine hits both alike.
Quality: macro-F1 on the held-out test split with the same head (and its encoder adapter, merged in both) over
fp32 and over the production encoder.
Hardware share: articles/s x GFLOP per article (2.9 GFLOP at 128 tokens, scaled to the measured mean length)
over a peak measured here as the best of fp32 2048x2048 matmuls.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import torch

from benchmarks.machine import machine
from stackwatch.settings import ClassifierSettings
from stackwatch.signals.corpus import LabelledText, read_labelled
from stackwatch.signals.encoder import Encoder
from stackwatch.signals.evaluation import evaluate
from stackwatch.signals.head import Head
from stackwatch.signals.taxonomy import Taxonomy
from stackwatch.signals.transformer import TransformerClassifier

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
GFLOP_AT_128 = 2.9
AGENT_BATCH = 32
_FIRST_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)", re.DOTALL)


def articles(count: int) -> list[str]:
    """``count`` distinct title + lead texts from the corpus (all splits: this measures speed, not quality)."""
    items: list[LabelledText] = []
    for split in ("train", "validation", "test"):
        items.extend(read_labelled(CORPUS / f"{split}.jsonl"))
    titles = [item.content.split("\n", 1)[0] for item in items]
    leads = []
    for item in items:
        body = item.content.split("\n", 1)[-1]
        match = _FIRST_SENTENCE.match(body)
        leads.append(match.group(1) if match else body)
    texts = [
        f"{title}\n{body}" for title, body in zip(titles, (i.content.split("\n", 1)[-1] for i in items), strict=True)
    ]
    offset = 1
    while len(texts) < count:
        texts.extend(f"{titles[i]}\n{leads[(i + offset) % len(leads)]}" for i in range(len(titles)))
        offset += 1
    return texts[:count]


def peak_gflops(seconds: float = 3.0) -> float:
    """Best observed fp32 matmul rate with the threads production uses."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(8):
            a @ b
        best = max(best, 8 * 2 * 1024**3 / (time.perf_counter() - start) / 1e9)
    return best


def naive_seconds(encoder: Encoder, texts: list[str]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for text in texts:
            batch = encoder.tokenizer([text], truncation=True, max_length=128, return_tensors="pt")
            encoder.model(**batch)
    return time.perf_counter() - start


def production_seconds(classifier: TransformerClassifier, texts: list[str]) -> float:
    start = time.perf_counter()
    for begin in range(0, len(texts), AGENT_BATCH):
        classifier.classify(texts[begin : begin + AGENT_BATCH])
    return time.perf_counter() - start


def interleaved_rates(
    naive: Encoder, production: TransformerClassifier, texts: list[str], naive_count: int, rounds: int = 5
) -> tuple[float, float]:
    """Articles/s of (a) and (b), measured in alternating rounds so load from other processes hits both alike."""
    production.classify(texts[:AGENT_BATCH])  # warm-up: first-call allocations are not throughput
    naive_seconds(naive, texts[:2])
    naive_time = fast_time = 0.0
    naive_share, fast_share = naive_count // rounds, len(texts) // rounds
    for round_ in range(rounds):
        naive_time += naive_seconds(naive, texts[round_ * naive_share : (round_ + 1) * naive_share])
        fast_time += production_seconds(production, texts[round_ * fast_share : (round_ + 1) * fast_share])
    return naive_share * rounds / naive_time, fast_share * rounds / fast_time


def test_macro_f1(classifier: TransformerClassifier) -> float:
    items = read_labelled(CORPUS / "test.jsonl")
    predicted = [r.labels for r in classifier.classify([item.content for item in items])]
    return evaluate([item.labels for item in items], predicted, Taxonomy.builtin().names).macro_f1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.classifier", description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--naive", type=int, default=300, help="articles for the (slow) naive baseline")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from stackwatch.pipeline.roles.classifiers import build_classifier

    texts = articles(args.articles)
    production = build_classifier(ClassifierSettings(), Taxonomy.builtin())
    assert isinstance(production, TransformerClassifier)
    tokens = production.encoder.token_counts(texts)
    mean_tokens = sum(tokens) / len(tokens)
    threads = torch.get_num_threads()
    print(machine())
    print(f"corpus: {len(texts)} texts, mean {mean_tokens:.0f} tokens (max {max(tokens)}), threads {threads}")

    naive, fast = interleaved_rates(Encoder.load(precision="fp32"), production, texts, args.naive)
    peak = peak_gflops()
    gflop = GFLOP_AT_128 * mean_tokens / 128
    print(f"(a) naive fp32, one at a time:      {naive:8.1f} articles/s")
    print(f"(b) production ({production.encoder.precision}, batched):     {fast:8.1f} articles/s")
    print(f"ratio b/a:                          {fast / naive:8.2f}x   (required 5x, goal 8x)")
    print(
        f"hardware share of (b):              {100 * fast * gflop / peak:8.1f}%   "
        f"({gflop:.2f} GFLOP/article at {mean_tokens:.0f} tokens; peak {peak:.0f} GFLOP/s measured fp32 matmul)"
    )
    print(f"hardware share of (a):              {100 * naive * gflop / peak:8.1f}%")

    head = Head.bundled()
    fp32 = TransformerClassifier(Encoder.load(precision="fp32", adapter=head.adapter), head, Taxonomy.builtin())
    f1_fast, f1_fp32 = test_macro_f1(production), test_macro_f1(fp32)
    verdict = "ok" if abs(f1_fast - f1_fp32) <= 0.01 else "OUT OF TOLERANCE"
    print(f"test macro-F1: production {f1_fast:.3f}, fp32 {f1_fp32:.3f}, diff {f1_fast - f1_fp32:+.3f} ({verdict})")
    short = build_classifier(ClassifierSettings(max_length=64), Taxonomy.builtin())
    assert isinstance(short, TransformerClassifier)
    short_rate = len(texts) / production_seconds(short, texts)
    print(
        f"(c) production at max_length 64:    {short_rate:8.1f} articles/s, "
        f"test macro-F1 {test_macro_f1(short):.3f} (an option, not the default)"
    )


if __name__ == "__main__":
    main()
