"""What a ``rebuild`` of a large store holds in memory: the process's RSS beside what DuckDB accounts for (and
``storage.memory_limit`` caps), sampled while the rebuild runs.

    python -m benchmarks.rebuild_memory                          # 10,000,000 articles, 1GB cap
    python -m benchmarks.rebuild_memory --size 1000000 --keep /tmp/store.duckdb

The store is filled as ``benchmarks.scale`` fills it (four years of a news market), in a child process, so this
process starts as ``stackwatch rebuild`` does: the interpreter, the libraries and an open store. The samples are
queries on a cursor of their own; ``benchmarks.scale`` cannot take them during its rebuild, because an open
sampling transaction keeps DuckDB from checkpointing and changes the file it measures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks.fill import Market, fill_market
from benchmarks.machine import machine
from benchmarks.scale import COMPOSITES, duckdb_peak, peak_rss, reset_peak_rss
from stackwatch.signals.entities import Gazetteer
from stackwatch.storage.derive import Derivation
from stackwatch.storage.store import DEFAULT_MEMORY_LIMIT, Store

__all__ = ["main", "measure"]


def _fill(path: Path, size: int, memory_limit: str) -> None:
    market = Market(size)
    derivation = Derivation(Gazetteer(market.entities), COMPOSITES)
    with Store.open(path, derivation=derivation, memory_limit=memory_limit) as store:
        fill_market(store, market)


def measure(path: Path, size: int, memory_limit: str) -> list[str]:
    """Rebuild the store at ``path`` (filled with ``size`` articles) and report its memory."""
    market = Market(size)
    derivation = Derivation(Gazetteer(market.entities), COMPOSITES)
    with Store.open(path, derivation=derivation, memory_limit=memory_limit) as store:
        reset_peak_rss()  # the high-water mark starts again at the RSS of now
        at_open = peak_rss()
        started = time.perf_counter()
        with duckdb_peak(store.connection) as accounted:
            rows = store.rebuild()
        seconds = time.perf_counter() - started
        highest = peak_rss()
    outside = highest - accounted[0]
    return [
        f"== rebuild of {size:,} articles under storage.memory_limit {memory_limit}: {seconds:,.0f} s,"
        f" {rows:,} indicator rows",
        f"  RSS with the store open          {at_open / 1e6:7,.0f} MB  (the interpreter and the libraries)",
        f"  RSS at its peak                  {highest / 1e6:7,.0f} MB",
        f"  DuckDB's accounted peak          {accounted[0] / 1e6:7,.0f} MB  (what memory_limit caps)",
        f"  the rest                         {outside / 1e6:7,.0f} MB  (the interpreter, and what DuckDB does not"
        " account for)",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rebuild_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000, help="articles in the store")
    parser.add_argument("--memory-limit", default=DEFAULT_MEMORY_LIMIT, help="storage.memory_limit")
    parser.add_argument("--keep", type=Path, help="fill (or reuse) the store at this path and keep it")
    args = parser.parse_args(argv)
    print(f"{machine()}; DuckDB {duckdb.__version__}", flush=True)
    with tempfile.TemporaryDirectory(prefix="stackwatch-rebuild-memory-") as tmp:
        path = args.keep or Path(tmp) / "store.duckdb"
        if not path.exists():
            spawn = multiprocessing.get_context("spawn")
            child = spawn.Process(target=_fill, args=(path, args.size, args.memory_limit))
            child.start()
            child.join()
            if child.exitcode != 0:
                raise SystemExit(f"filling {path} failed (exit code {child.exitcode})")
        for line in measure(path, args.size, args.memory_limit):
            print(line, flush=True)


if __name__ == "__main__":
    main()
