"""Analysts' label corrections through the running service (the store is the service's to write).

- ``POST /api/articles/{id}/labels`` with ``{"add": ["capex"], "remove": ["edge"], "by": "ana"}``: 200 with the
  article's ``labels`` once corrected, the ``model_labels`` it had and how many dynamics are ``corrected``; 404 when
  the store holds no such article; 400 naming the field when the body is wrong.

``stackwatch label ARTICLE_ID --add capex`` sends this; the article page posts the same form
(:mod:`stackwatch.pipeline.web.dashboard.labels`). Every protection of a state-changing request applies
(:mod:`~stackwatch.pipeline.web.guard`, the token).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from faust.web import Request, Response, View

from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.pipeline.web.context import Routes, context_of, on_store
from stackwatch.pipeline.web.requests import BadRequest, json_answer, json_body
from stackwatch.signals.messages import utcnow
from stackwatch.storage import corrections

__all__ = ["MAX_LABELS_BODY", "ROUTES", "ArticleLabels", "LabelRequest", "parse_label_request", "record"]

log = logging.getLogger(__name__)

MAX_LABELS_BODY = 8 * 1024
_FIELDS = ("add", "remove", "by")
_MAX_NAME = 64
_MAX_BY = 256


@dataclass(frozen=True, slots=True)
class LabelRequest:
    """A validated label correction."""

    add: tuple[str, ...]
    remove: tuple[str, ...]
    by: str


def _names(body: Mapping[str, object], field: str) -> tuple[str, ...]:
    value = body.get(field, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(name, str) and 0 < len(name) <= _MAX_NAME for name in value):
        raise BadRequest(f"{field}: expected a list of dynamic names (each 1 to {_MAX_NAME} characters)")
    return tuple(value)


def parse_label_request(body: object) -> LabelRequest:
    """Validate a correction body; BadRequest naming the field otherwise.

    >>> parse_label_request({"add": ["capex"], "by": "ana"})
    LabelRequest(add=('capex',), remove=(), by='ana')
    """
    if not isinstance(body, dict):
        raise BadRequest('expected a JSON object {"add": ["capex"], "remove": ["edge"], "by": "ana"}')
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(map(repr, unknown))} (expected {', '.join(_FIELDS)})")
    by = body.get("by", "api")
    if not isinstance(by, str) or len(by) > _MAX_BY:
        raise BadRequest(f"by: expected a string of at most {_MAX_BY} characters")
    return LabelRequest(_names(body, "add"), _names(body, "remove"), by)


async def record(thread: StoreThread, article_id: str, wanted: LabelRequest) -> corrections.Corrected:
    """Store the correction on the store's thread; BadRequest (400, or 404 for an unknown article) otherwise."""
    try:
        corrected = await thread.call(
            corrections.correct_labels,
            thread.store.connection,
            article_id,
            add=wanted.add,
            remove=wanted.remove,
            by=wanted.by,
            now=utcnow(),
        )
    except ValueError as error:
        raise BadRequest(str(error)) from None
    if corrected is None:
        raise BadRequest(f"no article with id {article_id[:80]!r}", status=404)
    log.info("web: labels of %s corrected by %s: +%s -%s", article_id, wanted.by, wanted.add, wanted.remove)
    return corrected


async def correct(thread: StoreThread, request: Request, article_id: str) -> Response:
    corrected = await record(thread, article_id, parse_label_request(await json_body(request, MAX_LABELS_BODY)))
    return json_answer(
        {
            "id": corrected.article_id,
            "labels": list(corrected.labels),
            "model_labels": list(corrected.model_labels),
            "corrected": corrected.corrected,
        }
    )


class ArticleLabels(View):
    """``POST /api/articles/{article_id}/labels``: :func:`correct`."""

    async def post(self, request: Request, article_id: str) -> Response:
        return await on_store(context_of(request).runtime, lambda thread: correct(thread, request, article_id))


ROUTES: Routes = (("/api/articles/{article_id}/labels", ArticleLabels),)
