"""The stop's backstop: a graceful stop that has not ended in time is a bug, named in the log, and the process exits.

    arm(asyncio.get_running_loop(), STOP_WITHIN, before_exit=broker.stop)   # when the services begin to stop

A stop ends by itself: every agent, service and thread ends when stopped, and what Faust would wait for without a
bound (the agents' records, the broker) is waited for ``stop_wait`` at most (:mod:`stackwatch.pipeline.kafka.adapter`,
whose row 12 lists this backstop among the workarounds). The backstop is only for a stop that still does not end.
It logs at CRITICAL every asyncio task's chain of awaits and every thread's stack, calls ``before_exit``
(the embedded broker is stopped there) and exits with status :data:`FORCED_EXIT_STATUS`, so a supervisor, a test
or CI sees that something hung instead of a clean stop. Nothing committed is lost by leaving this way: offsets are
committed only after what they cover was written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["FORCED_EXIT_STATUS", "STOP_WITHIN", "arm", "pending_tasks", "thread_stacks"]

log = logging.getLogger("stackwatch")

STOP_WITHIN = 45.0
"""Seconds the worker's services get to stop (after the drain) before the backstop fires."""

FORCED_EXIT_STATUS = 70
"""The exit status of a stop the backstop ended (``EX_SOFTWARE``: an internal error, here a stop that hung)."""

_LINKS = 20
_FRAMES = 6


def await_chain(task: asyncio.Task[Any]) -> str:
    """Where a task waits: its coroutine and every coroutine it awaits, innermost last (``f@file:line > ...``)."""
    links: list[str] = []
    awaitable: Any = task.get_coro()
    while awaitable is not None and len(links) < _LINKS:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None)
        if frame is None:
            links.append(type(awaitable).__qualname__)
            break
        links.append(f"{frame.f_code.co_name}@{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "ag_await", None)
    return " > ".join(links)


def pending_tasks(loop: asyncio.AbstractEventLoop) -> str:
    """What is still running on ``loop``, for the log: each task's chain of awaits."""
    return "; ".join(sorted(await_chain(task) for task in asyncio.all_tasks(loop))) or "no tasks"


def thread_stacks() -> str:
    """Every other thread's name and innermost frames (``name[daemon]: f@file:line < ...``, innermost first).

    A stop can also hang after the event loop closed, in a thread the interpreter joins at exit."""
    frames = sys._current_frames()
    found: list[str] = []
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.ident not in frames:
            continue
        links: list[str] = []
        frame: Any = frames[thread.ident]
        while frame is not None and len(links) < _FRAMES:
            links.append(f"{frame.f_code.co_name}@{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}")
            frame = frame.f_back
        found.append(f"{thread.name}{'[daemon]' if thread.daemon else ''}: {' < '.join(links)}")
    return "; ".join(sorted(found)) or "no other threads"


def _fire(loop: asyncio.AbstractEventLoop, within: float, before_exit: Callable[[], None] | None) -> None:
    log.critical(
        "stopping: BUG: the stop did not end %.0fs after the signal; exiting with status %d. Tasks still running: %s. "
        "Threads: %s",
        within,
        FORCED_EXIT_STATUS,
        pending_tasks(loop),
        thread_stacks(),
    )
    if before_exit is not None:
        try:
            before_exit()
        except Exception:
            log.exception("stopping: cleanup before the forced exit failed")
    logging.shutdown()
    os._exit(FORCED_EXIT_STATUS)


def arm(
    loop: asyncio.AbstractEventLoop, within: float, before_exit: Callable[[], None] | None = None
) -> threading.Timer:
    """Start the backstop: unless the process has exited ``within`` seconds from now, log what still runs on
    ``loop`` and in every thread, call ``before_exit`` and exit with :data:`FORCED_EXIT_STATUS`.

    A daemon timer: a process that ends normally never waits for it."""
    timer = threading.Timer(within, _fire, [loop, within, before_exit])
    timer.name = "stackwatch-stop-backstop"
    timer.daemon = True
    timer.start()
    return timer
