"""Child processes that never outlive the service, and the record that finds one an earlier crash left behind.

    process = spawn([binary, "broker", ...], stdout=log)   # killed by the kernel when this process dies
    ChildRecord.of(process.pid, binary).write(state / "broker.pid")
    ...
    stop_stale(state / "broker.pid", "embedded broker")       # at the next start: stops it if it is still ours

The parent-death signal (``prctl(PR_SET_PDEATHSIG)``, Linux) is delivered when the *thread* that forked the child
exits, not the process. :func:`spawn` therefore forks from a launcher thread that lives as long as the process, so
the child is killed when the process ends, however it ends (SIGKILL included), and not when some short-lived
thread that happened to start it returns.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["ChildRecord", "die_with_parent", "spawn", "stop_stale"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[[int, int], int] | None:
    """libc's prctl, looked up once (never first in a forked child: dlopen there can wait on a lock for ever)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return function


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """In a child (right after the fork): have the kernel send ``sig`` when its parent thread dies; exit at once
    if ``parent`` (the pid that forked it) is already gone, since then no signal will ever come."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent:
        os._exit(1)


class _Launcher:
    """One daemon thread that runs every :func:`spawn`: it never returns, so it ends only with the process."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="stackwatch-child-launcher", daemon=True).start()

    def _serve(self) -> None:
        while True:
            job, future = self._jobs.get()
            try:
                future.set_result(job())
            except BaseException as error:  # handed to the caller, who raises it
                future.set_exception(error)

    def run(self, job: Callable[[], Any]) -> Any:
        future: Future[Any] = Future()
        self._jobs.put((job, future))
        return future.result()


_launcher: _Launcher | None = None
_launcher_lock = threading.Lock()


def spawn(command: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(command, **popen)`` whose child gets SIGKILL when this process dies (on Linux).

    util-linux's ``setpriv --pdeathsig KILL`` sets the signal and then executes the command (same pid), so no
    Python runs between fork and exec: a ``preexec_fn`` in a process with threads can crash or hang the child
    (seen: a segmentation fault in the forked child of a test process). Without ``setpriv`` the signal is set
    from a ``preexec_fn``.
    """
    global _launcher
    with _launcher_lock:
        if _launcher is None:
            _launcher = _Launcher()
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    if setpriv is not None:
        wrapped = [setpriv, "--pdeathsig", "KILL", "--", *command]
        started: subprocess.Popen[bytes] = _launcher.run(lambda: subprocess.Popen(wrapped, **popen))
        return started
    parent = os.getpid()
    _prctl()  # resolved here, in the parent
    process: subprocess.Popen[bytes] = _launcher.run(
        lambda: subprocess.Popen(list(command), preexec_fn=lambda: die_with_parent(parent), **popen)
    )
    return process


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _binary(pid: int) -> str | None:
    """The executable a process runs: /proc/PID/exe, or the first word of its command line if that is unreadable."""
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace") or None
    return None


def _running(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


@dataclass(frozen=True, slots=True)
class ChildRecord:
    """Which process a child is: its pid, when it started (clock ticks after boot) and the binary it runs. The
    start time tells the child from a process that reused its pid after it died."""

    pid: int
    started: int
    binary: str

    @classmethod
    def of(cls, pid: int, binary: str) -> ChildRecord:
        fields = _stat(pid)
        return cls(pid=pid, started=int(fields[19]) if fields else -1, binary=str(Path(binary).resolve()))

    @classmethod
    def read(cls, path: Path) -> ChildRecord | None:
        """The record in ``path``, or None if there is none or it is unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(pid=int(data["pid"]), started=int(data["started"]), binary=str(data["binary"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)) + "\n", encoding="utf-8")

    def is_running(self) -> bool:
        """True only if this very process still runs: same pid, same start time, same binary."""
        fields = _stat(self.pid)
        if fields is None or fields[0] in ("Z", "X") or int(fields[19]) != self.started:
            return False
        return _binary(self.pid) == self.binary


def stop_stale(path: Path, what: str, timeout: float = 10.0) -> ChildRecord | None:
    """Stop the process ``path`` records if it still runs (left by a run that crashed), then remove ``path``.

    Returns the record of the process it stopped, or None. A pid that another process reused is left alone.
    """
    record = ChildRecord.read(path)
    if record is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    if not record.is_running():
        log.info("%s: %s names pid %d, which is no longer that %s: nothing to stop", what, path, record.pid, what)
        path.unlink(missing_ok=True)
        return None
    log.warning("%s: stopping pid %d (%s), left running by an earlier run (%s)", what, record.pid, record.binary, path)
    deadline = time.monotonic() + timeout
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, sig)
        while time.monotonic() < deadline and _running(record.pid):
            time.sleep(0.05)
        if not _running(record.pid):
            break
        deadline = time.monotonic() + timeout
    path.unlink(missing_ok=True)
    return record
