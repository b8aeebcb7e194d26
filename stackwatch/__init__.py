"""Stackwatch: watch the AI compute market in the news.

The four parts, and the way their imports run:

- ``stackwatch.signals``: the domain (messages, taxonomy, classifier, indicators, rules); imports none of the others.
- ``stackwatch.connectors``: sources that fetch and parse articles; hand them to a producer they are given.
- ``stackwatch.storage``: DuckDB schema, the single writer and the read-only SQL front.
- ``stackwatch.pipeline``: the Faust app, its agents, the service roles, the CLI and the web server.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
