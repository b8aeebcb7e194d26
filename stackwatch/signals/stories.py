"""Stories: one event, however many outlets and wordings report it.

Articles are linked when one of these holds:

- **syndicated copy**: their 64-bit SimHash fingerprints over title and summary differ in at most
  ``MAX_DISTANCE`` bits and they were published within ``STORY_WINDOW`` of each other (a wire story run by 40
  outlets);
- **same event**: their :func:`event_score` is at least ``EVENT_SIMILARITY``: the cosine similarity of their
  sentence embeddings (the classifier's, carried on the tagged article), raised by the share of the entities they
  name in common and lowered when they state different amounts (signals/amounts.py); they were published within
  ``EVENT_WINDOW`` of each other, and :func:`entities_agree` (two articles that name companies must name at
  least one in common);
- **market reaction**: one is a market-reaction piece (:func:`is_market_reaction`: "Oracle shares soar on OpenAI
  mega-contract") and the other a report, published no later, that names every entity the reaction names, at
  least two (:func:`reaction_links`). A reaction piece is about the price move, so its wording and embedding say
  little of the deal that caused it, but the parties it names are that deal's.

An article links to every syndicated copy of it, but to one report by the other two links: the one with the best
score among those stored when it is written (same-event links before market-reaction ones). A story is a connected
component of those links: an article that reads like two events (an analyst's note on a season of deals) joins one
of them rather than merging both into one story. Its id is the id of its article fetched first (ties broken by
id), whatever order the articles are stored in: a report fetched later, even one published before the story's
first, joins under that id; when one article joins two stories, the story holding the article fetched first keeps
its id, and the store keeps the other as an alias of it (storage/clustering.py, docs/stories.md)::

    >>> a = simhash("Nvidia unveils Rubin GPUs at GTC, promising twice the performance of Blackwell")
    >>> b = simhash("Nvidia unveils Rubin GPUs at GTC, promising twice the performance of Blackwell | Wire")
    >>> distance(a, b) <= MAX_DISTANCE
    True
    >>> entities_agree({"Anthropic", "Google"}, {"Google"}), entities_agree({"Meta"}, {"Oracle"})
    (True, False)
    >>> from stackwatch.signals.amounts import amounts
    >>> fourteen, six = amounts("CoreWeave signs $14 billion deal"), amounts("a $6.5bn expansion")
    >>> round(event_score(0.40, {"CoreWeave", "Meta"}, {"CoreWeave", "Meta"}, fourteen, amounts("$14bn")), 2)
    0.7
    >>> round(event_score(0.40, {"CoreWeave", "Meta"}, {"CoreWeave", "OpenAI"}, fourteen, six), 2)
    0.2
    >>> is_market_reaction("Oracle shares soar on OpenAI mega-contract"), is_market_reaction("Oracle signs OpenAI deal")
    (True, False)
    >>> reaction_links({"Oracle", "OpenAI"}, {"OpenAI", "Oracle", "Larry Ellison"})
    True
    >>> reaction_links({"Oracle"}, {"Oracle", "OpenAI"})  # "Oracle shares soar": on what?
    False
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import numpy as np

from stackwatch.signals.amounts import Amount, amounts_conflict

__all__ = [
    "AMOUNT_PENALTY",
    "BANDS",
    "ENTITY_WEIGHT",
    "EVENT_SIMILARITY",
    "EVENT_WINDOW",
    "MARKET_REACTION",
    "MAX_DISTANCE",
    "NOVELTY_DECAY",
    "NOVELTY_WINDOW",
    "STORY_WINDOW",
    "bands",
    "components",
    "distance",
    "dynamics_basis",
    "entities_agree",
    "event_score",
    "event_vectors",
    "is_market_reaction",
    "novelty",
    "quantize",
    "reaction_links",
    "simhash",
    "simhash_many",
    "unit_rows",
]

MAX_DISTANCE = 7
"""At most this many differing bits of 64 make two fingerprints near-duplicates. News texts are short, so one
added word moves several bits; on the labelled corpus no two distinct stories come within 12 bits."""
BANDS = 8
"""Fingerprints split into 8 bands of 8 bits: two within 7 bits of each other share at least one band exactly."""
STORY_WINDOW = timedelta(days=3)
EVENT_SIMILARITY = 0.38
"""The :func:`event_score` at or above which two articles report one event. It, ``ENTITY_WEIGHT`` and
``AMOUNT_PENALTY`` were chosen together on the tuning half of tests/data/event_pairs.jsonl
(``python -m benchmarks.event_pairs``)."""
ENTITY_WEIGHT = 0.3
"""How much the Jaccard similarity of two articles' entity sets adds to the cosine of their embeddings."""
AMOUNT_PENALTY = 0.3
"""How much is taken off when two articles state amounts of one unit and none in common ($14bn against $6.5bn)."""
EVENT_WINDOW = timedelta(hours=48)
"""Two reports of one event are at most this far apart; the store keeps the embeddings of this much news only."""
MARKET_REACTION = (
    r"(?i)\b(shares|stock|stocks|market value)\b.{0,40}\b(soars?|surges?|jumps?|rises?|rall(y|ies)|climbs?"
    r"|gains?|slips?|falls?|drops?|sinks?|slumps?|tumbles?|plunges?|hits?|loses?)\b"
)
"""A headline that reports a move of a share price or market value; RE2 syntax, so DuckDB's ``regexp_matches``
finds stored reaction pieces with the same pattern."""
NOVELTY_WINDOW = timedelta(hours=24)
NOVELTY_DECAY = 0.5

