"""Speed claims, each one command printing ratios against a baseline measured in the same run.

python -m benchmarks          # all of them
python -m benchmarks.sink     # one
"""
