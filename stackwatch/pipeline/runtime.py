"""What one process runs (:class:`Runtime`), apart from how it is built (:mod:`stackwatch.pipeline.app`), so the
web pages, the dashboard and the reload can name it without importing the app that imports them."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

import faust
from mode import Service

from stackwatch.pipeline.roles.ingest import IngestService
from stackwatch.pipeline.roles.sink import SinkService
from stackwatch.pipeline.roles.source_health import SourceHealthService
from stackwatch.signals.classifier import Classifier
from stackwatch.signals.rules import RuleEngine

__all__ = ["ROLES", "Runtime"]

ROLES = ("ingest", "worker", "sink")


@dataclass
class Runtime:
    """What one process runs: the Faust app and the role services beside it."""

    app: faust.App
    roles: frozenset[str]
    ingest: IngestService | None = None
    sink: SinkService | None = None
    classifier: Future[Classifier] | None = None
    rules: RuleEngine | None = None
    """The worker's rule engine; a reload replaces it."""
    health: SourceHealthService | None = None
    """The sink's watcher of the ``source_health`` rules; a reload reconfigures it."""

    def current_rules(self) -> RuleEngine:
        """The engine the rules agent applies to each update (read per update, so a reload takes effect)."""
        if self.rules is None:
            raise RuntimeError("this process runs no worker role")
        return self.rules

    services: list[Service] = field(default_factory=list)