_MARKET_REACTION = re.compile(MARKET_REACTION)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "says",
        "said",
        "that",
        "the",
        "to",
        "was",
        "will",
        "with",
    }
)


def _features(text: str) -> list[str]:
    words = [word for word in _WORD.findall(text.casefold()) if word not in _STOPWORDS]
    # Words and word pairs: pairs keep order, words keep a reworded headline close.
    return words + [f"{first} {second}" for first, second in itertools.pairwise(words)]


_HASH_CACHE: dict[str, int] = {}
_HASH_CACHE_SIZE = 500_000


def _hash64(feature: str) -> int:
    cached = _HASH_CACHE.get(feature)
    if cached is None:
        if len(_HASH_CACHE) >= _HASH_CACHE_SIZE:
            _HASH_CACHE.clear()  # news vocabulary repeats: a bounded cache saves most of the hashing
        cached = _HASH_CACHE[feature] = int.from_bytes(
            hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little"
        )
    return cached


def simhash(text: str) -> int:
    """The 64-bit SimHash of ``text`` (0 for a text without words)."""
    return simhash_many([text])[0]


def simhash_many(texts: Sequence[str]) -> list[int]:
    """SimHash of each text, vectorised over the whole batch."""
    counts: list[int] = []
    hashes: list[int] = []
    cache = _HASH_CACHE
    for text in texts:
        features = set(_features(text))
        counts.append(len(features))
        hashes.extend([cache[feature] if feature in cache else _hash64(feature) for feature in features])
    result = [0] * len(texts)
    if not hashes:
        return result
    # One row of 64 bits per feature (bit i of the hash in column i), then ones per bit summed per text.
    bits = np.unpackbits(np.array(hashes, dtype="<u8").view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    sizes = np.array(counts)
    present = sizes > 0
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))[present]
    ones = np.add.reduceat(bits, starts, axis=0, dtype=np.int32)  # a text's features are contiguous rows
    majority = (2 * ones > sizes[present][:, None]).astype(np.uint8)
    packed = np.packbits(majority, axis=1, bitorder="little").view("<u8").ravel()
    for index, value in zip(np.flatnonzero(present), packed, strict=True):
        result[int(index)] = int(value)
    return result


def distance(first: int, second: int) -> int:
    """Hamming distance between two fingerprints."""
    return (first ^ second).bit_count()


def bands(fingerprint: int) -> tuple[int, ...]:
    """The ``BANDS`` 8-bit slices of a fingerprint, low bits first."""
    return tuple((fingerprint >> (8 * band)) & 0xFF for band in range(BANDS))


