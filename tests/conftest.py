"""Shared fixtures: one real embedded broker per test session, unique names per test, local HTTP servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackwatch.pipeline.kafka.broker import EmbeddedBroker

pytest_plugins = ["tests.helpers.http"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a real Kafka-compatible broker (Tansu), started once for the session."""
    log_file = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(log_file=log_file) as running:
        yield running.bootstrap


@pytest.fixture
def unique() -> str:
    """A name no other test uses: prefix it to topics, app ids and consumer groups."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory (relative data paths in configs land here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
