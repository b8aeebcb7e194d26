"""Speed claims, each one command printing ratios against a baseline measured in the same run.

python -m benchmarks          # all of them
python -m benchmarks.sink     # one (also: benchmarks.classifier, benchmarks.pipeline)
python -m benchmarks.pipeline --soak-minutes 30   # the soak: flat memory over a long run
"""
