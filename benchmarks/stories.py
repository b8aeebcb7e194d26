"""What linking reports of one event costs a sink write as the 48 h window fills: the same batch written with its
embeddings (syndicated copies, same-event and market-reaction links) and without (syndicated copies only), into
stores that hold W articles of the window, in the same run.

    python -m benchmarks.stories                           # windows of 500, 1,500 and 3,000 stored articles
    python -m benchmarks.stories --windows 1000,3000 --repeats 5

The texts are the labelled corpus's, tagged and embedded once by the shipped classifier: the training and
validation records fill the window (spread over 40 hours), the test records are the batch (published at its
end), so no text of the batch is stored already. Each figure is the median of ``--repeats`` writes, each into a
store of its own filled the same way. The ratio is the write with embeddings over the write without: what the
embedding links add to a write, whatever the machine's speed. Its growth with W is the cost of each stored
article of the window (every new article is compared with all of them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.machine import machine
from stackwatch.signals.classifier import Classifier
from stackwatch.signals.messages import Article, TaggedArticle
from stackwatch.storage.store import Batch, Store

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
START = datetime(2026, 3, 1, tzinfo=UTC)
SPREAD = timedelta(hours=40)
FILL_BATCH = 1000


def tagged_records(paths: Sequence[Path], classifier: Classifier, prefix: str) -> list[TaggedArticle]:
    """Every record of ``paths`` as an article tagged and embedded by ``classifier`` (dated later by :func:`dated`)."""
    records = [json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines() if line]
    results = classifier.classify([f"{record['title']}\n{record['text']}" for record in records])
    tagged = []
    for index, (record, result) in enumerate(zip(records, results, strict=True)):
        article = Article(
            id=f"{prefix}-{index}",
            url=f"http://127.0.0.1/{prefix}/{index}",
            title=record["title"],
            summary=record["text"],
            source=f"outlet-{index % 40}",
            connector="file",
            published_at=START,
            fetched_at=START,
        )
        tagged.append(TaggedArticle(article, result.labels, result.scores, classifier.version, START, result.embedding))
    return tagged


def dated(tagged: Sequence[TaggedArticle], first: datetime, spread: timedelta, embedded: bool) -> list[TaggedArticle]:
    """``tagged`` published evenly over ``spread`` from ``first``, with their embeddings or without."""
    step = spread / max(1, len(tagged))
    return [
        replace(
            item,
            article=replace(item.article, published_at=first + step * index, fetched_at=first + step * index),
            tagged_at=first + step * index,
            embedding=item.embedding if embedded else None,
        )
        for index, item in enumerate(tagged)
    ]


def write_seconds(window: Sequence[TaggedArticle], batch: Sequence[TaggedArticle], directory: Path) -> float:
    """Seconds to write ``batch`` into a new store that holds ``window``."""
    with Store.open(directory / "stories.duckdb") as store:
        for start in range(0, len(window), FILL_BATCH):
            store.write(Batch(tagged=list(window[start : start + FILL_BATCH])))
        started = time.perf_counter()
        store.write(Batch(tagged=list(batch)))
        return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", default="500,1500,3000", help="stored articles in the window, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from stackwatch.pipeline.roles.classifiers import build_classifier
    from stackwatch.settings import ClassifierSettings
    from stackwatch.signals.taxonomy import Taxonomy

    classifier = build_classifier(ClassifierSettings(), Taxonomy.builtin())
    stored = tagged_records([CORPUS / "train.jsonl", CORPUS / "validation.jsonl"], classifier, "window")
    new = tagged_records([CORPUS / "test.jsonl"], classifier, "batch")
    windows = [int(size) for size in args.windows.split(",")]
    if max(windows) > len(stored):
        parser.error(f"--windows: at most {len(stored)} stored articles (the corpus's training and validation)")
    print(f"{machine()}; a batch of {len(new)} articles; median of {args.repeats} writes")
    for size in windows:
        seconds: dict[bool, float] = {}
        for embedded in (False, True):
            window = dated(stored[:size], START, SPREAD, embedded)
            batch = dated(new, START + SPREAD, timedelta(minutes=len(new)), embedded)
            runs = []
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory() as directory:
                    runs.append(write_seconds(window, batch, Path(directory)))
            seconds[embedded] = statistics.median(runs)
        print(
            f"window of {size:,}: write with embeddings {seconds[True] * 1000:,.0f} ms, without"
            f" {seconds[False] * 1000:,.0f} ms: {seconds[True] / seconds[False]:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
