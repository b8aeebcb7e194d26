"""Re-reading the configuration in a running service: SIGHUP, ``POST /api/reload``, ``stackwatch reload``.

    reloader = install_reload(runtime, settings, Path("stackwatch.yaml"))   # also installs the SIGHUP handler
    report = await reloader.reload()     # report.applied, report.restart_needed, report.error

What changes live: ``sources`` (the ingest role restarts its scheduler on the new list; sources whose settings
did not change keep their state and checkpoint, so nothing is fetched twice) and ``webhooks`` / ``alerting``
(the sink's deliverer takes the new targets and grouping from its next round), and ``rules`` (the worker's
engine is replaced; rules that stay keep their state; the ``source_health`` watcher judges the new rules and
sources from its next round). Silences live in DuckDB and apply when a group is sent,
so they need no reload. ``kafka``, ``storage``, ``state``, ``web``,
``classifier``, ``dynamics``, ``entities`` and ``indicators`` need a restart: a reload reports them and leaves
them as they were. An invalid file is refused with its reason and the running configuration is kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

from faust.web import Request, Response, View

from stackwatch.errors import ConfigError
from stackwatch.pipeline.roles.agents.rules import build_engine
from stackwatch.pipeline.roles.delivery import grouping_from
from stackwatch.pipeline.roles.source_health import watched
from stackwatch.pipeline.runtime import Runtime
from stackwatch.settings import Settings, load_settings

__all__ = ["LIVE_KEYS", "ReloadReport", "Reloader", "install_reload"]

log = logging.getLogger(__name__)

LIVE_KEYS = ("sources", "webhooks", "rules", "alerting")
"""Top-level keys a reload applies without a restart."""


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What a reload did: the keys it applied, the changed keys that need a restart, or why it refused."""

    ok: bool
    applied: tuple[str, ...] = ()
    restart_needed: tuple[str, ...] = ()
    error: str | None = None


class Reloader:
    """Holds the running settings and swaps the live parts for a newly validated file.

    It holds the whole file, since a reload compares every section to say which changed and need a restart; each
    live section goes to the parts that use it (``sources`` to the ingest, ``rules`` and ``alerting.routes``
    to the rule engine, those and ``sources`` to the source-health watcher, ``webhooks`` and ``alerting`` to the
    deliverer)."""

    def __init__(self, runtime: Runtime, settings: Settings, path: Path) -> None:
        self.runtime = runtime
        self.settings = settings
        self.path = path
        self._lock = asyncio.Lock()

    async def reload(self) -> ReloadReport:
        async with self._lock:
            try:
                new = load_settings(self.path)
            except ConfigError as error:
                log.error("reload refused, keeping the running configuration: %s", error)
                return ReloadReport(ok=False, error=str(error))
            old = self.settings
            changed = [key for key in type(old).model_fields if getattr(old, key) != getattr(new, key)]
            applied = tuple(key for key in changed if key in LIVE_KEYS)
            restart = tuple(key for key in changed if key not in LIVE_KEYS)
            if "sources" in applied and self.runtime.ingest is not None:
                await self.runtime.ingest.replace_sources(new.sources)
            if ("rules" in applied or "alerting" in applied) and self.runtime.rules is not None:
                # Rule state is keyed by rule name and dedup key: rules that stay keep their streaks and cooldowns.
                self.runtime.rules = build_engine(new.rules, new.alerting, new.indicators.baseline_params())
            if {"rules", "sources", "alerting"} & set(applied) and self.runtime.health is not None:
                self.runtime.health.watcher.reconfigure(*watched(new))
            if ("webhooks" in applied or "alerting" in applied) and self.runtime.sink is not None:
                deliverer = self.runtime.sink.deliverer
                if deliverer is not None:
                    deliverer.reconfigure({hook.name: hook for hook in new.webhooks}, grouping_from(new.alerting))
            # Keys that need a restart keep their running values, so a later reload compares against those.
            self.settings = old.model_copy(update={key: getattr(new, key) for key in applied})
            log.info(
                "reloaded %s: applied %s%s",
                self.path,
                ", ".join(applied) or "nothing (no live key changed)",
                f"; needs a restart: {', '.join(restart)}" if restart else "",
            )
            return ReloadReport(ok=True, applied=applied, restart_needed=restart)

    def install_sighup(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reload on SIGHUP (the conventional signal for a daemon to re-read its configuration)."""
        tasks: set[asyncio.Task[ReloadReport]] = set()

        def on_hangup() -> None:
            task = loop.create_task(self.reload())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hangup)


def install_reload(runtime: Runtime, settings: Settings, path: Path) -> Reloader:
    """Serve ``POST /api/reload`` and reload on SIGHUP (call before the worker starts, in the main thread)."""
    reloader = Reloader(runtime, settings, path)

    class Reload(View):
        async def post(self, request: Request) -> Response:
            report = await reloader.reload()
            payload = json.dumps(asdict(report)).encode("utf-8")
            return self.bytes(payload, content_type="application/json", status=200 if report.ok else 422)

    runtime.app.page("/api/reload")(Reload)
    reloader.install_sighup(runtime.app.loop)
    return reloader
