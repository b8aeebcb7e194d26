"""The article page's label corrections: each dynamic's row has a button that adds or removes it.

POST /dashboard/article/{id}/labels    form fields ``token``, and ``add`` or ``remove`` (a dynamic): the
                                       correction is stored (:mod:`stackwatch.storage.corrections`) and the
                                       browser sent back to the article (303)

The post is an HTML form (the dashboard runs no script), so it is ``application/x-www-form-urlencoded``: the
browser rules let that type through under ``/dashboard/`` only from a page of this service
(:mod:`~stackwatch.pipeline.web.guard`), and the form's token (:mod:`~.forms`) must match its article. A refused
post is the error page with its status.
"""

from __future__ import annotations

from typing import cast
from urllib.parse import quote

from aiohttp import web as aioweb
from faust.web import Request, Response, View

from stackwatch.pipeline.web.context import Routes
from stackwatch.pipeline.web.dashboard.forms import valid_token
from stackwatch.pipeline.web.dashboard.views import DASHBOARD, Dashboard, Page, PageError
from stackwatch.signals.messages import utcnow
from stackwatch.storage import corrections

__all__ = ["ROUTES", "ArticleLabels", "correct_from_form"]

MAX_FORM = 4096


async def correct_from_form(dashboard: Dashboard, request: aioweb.Request, article_id: str) -> str:
    """Store the correction a form post asks for; the address to send the browser to, or PageError."""
    if request.content_length is not None and request.content_length > MAX_FORM:
        raise PageError(413, f"form larger than {MAX_FORM} bytes")
    form = await request.post()
    token = form.get("token")
    if not isinstance(token, str) or not valid_token(f"labels|{article_id}", token):
        raise PageError(403, "this form is out of date or not from this service: reload the article and try again")
    add, remove = form.getall("add", []), form.getall("remove", [])
    names = [*add, *remove]
    if len(names) != 1 or not isinstance(names[0], str):
        raise PageError(400, "a correction names one dynamic to add or remove")
    try:
        corrected = await dashboard.read(
            corrections.correct_labels,
            article_id,
            add=[str(name) for name in add],
            remove=[str(name) for name in remove],
            by="dashboard",
            now=utcnow(),
        )
    except ValueError as error:
        raise PageError(400, str(error)[:300]) from None
    if corrected is None:
        raise PageError(404, f"no article with id {article_id[:80]!r}")
    return f"/dashboard/article/{quote(article_id, safe='')}"


class ArticleLabels(View):
    async def post(self, request: Request, article_id: str) -> Response:
        plain = cast(aioweb.Request, request)  # Faust's aiohttp driver hands aiohttp's request
        dashboard = plain.app[DASHBOARD]
        try:
            target = await correct_from_form(dashboard, plain, article_id)
        except PageError as error:
            page = Page("error.html", {"status": error.status, "message": error.message}, error.status)
            return dashboard.render(page, request.query)
        return cast(Response, aioweb.Response(status=303, headers={"Location": target}))


ROUTES: Routes = (("/dashboard/article/{article_id}/labels", ArticleLabels),)
