"""Event clustering measured on the labelled pair set (tests/data/event_pairs.jsonl), with the real model.

Each line is two short news items and whether they report the same event; ``kind`` marks the hard ones (the
same companies in two events, one event with another company named first). Half the pairs (``split: tune``)
choose the event score's threshold and weights (signals/stories.py: the embeddings' cosine, the entities in
common, the amounts stated); the other half (``split: test``) are scored through the store's own clustering:
every pair is written at a time of its own, 30 days from the next, so pairs never meet, and a pair is predicted
"same event" when its two articles end in one story::

    python -m benchmarks.event_pairs          # prints the chosen parameters and precision, recall, F1 per half
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from stackwatch.signals.amounts import Amount, amounts
from stackwatch.signals.classifier import Classifier
from stackwatch.signals.entities import Gazetteer
from stackwatch.signals.messages import Article, TaggedArticle
from stackwatch.signals.stories import (
    AMOUNT_PENALTY,
    ENTITY_WEIGHT,
    EVENT_SIMILARITY,
    entities_agree,
    event_score,
    is_market_reaction,
    reaction_links,
    unit_rows,
)
from stackwatch.storage.store import Batch, Store

__all__ = [
    "PAIRS",
    "Pair",
    "Parameters",
    "Scores",
    "choose_parameters",
    "cluster_pairs",
    "load_pairs",
    "scores",
    "tag_pairs",
]

PAIRS = Path(__file__).resolve().parent.parent / "tests" / "data" / "event_pairs.jsonl"
START = datetime(2024, 1, 1, 9, tzinfo=UTC)
APART = timedelta(days=30)


@dataclass(frozen=True)
class Pair:
    id: str
    split: str
    same_event: bool
    kind: str
    a: Article
    b: Article


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    pairs: int

    def __str__(self) -> str:
        return f"precision {self.precision:.3f}  recall {self.recall:.3f}  F1 {self.f1:.3f}  ({self.pairs} pairs)"


def load_pairs(path: Path = PAIRS) -> list[Pair]:
    """The pair set, each pair's articles dated at its own slot (pair n at START + n * 30 days)."""
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        data = json.loads(line)
        base = START + number * APART

        def article(side: str, data: dict[str, object] = data, base: datetime = base) -> Article:
            item = data[side]
            assert isinstance(item, dict)
            when = base + timedelta(hours=float(item["hours"]))
            return Article(
                id=f"{data['id']}{side}",
                url=f"https://{item['source']}.test/{data['id']}{side}",
                title=str(item["title"]),
                summary=str(item["summary"]),
                source=str(item["source"]),
                connector="rss",
                published_at=when,
                fetched_at=when,
            )

        pairs.append(
            Pair(
                str(data["id"]),
                str(data["split"]),
                bool(data["same_event"]),
                str(data["kind"]),
                article("a"),
                article("b"),
            )
        )
    return pairs


def tag_pairs(pairs: Sequence[Pair], classifier: Classifier) -> list[TaggedArticle]:
    """Both articles of every pair, tagged (and embedded) by ``classifier`` as the classify agent tags them."""
    articles = [article for pair in pairs for article in (pair.a, pair.b)]
    results = classifier.classify([article.text for article in articles])
    return [
        TaggedArticle(article, result.labels, result.scores, classifier.version, article.published_at, result.embedding)
        for article, result in zip(articles, results, strict=True)
    ]


def cluster_pairs(tagged: Sequence[TaggedArticle], directory: Path) -> dict[str, str]:
    """Write ``tagged`` to a new store in ``directory`` in the order given; return each article's story id."""
    with Store.open(directory / "pairs.duckdb") as store:
        store.write(Batch(tagged=list(tagged)))
        return dict(store.query("SELECT article_id, story_id FROM article_stories").rows)


def scores(pairs: Sequence[Pair], predicted: dict[str, bool]) -> Scores:
    """Pairwise precision, recall and F1 of ``predicted`` (pair id: same event?) over ``pairs``."""
    tp = sum(1 for pair in pairs if pair.same_event and predicted[pair.id])
    fp = sum(1 for pair in pairs if not pair.same_event and predicted[pair.id])
    fn = sum(1 for pair in pairs if pair.same_event and not predicted[pair.id])
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, len(pairs))


PRECISION_FLOOR = 0.8
"""Merging two events is the costlier mistake (a story that is two events misleads every count of it), so the
parameters are the F1-best among those whose precision on the tuning half is at least this."""

WEIGHTS = (0.0, 0.1, 0.2, 0.3)
"""The entity weights and amount penalties tried (each with every threshold from 0.30 to 0.90 by 0.01)."""


