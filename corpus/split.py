"""Split the hand-written corpus parts into train / validation / test, deterministically by story group.

    python corpus/split.py        # rewrites corpus/{train,validation,test}.jsonl from corpus/parts/*.jsonl

A record's ``group`` names the event it retells; every record of a group lands in the same split, so no event is
both trained on and tested on. A record without a group is its own group (its id).

A record may pin itself to training with ``"split": "train"``: records written after the validation and test
splits were measured go to training only, so those splits, and every figure measured on them, stay as they were.
No other value is accepted: nothing can be placed in a held-out split by hand.

The test split is held out: training and threshold selection never read it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).parent
SHARES = (("train", 0.70), ("validation", 0.15), ("test", 0.15))


def split_of(group: str) -> str:
    fraction = int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    total = 0.0
    for name, share in SHARES:
        total += share
        if fraction <= total:
            return name
    return SHARES[-1][0]


def assigned_split(record: dict[str, object]) -> str:
    pinned = record.get("split")
    if pinned is None:
        return split_of(str(record.get("group") or record["id"]))
    if pinned != "train":
        raise SystemExit(f'{record["id"]}: split: only "train" can be pinned (got {pinned!r})')
    return "train"


def splits() -> dict[str, list[dict[str, object]]]:
    """Every record of ``parts/*.jsonl``, by id, in the split it belongs to."""
    records = []
    for part in sorted((HERE / "parts").glob("*.jsonl")):
        records.extend(json.loads(line) for line in part.read_text(encoding="utf-8").splitlines() if line.strip())
    assigned: dict[str, list[dict[str, object]]] = {name: [] for name, _ in SHARES}
    for record in sorted(records, key=lambda r: r["id"]):
        assigned[assigned_split(record)].append(record)
    return assigned


def line(record: dict[str, object]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def main() -> None:
    for name, items in splits().items():
        (HERE / f"{name}.jsonl").write_text("".join(line(item) for item in items), encoding="utf-8")
        print(name, len(items))


if __name__ == "__main__":
    main()
