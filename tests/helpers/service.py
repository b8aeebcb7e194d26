"""Running ``stackwatch`` as a real subprocess in tests, and talking to it over HTTP."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

__all__ = ["Service", "pipeline_config", "threshold_rule", "write_config"]


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path


def pipeline_config(directory: Path, servers: list[str], name: str, **sections: Any) -> Path:
    """``directory/stackwatch.yaml`` for a test pipeline with its own topics and groups (``name``) and its files
    under ``directory``. Each keyword is a section: a mapping extends the default section, anything else is it.

        pipeline_config(tmp_path, [broker], unique, web={"port": port}, sources=[...])
    """
    config: dict[str, Any] = {
        "kafka": {"bootstrap_servers": servers, "app_id": name, "topic_prefix": name, "session_timeout": "6s"},
        "storage": {"path": str(directory / "stackwatch.duckdb"), "flush_interval": "200ms"},
        "state": {"path": str(directory / "state")},
    }
    for key, value in sections.items():
        default = config.get(key)
        config[key] = {**default, **value} if isinstance(default, dict) and isinstance(value, dict) else value
    return write_config(directory / "stackwatch.yaml", config)


def threshold_rule(name: str, dynamic: str, value: float = 1, **more: Any) -> dict[str, Any]:
    """A threshold rule on a dynamic's hourly article count that alerts the ``ops`` webhook."""
    return {"name": name, "kind": "threshold", "dynamic": dynamic, "window": "1h", "op": ">=", "value": value,
            "webhooks": ["ops"], **more}  # fmt: skip


def _limit_file_size(limit: int) -> None:
    """In the child: no file may grow past ``limit`` bytes (writes fail with EFBIG, like a full disk)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


class Service:
    """``stackwatch <command> -c CONFIG`` in a subprocess, its output kept in a file for assertions."""

    def __init__(
        self,
        config: Path,
        *,
        command: str = "up",
        web_port: int,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
        file_size_limit: int | None = None,
    ) -> None:
        self.web_port = web_port
        self.log_path = config.with_suffix(f".{name or command}.log")
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stackwatch.pipeline.cli",
                command,
                "-c",
                str(config),
                "--web-port",
                str(web_port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=(lambda: _limit_file_size(file_size_limit)) if file_size_limit else None,
            cwd=cwd,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})},
        )

    @property
    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def sql(self, query: str) -> list[list[Any]]:
        response = httpx.post(f"http://127.0.0.1:{self.web_port}/api/sql", json={"sql": query}, timeout=30)
        response.raise_for_status()
        rows: list[list[Any]] = response.json()["rows"]
        return rows

    def wait_until(self, query: str, predicate: Any, timeout: float = 120.0) -> list[list[Any]]:
        """Poll a query until ``predicate(rows)`` holds; fail with the service's output after ``timeout``."""
        deadline = time.monotonic() + timeout
        rows: list[list[Any]] = []
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"service exited with {self.process.returncode}:\n{self.output[-4000:]}")
            try:
                rows = self.sql(query)
                if predicate(rows):
                    return rows
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{query!r} never satisfied the condition; last rows {rows}\n{self.output[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        try:
            if self.process.poll() is None:
                self.process.send_signal(sig)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
                    raise AssertionError(f"service did not stop within {timeout}s:\n{self.output[-4000:]}") from None
        finally:
            self._log.close()  # else the next test fails on the open file's warning: one failure shows as two
        return self.process.returncode
