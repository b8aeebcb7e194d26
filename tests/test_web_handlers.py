"""The web handlers' own seams: the query fields they parse, and what a process that does not hold the store answers.

The second part builds a real sink runtime without starting it (its store is not open) and serves its web app on
127.0.0.1: every page that needs the store says so with a 503, the JSON APIs as ``{"error": ...}`` and the dashboard
as its error page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from stackwatch.pipeline.web.requests import BadRequest, flag, whole_number
from stackwatch.settings import settings_from_mapping
from tests.helpers.web_app import served_web

# -- query fields -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "expected"), [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_a_flag_is_yes_or_no(given: str, expected: bool) -> None:
    assert flag({"all": given}, "all") is expected


def test_an_absent_flag_is_no_and_anything_else_is_refused_by_name() -> None:
    assert flag({}, "all") is False
    with pytest.raises(BadRequest, match=r"^all: expected 1 or 0, got 'maybe'$") as error:
        flag({"all": "maybe"}, "all")
    assert error.value.status == 400


def test_a_whole_number_is_bounded_and_defaults_when_absent() -> None:
    assert whole_number({}, "limit", 20, 1, 10_000) == 20
    assert whole_number({"limit": "10000"}, "limit", 20, 1, 10_000) == 10_000
    assert whole_number({"limit": "007"}, "limit", 20, 1, 10_000) == 7


@pytest.mark.parametrize("given", ["0", "10001", "-1", "2.5", "x", "", "²", "1" * 5000])
def test_a_whole_number_out_of_range_or_not_digits_is_refused_by_name(given: str) -> None:
    with pytest.raises(BadRequest, match=r"^limit: expected a whole number from 1 to 10000, got ") as error:
        whole_number({"limit": given}, "limit", 20, 1, 10_000)
    assert error.value.status == 400
    assert len(str(error.value)) < 120  # a long value is cut in the message


# -- a process that does not hold the store ---------------------------------------------------------------------------


@pytest.fixture
async def unopened(tmp_path: Path) -> AsyncIterator[str]:
    """The web app of a sink runtime that was built but not started, on a free port of 127.0.0.1."""
    settings = settings_from_mapping({"storage": {"path": str(tmp_path / "s.duckdb")}}, environ={})
    async with served_web(settings) as base:
        yield base


@pytest.mark.parametrize("path", ["/api/alerts", "/api/silences", "/api/sql?q=SELECT%201"])
async def test_the_store_apis_of_a_process_without_an_open_store_answer_503(unopened: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=unopened) as client:
        answer = await client.get(path)
    assert answer.status_code == 503
    assert answer.json() == {"error": "this process does not hold the store (run the sink role)"}


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/",
        "/dashboard/?days=7&width=1h",
        "/dashboard/dynamic/capex",
        "/dashboard/entity/Nvidia",
        "/dashboard/entity/Nobody",
        "/dashboard/article/a-1",
        "/dashboard/search?q=x",
    ],
)
async def test_the_dashboard_of_a_process_without_an_open_store_is_its_503_page(unopened: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=unopened) as client:
        answer = await client.get(path)
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>503 · Stackwatch</title>" in answer.text
    assert "this process does not hold the store" in answer.text


async def test_an_unknown_dynamic_is_404_before_the_store_is_asked(unopened: str) -> None:
    async with httpx.AsyncClient(base_url=unopened) as client:
        answer = await client.get("/dashboard/dynamic/no-such-dynamic")
    assert answer.status_code == 404
    assert "unknown dynamic &#39;no-such-dynamic&#39;" in answer.text
