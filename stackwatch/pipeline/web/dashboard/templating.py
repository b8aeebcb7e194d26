"""How the dashboard's templates render: a Jinja2 environment with autoescape on, the filters that make untrusted
text safe in a URL or on the page, and the header's range links::

    environment = build_environment()
    environment.get_template("overview.html").render(nav=nav_links(request.query, rng), rq=range_query(rng), ...)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from stackwatch.pipeline.web.dashboard.forms import form_token
from stackwatch.pipeline.web.dashboard.ranges import RANGES
from stackwatch.pipeline.web.dashboard.search import FIELDS
from stackwatch.storage.dashboard import Range

__all__ = ["NavLink", "build_environment", "nav_links", "range_query", "safe_url"]


def _segment(value: object) -> str:
    """A value as one URL path segment (``/`` and everything else percent-encoded)."""
    return quote(str(value), safe="")


def safe_url(value: object) -> str:
    """An article's link when it is http(s), else empty: no ``javascript:`` or ``data:`` hrefs."""
    text = str(value or "")
    return text if urlsplit(text).scheme in {"http", "https"} else ""


_CONTROL = {code: "\ufffd" for code in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)}


def _visible(value: object) -> str:
    """Text with its control characters (NUL included) shown as U+FFFD: what a user typed, echoed back."""
    return str(value).translate(_CONTROL)


def build_environment() -> Environment:
    """Jinja2 with autoescape on for every template: article text is untrusted."""
    environment = Environment(
        loader=PackageLoader("stackwatch.pipeline.web.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["seg"] = _segment
    environment.filters["safe_url"] = safe_url
    environment.filters["visible"] = _visible
    environment.globals["form_token"] = form_token
    return environment


def range_query(rng: Range) -> str:
    """The query string that names ``rng``, for every link from a page to another: ``?days=182&width=1w``."""
    return "?" + urlencode({"days": rng.days, "width": rng.width})


@dataclass(frozen=True, slots=True)
class NavLink:
    """One range in the header: its label, its link (this page with that range) and whether it is in force."""

    label: str
    href: str
    on: bool


def nav_links(query: Mapping[str, str], rng: Range | None) -> tuple[NavLink, ...]:
    """The header's ranges: each links to the same page with that range, keeping the search fields."""
    kept = {name: query[name] for name in FIELDS if query.get(name)}
    return tuple(
        NavLink(f"{days}d · {width}", "?" + urlencode({**kept, "days": days, "width": width}),
                rng is not None and (rng.days, rng.width) == (days, width))
        for days, width in RANGES
    )  # fmt: skip
