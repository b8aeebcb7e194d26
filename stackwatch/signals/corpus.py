"""Labelled texts for training and evaluation: JSONL records ``{"id", "title", "text", "labels"}``.

>>> item = LabelledText.from_dict({"id": "a", "title": "TPU deal", "text": "", "labels": ["decoupling"]})
>>> item.content, item.labels
('TPU deal', ('decoupling',))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stackwatch.errors import StackwatchError

__all__ = ["CorpusError", "LabelledText", "combine", "read_labelled"]


class CorpusError(StackwatchError):
    """A labelled data file could not be read; the message names the file and line."""


def combine(title: object, text: object) -> str:
    """The classifier's input: title first (truncation keeps it), then the body or summary."""
    return "\n".join(str(part).strip() for part in (title, text) if part and str(part).strip())


@dataclass(frozen=True, slots=True)
class LabelledText:
    id: str
    content: str
    labels: tuple[str, ...]

    @classmethod
    def from_dict(cls, data: object) -> LabelledText:
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        labels = data.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise ValueError("labels: expected a list of dynamic names")
        content = combine(data.get("title"), data.get("text"))
        if not content:
            raise ValueError("no title or text")
        return cls(str(data.get("id", "")), content, tuple(labels))


def read_labelled(path: str | Path) -> list[LabelledText]:
    """Every record of a labelled JSONL file; a bad line raises :class:`CorpusError` naming it."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CorpusError(f"{file}: cannot read: {error}") from error
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(LabelledText.from_dict(json.loads(line)))
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            raise CorpusError(f"{file}:{number}: {error}") from error
    if not items:
        raise CorpusError(f"{file}: no labelled records")
    return items
