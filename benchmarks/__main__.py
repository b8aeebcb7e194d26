"""Run every benchmark in turn: ``python -m benchmarks`` (``make bench``): speed against a baseline measured in
the same run, and the quality figures the docs quote (classifier variants, event pairs).

``benchmarks.scale`` is not among them: at its default sizes (1 M and 10 M articles) it runs for most of an hour,
longer than all of these together. Run it on its own: ``python -m benchmarks.scale``. Nor is
``benchmarks.full_fine_tuning``, which trains the encoder for about 25 minutes.
"""

from __future__ import annotations

import importlib

BENCHMARKS = [
    "benchmarks.sink",
    "benchmarks.increments",
    "benchmarks.classifier",
    "benchmarks.variants",
    "benchmarks.event_pairs",
    "benchmarks.stories",
    "benchmarks.pipeline",
]


def main() -> None:
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        importlib.import_module(name).main([])


if __name__ == "__main__":
    main()