@dataclass(frozen=True)
class Parameters:
    threshold: float
    entity_weight: float
    amount_penalty: float

    def __str__(self) -> str:
        return (
            f"threshold {self.threshold:.2f}, entity weight {self.entity_weight:.2f},"
            f" amount penalty {self.amount_penalty:.2f}"
        )


def choose_parameters(pairs: Sequence[Pair], tagged: Sequence[TaggedArticle]) -> tuple[Parameters, Scores]:
    """The event-score parameters with the best F1 over ``pairs`` among those with a precision of at least
    :data:`PRECISION_FLOOR` (of equals: the lowest threshold, then the smallest weights; the F1-best of all when
    none reaches it), with the entity guard and the market-reaction link applied as the store applies them."""
    by_id = {item.article.id: item for item in tagged}
    gazetteer = Gazetteer()
    features: dict[str, tuple[float, set[str], set[str], frozenset[Amount], frozenset[Amount]] | None] = {}
    reactions: set[str] = set()  # linked whatever their score
    for pair in pairs:
        first, second = by_id[pair.a.id], by_id[pair.b.id]
        if first.embedding is None or second.embedding is None:
            raise ValueError(f"pair {pair.id}: the classifier gave no embedding (the transformer backend gives one)")
        rows = unit_rows([first.embedding.values, second.embedding.values])
        named = set(gazetteer.find(pair.a.text)), set(gazetteer.find(pair.b.text))
        value = (float(rows[0] @ rows[1]), *named, amounts(pair.a.text), amounts(pair.b.text))
        features[pair.id] = value if entities_agree(*named) else None  # the guard holds it apart at any score
        if reacts(pair, *named):
            reactions.add(pair.id)
    candidates = []
    for weight, penalty in itertools.product(WEIGHTS, WEIGHTS):
        score = {
            key: math.inf
            if key in reactions
            else -1.0
            if value is None
            else event_score(*value, entity_weight=weight, amount_penalty=penalty)
            for key, value in features.items()
        }
        for threshold in np.round(np.arange(0.30, 0.905, 0.01), 2):
            chosen = Parameters(float(threshold), weight, penalty)
            candidates.append((chosen, scores(pairs, {key: value >= threshold for key, value in score.items()})))
    precise = [item for item in candidates if item[1].precision >= PRECISION_FLOOR] or candidates
    return max(
        precise,
        key=lambda item: (item[1].f1, -item[0].threshold, -item[0].entity_weight, -item[0].amount_penalty),
    )


def reacts(pair: Pair, a_entities: set[str], b_entities: set[str]) -> bool:
    """Whether the store links ``pair`` as a market-reaction piece and an earlier report of its parties."""
    for reaction, report, named, other in (
        (pair.a, pair.b, a_entities, b_entities),
        (pair.b, pair.a, b_entities, a_entities),
    ):
        if (
            is_market_reaction(reaction.title)
            and not is_market_reaction(report.title)
            and report.published_at <= reaction.published_at
            and reaction_links(named, other)
        ):
            return True
    return False


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    args = parser.parse_args(argv)
    from stackwatch.pipeline.roles.classifiers import build_classifier
    from stackwatch.settings import ClassifierSettings
    from stackwatch.signals.taxonomy import Taxonomy

    pairs = load_pairs(args.pairs)
    tagged = tag_pairs(pairs, build_classifier(ClassifierSettings(), Taxonomy.builtin()))
    tune = [pair for pair in pairs if pair.split == "tune"]
    chosen, tuned = choose_parameters(tune, tagged)
    shipped = Parameters(EVENT_SIMILARITY, ENTITY_WEIGHT, AMOUNT_PENALTY)
    print(
        f"pairs: {len(pairs)} ({sum(p.same_event for p in pairs)} same event),"
        f" tune {len(tune)}, test {len(pairs) - len(tune)}"
    )
    print(f"chosen on the tune half: {chosen} ({tuned})")
    print(f"in signals/stories.py:   {shipped}")
    with tempfile.TemporaryDirectory() as directory:
        story = cluster_pairs(tagged, Path(directory))
    predicted = {pair.id: story[pair.a.id] == story[pair.b.id] for pair in pairs}
    for split in ("tune", "test"):
        print(f"store clustering, {split} half: {scores([p for p in pairs if p.split == split], predicted)}")
    test = [pair for pair in pairs if pair.split == "test"]
    for kind in sorted({pair.kind for pair in test}):
        of_kind = [pair for pair in test if pair.kind == kind]
        right = sum(1 for pair in of_kind if predicted[pair.id] == pair.same_event)
        print(f"  test {kind}: {right}/{len(of_kind)} right")


if __name__ == "__main__":
    main()
