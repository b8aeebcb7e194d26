"""What the handlers are handed: one :class:`WebContext`, built by :func:`~stackwatch.pipeline.web.app.register_web`
and stored on the aiohttp application under :data:`WEB`, and the store it leads to.

A handler reads ``context_of(request)`` and takes from it only what it uses; none of them sees the settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, TypeAlias, cast

from aiohttp import web as aioweb
from faust.web import Request, Response, View

from stackwatch.errors import StoreError
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.pipeline.runtime import Runtime
from stackwatch.pipeline.web.figures import LiveFigures
from stackwatch.pipeline.web.requests import BadRequest, json_answer, refusal
from stackwatch.pipeline.web.sqlfront import SqlFront

__all__ = ["NO_STORE", "WEB", "Routes", "WebContext", "context_of", "on_store", "store_thread"]

log = logging.getLogger(__name__)

NO_STORE = "this process does not hold the store (run the sink role)"

Routes: TypeAlias = tuple[tuple[str, type[View]], ...]
"""A module's pages: each path and the view that answers it."""


@dataclass(frozen=True, slots=True)
class WebContext:
    """The service's parts the JSON endpoints and the probes read."""

    runtime: Runtime
    """The roles this process runs (read per request: the sink's store opens, a reload swaps the scheduler)."""
    servers: tuple[str, ...]
    """The broker's bootstrap servers, which readiness checks."""
    figures: LiveFigures
    sql: SqlFront
    started: float = field(default_factory=time.monotonic)
    """When the pages were registered (``time.monotonic()``), for the uptime of ``/api/status``."""


WEB: Final = aioweb.AppKey("stackwatch.web", WebContext)


def context_of(request: Request) -> WebContext:
    """The context of the application serving ``request``."""
    return cast(aioweb.Request, request).app[WEB]  # Faust's aiohttp driver hands aiohttp's request


def store_thread(runtime: Runtime) -> StoreThread:
    """The sink's store thread, the one DuckDB writer; BadRequest (503) when this process does not hold it."""
    if runtime.sink is None or runtime.sink.store_thread is None:
        raise BadRequest(NO_STORE, 503)
    return runtime.sink.store_thread


async def on_store(runtime: Runtime, answer: Callable[[StoreThread], Awaitable[Response]]) -> Response:
    """``answer(thread)``, with refusals and store failures as JSON errors (never a 500)."""
    try:
        return await answer(store_thread(runtime))
    except BadRequest as error:
        return refusal(error)
    except ValueError as error:  # the store's own checks (a silence's end, its matchers)
        return json_answer({"error": str(error)}, 400)
    except StoreError as error:
        log.warning("web: %s", error)
        return json_answer({"error": f"the store cannot answer: {error}"}, 503)
