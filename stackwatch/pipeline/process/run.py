"""Running roles in this process: the embedded broker when none is configured, the Faust worker, clean exit."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path

from stackwatch import __version__
from stackwatch.errors import BrokerError, StackwatchError
from stackwatch.pipeline.app import ROLES, Runtime, build_runtime
from stackwatch.pipeline.kafka.adapter import StackwatchWorker
from stackwatch.pipeline.kafka.broker import EmbeddedBroker
from stackwatch.pipeline.kafka.producer import wait_for_broker
from stackwatch.pipeline.process import backstop
from stackwatch.pipeline.process.guide import first_run_guide
from stackwatch.pipeline.process.logs import log_formatter, log_level
from stackwatch.pipeline.process.recycle import Recycler, restart_in_place
from stackwatch.pipeline.process.reload import install_reload
from stackwatch.settings import Settings

__all__ = ["run_roles"]

log = logging.getLogger("stackwatch")

_QUIET_LIBRARIES = ("faust", "mode", "aiokafka", "kafka", "aiohttp", "httpx", "httpcore")


def _before_stop(
    drain: Callable[[], Awaitable[None]] | None, before_forced_exit: Callable[[], None] | None
) -> Callable[[], Awaitable[None]]:
    """What a stop signal runs before the services stop: the drain, then the backstop is armed (even if it failed)."""

    async def before_stop() -> None:
        try:
            if drain is not None:
                await drain()
        finally:
            # The stop ends by itself: Faust's waits for the agents' records and for the broker are bounded
            # (StackwatchApp.stop_wait, kafka/adapter/stop.py). The backstop only names a stop that still hangs, and
            # exits non-zero.
            backstop.arm(asyncio.get_running_loop(), backstop.STOP_WITHIN, before_forced_exit)

    return before_stop


def _log_setup(level: str, log_format: str, banner: str) -> Callable[[logging.Logger], None]:
    """Stackwatch's log levels and format on the root logger Faust's worker set up: ours as configured, the
    libraries' at warning."""
    stackwatch_level = log_level(level)

    def configure(logger: logging.Logger) -> None:
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            handler.setFormatter(log_formatter(log_format, stream))
        logging.getLogger("stackwatch").setLevel(stackwatch_level)
        for name in _QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(stackwatch_level)))
        log.info("%s", banner)

    return configure


async def drain_pipeline(runtime: Runtime, within: float) -> None:
    """Stop the connectors, then wait (at most ``within`` seconds) until the store holds every article they read.

    Sources' checkpoints follow what is stored, so what is not stored by then is read again at the next start.
    """
    if runtime.ingest is None:
        return
    await runtime.ingest.halt()
    log.info(
        "stopping: connectors halted; waiting until the store holds the %d article(s) read (at most %.0fs)",
        runtime.ingest.scheduler.unstored,
        within,
    )
    left = await runtime.ingest.settle(within)
    if left:
        log.warning(
            "stopping: %d article(s) read are not stored after %.0fs (storage.drain_timeout); their sources read "
            "them again at the next start",
            left,
            within,
        )
    else:
        log.info("stopping: every article read is stored")


def _check_web_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StackwatchError(
                f"web: cannot listen on {host}:{port} ({error.strerror}); is another stackwatch running? "
                "Set web.port or pass --web-port"
            ) from error


def _wait_for_broker(servers: Sequence[str], level: str) -> None:
    """Faust's worker gives up if the cluster is unreachable at start: wait for it here, saying so."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(log_formatter("auto", sys.stderr))
    for name in ("stackwatch", "aiokafka"):
        logging.getLogger(name).addHandler(handler)
    logging.getLogger("stackwatch").setLevel(log_level(level))
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # our own line says it, once per attempt
    try:
        asyncio.run(wait_for_broker(servers))
    finally:
        for name in ("stackwatch", "aiokafka"):
            logging.getLogger(name).removeHandler(handler)
        logging.getLogger("aiokafka").setLevel(logging.NOTSET)


def _quiet_idle_inference_threads() -> None:
    """Let torch's OpenMP threads sleep between batches instead of spinning (unless the operator chose).

    In the service the inference threads wait between batches while the event loop and DuckDB need the same cores;
    spinning there cost ~7 ms of CPU per article in ``benchmarks/pipeline.py`` (22.9 -> 16.1 ms per article).
    libgomp reads the variable when torch loads, which in the service happens later, in the model processes (they
    inherit the environment).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "torch" in sys.modules:
        log.debug("torch was loaded before OMP_WAIT_POLICY was set; its threads keep their wait policy")


