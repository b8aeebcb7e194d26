"""The dashboard's digest page: what ``stackwatch digest`` prints, as HTML.

/dashboard/digest                        every dynamic, the last day
/dashboard/digest?since=7d&dynamic=edge  one dynamic (any case), the last week
/dashboard/digest?since=1d&until=2026-03-10    the day before 2026-03-10 00:00 UTC

A ``since`` or ``until`` that cannot be read, or an unknown dynamic, is the error page with 400. A range the
address names (``?days=&width=``) is kept by every link, as on the other pages; the digest itself does not use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from faust.web import Request, Response, View

from stackwatch.pipeline.roles.digests import PeriodError, period_of
from stackwatch.pipeline.web.context import Routes
from stackwatch.pipeline.web.dashboard.ranges import parse_range
from stackwatch.pipeline.web.dashboard.search import match_dynamic
from stackwatch.pipeline.web.dashboard.views import Dashboard, Page, PageError, serve
from stackwatch.storage.digest import read_digest

__all__ = ["ROUTES", "DigestView", "digest_page"]


async def digest_page(dashboard: Dashboard, query: Mapping[str, str]) -> Page:
    """The digest the query asks for: ``since`` (default ``1d``), ``until`` (default now), ``dynamic`` (default
    all of them)."""
    try:
        period = period_of(query.get("since") or "1d", query.get("until") or None)
    except PeriodError as error:
        raise PageError(400, str(error)[:300]) from None
    name = query.get("dynamic", "")
    dynamic = match_dynamic(name, dashboard.dynamics) if name else None
    if name and dynamic is None:
        raise PageError(400, f"unknown dynamic {name[:80]!r} (known: {', '.join(dashboard.dynamics)})")
    picked = (dynamic,) if dynamic else dashboard.dynamics
    digest = await dashboard.read(read_digest, dynamic or "all dynamics", period, picked, every_alert=dynamic is None)
    rng = parse_range(query)
    kept = {"days": str(rng.days), "width": rng.width} if rng else {}
    since = query.get("since") or "1d"

    def link(**fields: str) -> str:
        return "?" + urlencode({**fields, **kept})

    context = {
        "digest": digest,
        "rng": rng,
        "day_href": link(since="1d"),
        "week_href": link(since="7d"),
        "only_href": {name: link(since=since, dynamic=name) for name in picked},
    }
    return Page("digest.html", context)


class DigestView(View):
    async def get(self, request: Request) -> Response:
        return await serve(request, lambda dashboard: digest_page(dashboard, request.query))


ROUTES: Routes = (("/dashboard/digest", DigestView),)
