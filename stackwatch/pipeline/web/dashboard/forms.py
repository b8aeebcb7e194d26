"""Tokens for the dashboard's few forms: an HTML form post must carry the token of the page that held it.

    token = form_token("labels|a1")        # rendered into the article page's forms
    valid_token("labels|a1", token)        # checked by the view the form posts to

A form post is a request any page may send without a preflight, so besides the browser rules
(:mod:`~stackwatch.pipeline.web.guard`: same origin only) each form carries an HMAC of what it acts on under a key
this process drew at start, as Django's and Datasette's CSRF tokens do. Another page cannot read it (the same-origin
policy), so it cannot post the form; a restart draws a new key, and a page rendered before it must be reloaded.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["form_token", "valid_token"]

_KEY = secrets.token_bytes(32)


def form_token(action: str) -> str:
    """The token a form acting on ``action`` carries."""
    return hmac.new(_KEY, action.encode("utf-8"), hashlib.sha256).hexdigest()


def valid_token(action: str, token: str) -> bool:
    """Whether ``token`` is the one this process gave a form acting on ``action`` (constant-time)."""
    return hmac.compare_digest(form_token(action), token)