def components(members: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[set[str]]:
    """Connected components of ``members`` under ``edges`` (union-find); order of input does not matter."""
    parent: dict[str, str] = {member: member for member in members}

    def root(item: str) -> str:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for first, second in edges:
        parent.setdefault(first, first)
        parent.setdefault(second, second)
        a, b = root(first), root(second)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[str, set[str]] = {}
    for member in parent:
        groups.setdefault(root(member), set()).add(member)
    return list(groups.values())


def novelty(members: Sequence[tuple[str, datetime]]) -> dict[str, float]:
    """Novelty of each article of one story: 1.0 for the first within 24 h, halving with each earlier repeat.

    ``members`` are (article id, published at); an article's novelty is ``NOVELTY_DECAY ** n`` where ``n`` is
    how many articles of the story came before it within ``NOVELTY_WINDOW`` (ties ordered by id).
    """
    ordered = sorted(members, key=lambda member: (member[1], member[0]))
    scores: dict[str, float] = {}
    start = 0
    for index, (article, published) in enumerate(ordered):
        while ordered[start][1] < published - NOVELTY_WINDOW:
            start += 1
        scores[article] = NOVELTY_DECAY ** (index - start)
    return scores


def dynamics_basis(directions: Sequence[np.ndarray]) -> np.ndarray | None:
    """An orthonormal basis of ``directions`` (the classifier head's weight vectors), one column each, that
    :func:`event_vectors` removes from embeddings; ``None`` when there are none.

    The head's fine-tuning moves texts of one dynamic towards each other along the directions its regressions
    read, so two capex reports of different events look alike there. What is left, orthogonal to them, is what the
    texts say beyond their dynamic: the event.
    """
    if not directions:
        return None
    orthonormal, _ = np.linalg.qr(np.stack([np.asarray(d, dtype=np.float64) for d in directions]).T)
    basis: np.ndarray = orthonormal.astype(np.float32)
    return basis


def event_vectors(embeddings: np.ndarray, basis: np.ndarray | None) -> np.ndarray:
    """Embeddings as the event score compares them: with the head's directions removed (:func:`dynamics_basis`).
    Two thin products (texts × 4), not a square projection matrix: a 384 × 384 product per batch woke the BLAS
    thread pool, whose spinning threads then competed with the encoder's for the cores.

    >>> basis = dynamics_basis([np.array([1.0, 0.0, 0.0])])
    >>> [round(float(value), 3) for value in event_vectors(np.array([[0.6, 0.8, 0.0]], dtype=np.float32), basis)[0]]
    [0.0, 0.8, 0.0]
    """
    if basis is None:
        return embeddings
    events: np.ndarray = embeddings - (embeddings @ basis) @ basis.T
    return events


def quantize(vector: np.ndarray) -> bytes:
    """One embedding as int8 bytes, scaled so its largest component is ±127 (a cosine does not see the scale)."""
    values = np.asarray(vector, dtype=np.float32)
    peak = float(np.abs(values).max()) if values.size else 0.0
    scaled = values * (127.0 / peak) if peak > 0 else values
    return np.clip(np.rint(scaled), -127, 127).astype(np.int8).tobytes()


def unit_rows(blobs: Sequence[bytes]) -> np.ndarray:
    """Embeddings made by :func:`quantize` as float32 rows of length 1 (their cosine is their dot product)."""
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    rows = np.frombuffer(b"".join(blobs), dtype=np.int8).reshape(len(blobs), -1).astype(np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def entities_agree(first: Iterable[str], second: Iterable[str]) -> bool:
    """The entity guard of the same-event link: false when both articles name entities and none in common.

    Two reports of one event name its parties; two events of the same season often read alike ("signs a
    multi-gigawatt compute deal") but name different companies. An article that names none is not held back."""
    a, b = set(first), set(second)
    return not a or not b or not a.isdisjoint(b)


def event_score(
    cosine: float,
    first_entities: Iterable[str],
    second_entities: Iterable[str],
    first_amounts: frozenset[Amount],
    second_amounts: frozenset[Amount],
    *,
    entity_weight: float = ENTITY_WEIGHT,
    amount_penalty: float = AMOUNT_PENALTY,
) -> float:
    """How alike two reports are as reports of one event: the cosine of their embeddings, plus ``entity_weight``
    times the Jaccard similarity of the entities they name, minus ``amount_penalty`` when the amounts they state
    conflict (:func:`~stackwatch.signals.amounts.amounts_conflict`). The benchmark tries other weights.

    Two outlets' write-ups of one event name the same parties and the same sum in different words; two deals of
    the same companies read alike but name other partners or other sums."""
    a, b = set(first_entities), set(second_entities)
    union = a | b
    shared = len(a & b) / len(union) if union else 0.0
    conflict = amounts_conflict(first_amounts, second_amounts)
    return cosine + entity_weight * shared - (amount_penalty if conflict else 0.0)


def is_market_reaction(title: str) -> bool:
    """Whether a headline reports a share price or market value moving (``MARKET_REACTION``)."""
    return _MARKET_REACTION.search(title) is not None


def reaction_links(reaction_entities: Iterable[str], report_entities: Iterable[str]) -> bool:
    """Whether a market-reaction piece naming ``reaction_entities`` can join a report naming
    ``report_entities``: the reaction names at least two entities, and the report names them all. With one entity
    ("Nvidia shares fall") the cause is unnamed, so any report of that company would do."""
    reaction = set(reaction_entities)
    return len(reaction) >= 2 and reaction <= set(report_entities)