def run_roles(
    settings: Settings, roles: Collection[str], *, web_port: int | None = None, config_file: Path | None = None
) -> None:
    """Run ``roles`` until SIGINT/SIGTERM; start (and stop) the embedded broker when none is configured.

    With ``config_file``, SIGHUP and ``POST /api/reload`` re-read it (:mod:`stackwatch.pipeline.process.reload`).
    """
    _check_web_port(settings.web.host, settings.web.port if web_port is None else web_port)
    _quiet_idle_inference_threads()
    servers = settings.kafka.bootstrap_servers
    broker: EmbeddedBroker | None = None
    try:
        (settings.state.path / "faust").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StackwatchError(f"state.path: cannot create {settings.state.path}: {error}") from error
    if servers is None:
        if set(roles) != set(ROLES):
            raise BrokerError(
                "kafka.bootstrap_servers is not set: only `stackwatch up` starts an embedded broker; "
                "the ingest, worker and sink roles share a real Kafka"
            )
        broker = EmbeddedBroker(
            log_file=settings.state.path / "broker.log", pid_file=settings.state.path / "broker.pid"
        )
        broker.start()
        servers = [broker.bootstrap]
    else:
        _wait_for_broker(servers, settings.log.level)
    recycler = _recycler(broker, settings)
    try:
        runtime = build_runtime(settings, roles, servers, web_port=web_port, embedded=broker is not None)
        if config_file is not None:
            install_reload(runtime, settings, config_file)
        banner = (
            f"stackwatch {__version__}: roles {','.join(sorted(roles))}; broker {','.join(servers)}"
            f"{' (embedded, memory only)' if broker else ''}; web http://{settings.web.host}:"
            f"{runtime.app.conf.web_port}; store {settings.storage.path}"
        )
        guide = first_run_guide(settings, web_port=runtime.app.conf.web_port, config_file=config_file)
        drain = (lambda: drain_pipeline(runtime, settings.storage.drain_timeout)) if runtime.sink is not None else None
        worker = StackwatchWorker(
            runtime.app,
            *runtime.services,
            loglevel="INFO",
            quiet=True,
            configure_logging=_log_setup(settings.log.level, settings.log.format, banner),
            before_stop=_before_stop(drain, (lambda: broker.stop(timeout=5)) if broker is not None else None),
            on_started=_printer(guide if runtime.sink is not None else None),
        )
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            if exit_.code not in (None, 0):
                raise
    finally:
        if recycler is not None:
            recycler.stop()
        if broker is not None:
            broker.stop()
    if recycler is not None and recycler.requested:
        if worker.stop_signals > 1:  # an operator's stop met the recycle's own SIGTERM: stop, do not restart
            log.info("a stop signal arrived while the service was recycling its broker: stopping, not restarting")
            return
        restart_in_place()


def _printer(text: str | None) -> Callable[[], None] | None:
    return None if text is None else lambda: print(text, flush=True)


def _recycler(broker: EmbeddedBroker | None, settings: Settings) -> Recycler | None:
    """The watch on the embedded broker's memory (:mod:`~stackwatch.pipeline.process.recycle`), started, or None."""
    limit = settings.kafka.embedded_memory_limit
    if broker is None or broker.pid is None or limit is None:
        return None
    recycler = Recycler(broker.pid, limit)
    recycler.start()
    return recycler
