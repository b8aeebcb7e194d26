"""Stable article ids: from a feed's GUID when it has one, else from the canonical URL.

>>> canonical_url("HTTPS://News.Example.com/a?utm_source=x&id=3#top")
'https://news.example.com/a?id=3'
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["article_id", "canonical_url"]

_TRACKING_PARAMS = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "cmpid", "ref", "ref_src", "igshid"})


def canonical_url(url: str) -> str:
    """Lower-cased scheme and host, no fragment, no tracking parameters (utm_* and friends), default port gone."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port and (parts.scheme, parts.port) not in {("http", 80), ("https", 443)} else None
    netloc = f"{host}:{port}" if port else host
    query = urlencode(
        [
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if not key.lower().startswith("utm_") and key.lower() not in _TRACKING_PARAMS
        ]
    )
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))


def article_id(source: str, guid: str | None, url: str | None) -> str:
    """A short stable id: the GUID (scoped by source) if given, else the canonical URL.

    Raises ValueError when there is neither.
    """
    if guid and guid.strip():
        basis = f"guid:{source}:{guid.strip()}"
    elif url and url.strip():
        basis = f"url:{canonical_url(url)}"
    else:
        raise ValueError("an article needs a guid or a url to have an id")
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]
