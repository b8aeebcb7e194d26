"""The labelled corpus's splits: what ``corpus/split.py`` writes from ``corpus/parts``, and what a record may pin.

The held-out splits are only held out if nobody edits them by hand and nothing can be placed in them on purpose.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


@pytest.fixture(scope="module")
def split() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus_split", CORPUS / "split.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_split_files_are_exactly_what_split_py_writes_from_the_parts(split: ModuleType) -> None:
    for name, records in split.splits().items():
        written = (CORPUS / f"{name}.jsonl").read_text(encoding="utf-8")
        assert written == "".join(split.line(record) for record in records), name


def test_a_record_pinned_to_training_goes_there_whatever_its_group_hashes_to(split: ModuleType) -> None:
    held_out = next(f"g{n}" for n in range(1000) if split.split_of(f"g{n}") == "test")
    assert split.assigned_split({"id": "x-1", "group": held_out}) == "test"
    assert split.assigned_split({"id": "x-1", "group": held_out, "split": "train"}) == "train"


@pytest.mark.parametrize("pinned", ["test", "validation", "Train", True])
def test_nothing_can_be_pinned_into_a_held_out_split(split: ModuleType, pinned: object) -> None:
    with pytest.raises(SystemExit, match=r'x-1: split: only "train" can be pinned'):
        split.assigned_split({"id": "x-1", "split": pinned})
