"""A small write into days of few and of many stored articles: measures kept by increments against the recount of
every bucket the write touches, the baseline, measured in the same run.

    python -m benchmarks.increments                      # 100 articles a write, days of 70, 6,700 and 20,000
    python -m benchmarks.increments --batch 500 --writes 6

For each density it fills one store as ``benchmarks.scale`` does, copies it, and writes the same batches near
the live edge into both copies, alternating which goes first: one store keeps its measures by increments
(``increments_above=0``), the other recounts (``increments_above`` beyond any day). It prints the median write of
each and their ratio, and checks that the two stores hold the same indicator rows. The store's default
(``storage.derive.INCREMENTS_ABOVE``) picks increments for days holding more stored articles than it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchmarks.fill import Market, fill_market, phrase, synthetic
from benchmarks.machine import machine
from benchmarks.scale import COMPOSITES
from stackwatch.signals.entities import Gazetteer
from stackwatch.storage.derive import INCREMENTS_ABOVE, Derivation
from stackwatch.storage.store import Batch, Store

__all__ = ["main", "measure"]

DENSITIES = ((100_000, 1461), (100_000, 15), (300_000, 15))
"""(articles, days) of each store: about 70, 6,700 and 20,000 articles a day."""
_INDICATORS = "SELECT * EXCLUDE (updated_at) FROM indicators ORDER BY ALL"


def measure(size: int, days: int, batch: int, writes: int, directory: Path) -> str:
    """One line: the median write by increments and by recount into a store of ``size`` articles over ``days``."""
    market = Market(size, days=days)
    gazetteer = Gazetteer(market.entities)
    path = directory / f"increments-{size}-{days}.duckdb"
    with Store.open(path, derivation=Derivation(gazetteer, COMPOSITES)) as store:
        fill_market(store, market)
        store.rebuild()
        store.connection.execute("CHECKPOINT")
    copy = path.with_suffix(".recount.duckdb")
    shutil.copyfile(path, copy)
    entities = [phrase(entity, gazetteer) for entity in market.entities]
    seconds: dict[str, list[float]] = {"increments": [], "recount": []}
    with (
        Store.open(path, derivation=Derivation(gazetteer, COMPOSITES, increments_above=0)) as increments,
        Store.open(copy, derivation=Derivation(gazetteer, COMPOSITES, increments_above=10**15)) as recount,
    ):
        stores = {"increments": increments, "recount": recount}
        for number in range(writes):
            probe = synthetic(
                batch,
                seed=200 + number,
                start=market.end - timedelta(hours=36 - number),
                days=batch / (size / days),  # as long as the market takes to publish them
                prefix=f"w{number}_",
                dynamics=market.dynamics,
                entities=entities,
                sources=market.sources(),
                weights=market.source_weights(),
            )
            order = ("increments", "recount") if number % 2 else ("recount", "increments")
            for name in order:
                started = time.perf_counter()
                stores[name].write(Batch(tagged=probe))
                seconds[name].append(time.perf_counter() - started)
        same = increments.query(_INDICATORS).rows == recount.query(_INDICATORS).rows
    path.unlink()
    copy.unlink()
    kept, counted = (statistics.median(seconds[name]) for name in ("increments", "recount"))
    return (
        f"{size:>9,} articles over {days:>4} days ({size // days:>6,} a day): increments {kept * 1000:6,.0f} ms,"
        f" recount {counted * 1000:6,.0f} ms, ratio {kept / counted:.2f}; same rows: {'yes' if same else 'NO'}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.increments", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100, help="articles per write")
    parser.add_argument("--writes", type=int, default=10, help="writes per store (median)")
    options = parser.parse_args(argv)
    print(machine())
    print(
        f"writes of {options.batch} articles, median of {options.writes}; default increments_above {INCREMENTS_ABOVE:,}"
    )
    with tempfile.TemporaryDirectory(prefix="stackwatch-increments-") as directory:
        for size, days in DENSITIES:
            print(measure(size, days, options.batch, options.writes, Path(directory)), flush=True)


if __name__ == "__main__":
    main()
