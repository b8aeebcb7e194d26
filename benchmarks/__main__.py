"""Run every benchmark in turn: ``python -m benchmarks`` (``make bench``)."""

from __future__ import annotations

import importlib

BENCHMARKS = [
    "benchmarks.sink",
    "benchmarks.classifier",
    "benchmarks.pipeline",
]


def main() -> None:
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        importlib.import_module(name).main([])


if __name__ == "__main__":
    main()
