"""The search page's form: its fields as typed, each checked by name, and the store filters they mean.

    form, filters, errors = check_form(request.query, dynamics)

A field that cannot be read is an error message naming it (the page answers 400 with the form and the
messages); ``q`` is never refused: it is matched literally, whatever it holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from stackwatch.signals.taxonomy import match_dynamic
from stackwatch.storage.dashboard import SearchFilters

__all__ = ["FIELDS", "MAX_PAGE", "PAGE_SIZE", "SearchForm", "check_form", "match_dynamic"]

FIELDS = ("q", "dynamic", "entity", "source", "since", "until")
"""The form's filter fields, in the order the form shows them."""
PAGE_SIZE = 50
"""Articles per result page."""
MAX_PAGE = 1000

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class SearchForm:
    """The fields as the request gave them, to fill the form in again (``page`` as a number when it is one)."""

    q: str = ""
    dynamic: str = ""
    entity: str = ""
    source: str = ""
    since: str = ""
    until: str = ""
    page: int = 1

    @property
    def fields(self) -> dict[str, str]:
        """The filter fields that are not empty, for links to other pages of the same search."""
        return {name: str(getattr(self, name)) for name in FIELDS if getattr(self, name)}


def _shown(text: str) -> str:
    return repr(text[:40]) + ("…" if len(text) > 40 else "")


def _day(name: str, text: str, errors: list[str]) -> date | None:
    if not text:
        return None
    try:
        if _DAY.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    errors.append(f"{name}: expected a date as YYYY-MM-DD, got {_shown(text)}")
    return None


def check_form(query: Mapping[str, str], dynamics: Sequence[str]) -> tuple[SearchForm, SearchFilters, list[str]]:
    """The form as given, the filters it means (``entity`` as typed: the page resolves it against the gazetteer
    and the store), and one message per field that cannot be read.

    ``since`` and ``until`` are whole UTC days, both included; ``dynamic`` must be configured (any case).
    """
    raw = {name: query.get(name, "") for name in FIELDS}
    errors: list[str] = []
    page_text = query.get("page", "1") or "1"
    page = int(page_text) if page_text.isascii() and page_text.isdigit() and len(page_text) <= 6 else 0
    if not 1 <= page <= MAX_PAGE:
        errors.append(f"page: expected a whole number from 1 to {MAX_PAGE}, got {_shown(page_text)}")
        page = 1
    form = SearchForm(**raw, page=page)
    dynamic = match_dynamic(raw["dynamic"], dynamics) if raw["dynamic"] else None
    if raw["dynamic"] and dynamic is None:
        errors.append(f"dynamic: unknown dynamic {_shown(raw['dynamic'])} (known: {', '.join(dynamics)})")
    since, until = _day("since", raw["since"], errors), _day("until", raw["until"], errors)
    if since is not None and until is not None and since > until:
        errors.append(f"until: {raw['until']} is before since ({raw['since']})")
    start = datetime(since.year, since.month, since.day, tzinfo=UTC) if since else None
    end = None
    if until is not None:
        try:
            end = datetime(until.year, until.month, until.day, tzinfo=UTC) + timedelta(days=1)
        except OverflowError:
            end = None  # the last day there is: no upper bound
    filters = SearchFilters(
        q=raw["q"],
        dynamic=dynamic,
        entity=raw["entity"] or None,
        source=raw["source"] or None,
        since=start,
        until=end,
    )
    return form, filters, errors
