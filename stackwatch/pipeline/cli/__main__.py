"""``python -m stackwatch.pipeline.cli``: the ``stackwatch`` command."""

from stackwatch.pipeline.cli.main import main

main()
