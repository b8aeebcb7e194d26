"""Why an article carries a label: the sentence whose tokens add most to that dynamic's logit, and how much.

The transformer backend's embedding is the mean of the encoder's token states ``h_t`` over the text's ``n``
tokens, L2-normalised: ``e = m / |m|`` with ``m = sum(h_t) / n``. A dynamic's score is a sigmoid of a linear
function of ``e``: ``w·e + b`` for a head's logistic regression, ``k (p·e - threshold)`` for a dynamic scored by
similarity to its closest prototype ``p``. So the logit splits exactly into one share per token::

    share_t = k (d·h_t / (n |m|) + c / n)        # d, c, k: w, b, 1 (head) or p, -threshold, SHARPNESS (similarity)

and a sentence's share is the sum over its tokens. Every sentence's share plus the two special tokens' ([CLS],
[SEP]) is the logit the score came from; the explanation of a label is the sentence with the largest share, with
that share as its score (log-odds: +2 means the sentence alone moved the odds about sevenfold). The token states
come out of the same forward pass as the embedding, so explaining costs no second encoder pass. Token states are
contextual: a sentence's share is what the classifier read at its tokens, with the rest of the article around it.
Tokens past the encoder's truncation were not read, so sentences there are never an explanation::

    >>> tokens = TokenStates(np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32), np.array([-1, 0, 4]))
    >>> strongest("Up. No.", tokens, np.array([[1.0, 0.0]]), np.array([0.0]), np.array([1.0]))
    [('Up.', 0.447)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["SENTENCE_CHARS", "TokenStates", "sentence_spans", "strongest"]

SENTENCE_CHARS = 300
"""A longer sentence (a paragraph without full stops) is kept to its first 300 characters and an ellipsis."""

_CLOSERS = "\"'”’)]"
_BREAK = re.compile(r"\n+|(?<=[.!?])[\"'”’)\]]*\s+")
_INITIALISM = re.compile(r"(?:^|[\s(\"'“‘])(?:[A-Za-z]\.){2,}$")
"""``U.S.``, ``U.K.``, ``e.g.``: before a space, not the end of a sentence."""
_TITLES = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "sen", "rep", "gen", "gov", "vs", "approx", "jr", "sr"})
"""Words ending in a full stop that never end a sentence before another word."""
_SUFFIXES = frozenset({"inc", "corp", "co", "ltd", "plc", "llc", "bhd"})
"""Company suffixes: a sentence can end in one, so they end one only before a capital letter."""


def _abbreviated(text: str, stop: int, after: str) -> bool:
    """Is the full stop at ``text[stop]`` an abbreviation's, with ``after`` the character that follows the space?"""
    before = text[max(0, stop - 40) : stop + 1]  # the word before is all that matters
    if after[:1].islower() or _INITIALISM.search(before):
        return True
    word = before[:-1].rsplit(None, 1)[-1].lstrip("(\"'“‘").casefold() if before[:-1].strip() else ""
    return word in _TITLES or (word in _SUFFIXES and not after[:1].isupper())


@dataclass(frozen=True, slots=True)
class TokenStates:
    """One text's token states as its encoder computed them, padding left out.

    ``states`` is ``(tokens, dimension)``; ``starts[t]`` is the character offset in the text where token ``t``
    begins, -1 for a special token ([CLS], [SEP]) that stands for no text."""

    states: np.ndarray
    starts: np.ndarray


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``: lines (a title is one), then runs ending in ``.``, ``!`` or ``?``
    before white space, trimmed. "$1.5bn" stays whole, and so does a sentence with an abbreviation: an initialism
    ("the U.S. Commerce Department"), a title ("Dr. Su"), a company suffix before a lower-case word ("Nvidia
    Corp. said"); any full stop before a lower-case word.

    >>> text = "Meta lifts capex\\nIt will spend $70bn in the U.S. Commerce approved. Shares rose!"
    >>> [text[a:b] for a, b in sentence_spans(text)]
    ['Meta lifts capex', 'It will spend $70bn in the U.S. Commerce approved.', 'Shares rose!']
    """
    spans = []
    start = 0
    for found in [*_BREAK.finditer(text), None]:
        end = len(text)
        if found is not None:
            closers = len(found.group()) - len(found.group().lstrip(_CLOSERS))
            stop = found.start() - 1
            if (
                text[found.start()] != "\n"
                and text[stop] == "."
                and _abbreviated(text, stop, text[found.end() : found.end() + 1])
            ):
                continue
            end = found.start() + closers  # a closing quote or bracket stays with its sentence
        piece = text[start:end]
        left = len(piece) - len(piece.lstrip())
        if piece.strip():
            spans.append((start + left, start + len(piece.rstrip())))
        start = found.end() if found is not None else len(text)
    return spans


def _clip(sentence: str) -> str:
    if len(sentence) <= SENTENCE_CHARS:
        return sentence
    return sentence[:SENTENCE_CHARS].rstrip() + "…"


def strongest(
    text: str, tokens: TokenStates, directions: np.ndarray, offsets: np.ndarray, scales: np.ndarray
) -> list[tuple[str, float]]:
    """For each of ``k`` dynamics (row ``i`` of ``directions``, ``(k, dimension)``, with ``offsets[i]`` and
    ``scales[i]``: ``d``, ``c`` and ``k`` above) the sentence of ``text`` with the largest share of its logit, and
    that share rounded to 3 decimals. A text whose tokens fall in no sentence gets ``("", 0.0)``."""
    states = tokens.states.astype(np.float32, copy=False)
    count = states.shape[0]
    norm = float(np.linalg.norm(states.sum(axis=0) / count))
    shares = scales[None, :] * (states @ directions.T.astype(np.float32) / (count * max(norm, 1e-12)) + offsets / count)
    spans = sentence_spans(text)
    sentence_index = np.searchsorted([start for start, _ in spans], tokens.starts, side="right") - 1
    token_index = np.flatnonzero((tokens.starts >= 0) & (sentence_index >= 0))  # special tokens are in none
    if not len(token_index):
        return [("", 0.0)] * directions.shape[0]
    sentence_index = sentence_index[token_index]
    read = np.unique(sentence_index)  # sentences with at least one token the encoder read
    found = []
    for column in range(directions.shape[0]):
        totals = np.bincount(sentence_index, weights=shares[token_index, column], minlength=len(spans))
        best = int(read[np.argmax(totals[read])])
        start, end = spans[best]
        found.append((_clip(text[start:end]), round(float(totals[best]), 3)))
    return found
