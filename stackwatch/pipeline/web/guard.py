"""What a web page the analyst opens may not do to the service: the browser-facing request rules.

Any page in the analyst's browser can send requests to ``127.0.0.1``. Like Jupyter's ``Host`` and ``Origin``
checks and Datasette's CSRF protection, :class:`BrowserRules` refuses, before any view runs:

- a ``Host`` that is not a name the service is reached by (403): ``localhost``, ``127.0.0.1``, ``[::1]``, the
  bound address (any IP address on a ``0.0.0.0`` or ``::`` bind) and ``web.allowed_hosts``. A DNS-rebinding page
  sends its own name as ``Host``, so it never reads an answer;
- a state-changing request (any method but GET, HEAD and OPTIONS), and any request to a data path
  (``/api/sql``), whose ``Origin`` is another origin or ``null``, or whose ``Sec-Fetch-Site`` is ``cross-site``
  or ``same-site`` (403). Non-browser clients (the CLI, curl) send neither header;
- a POST, PUT or PATCH whose ``Content-Type`` is not ``application/json`` (415): the types a page may send
  without a CORS preflight (``text/plain``, ``application/x-www-form-urlencoded``, ``multipart/form-data``, none)
  never reach a view. One exception: the dashboard's own HTML forms (it runs no script) post
  ``application/x-www-form-urlencoded`` under :data:`FORM_PREFIX`, and such a post must prove it comes from a
  page of this service (an ``Origin`` of this service or ``Sec-Fetch-Site: same-origin``; 403 without either),
  besides the token each form carries (:mod:`~stackwatch.pipeline.web.dashboard.forms`);
- a body whose ``Content-Length`` is above :data:`MAX_BODY` (413).

The probes (``/healthz``, ``/readyz``) skip the ``Host`` check, as they skip the token. Every refusal is a JSON
``{"error": ...}`` and a warning in the log (at most :data:`LOG_PER_MINUTE` lines a minute of each kind).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from stackwatch.settings.web import WebSettings

__all__ = [
    "DATA_PATHS",
    "FORM_PREFIX",
    "LOG_PER_MINUTE",
    "MAX_BODY",
    "SAFE_METHODS",
    "BrowserRules",
    "Refusal",
    "browser_guard",
    "parse_host",
]

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
"""The largest request body any endpoint reads (each endpoint has its own, smaller, limit)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that never change state (every GET view is read-only)."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DATA_PATHS = frozenset({"/api/sql"})
"""Paths that answer with the store's data: same-origin or non-browser clients only, whatever the method."""
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
FORM_PREFIX = "/dashboard/"
"""Where the dashboard's HTML forms post to: the only paths a form body may reach."""
LOG_PER_MINUTE = 30
"""Warnings a minute for each kind of refusal (status and method)."""
_KNOWN_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_ACCEPTED_FETCH_SITES = frozenset({"same-origin", "none"})  # "none": typed in the address bar, a bookmark
_HOST = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([^\[\]:/@\s]+))(?::([0-9]{1,5}))?")
_DEFAULT_PORTS = {"http": 80, "https": 443}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: its HTTP status and the ``error`` message."""

    status: int
    reason: str


def _canonical(name: str) -> str:
    """A host name lower-case, an IP address in its canonical form (IPv6 without brackets)."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def parse_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a ``Host`` header (``name`` canonical as :func:`_canonical` makes it); None when it is
    not ``name``, ``name:port``, ``[v6]`` or ``[v6]:port``.

    >>> parse_host("[::1]:6066")
    ('::1', 6066)
    """
    match = _HOST.fullmatch(value.strip())
    if match is None:
        return None
    v6, name, port = match.groups()
    if v6 is not None:
        try:
            name = str(ipaddress.IPv6Address(v6))
        except ValueError:
            return None
    return _canonical(name), int(port) if port else None


@dataclass(frozen=True, slots=True)
class BrowserRules:
    """The rules of the module docstring, for one bind. ``check`` is pure: plain values in, a Refusal out."""

    names: frozenset[str]
    """Host names and canonical IP addresses the ``Host`` header may carry."""
    any_address: bool = False
    """A wildcard bind (``0.0.0.0``, ``::``): any IP address is a fine ``Host`` (a rebinding page sends a name)."""
    trusted_origins: frozenset[str] = frozenset()
    """Names whose ``Origin`` is trusted though it is not the ``Host`` (a reverse proxy that rewrites ``Host``)."""
    open_paths: frozenset[str] = frozenset()
    data_paths: frozenset[str] = DATA_PATHS
    max_body: int = MAX_BODY

    @classmethod
    def for_web(cls, settings: WebSettings, *, open_paths: Iterable[str] = ()) -> BrowserRules:
        """The rules for a service bound to ``settings.host`` and reached under ``settings.allowed_hosts``."""
        bind = _canonical(settings.host.strip("[]"))
        extra = frozenset(settings.allowed_hosts)
        return cls(
            names=_LOOPBACK_NAMES | {bind} | extra,
            any_address=bind in ("0.0.0.0", "::"),  # noqa: S104 (comparing a bind, not binding)
            trusted_origins=extra,
            open_paths=frozenset(open_paths),
        )

    def host_allowed(self, header: str | None) -> bool:
        """Whether a ``Host`` header names this service."""
        parsed = parse_host(header) if header else None
        if parsed is None:
            return False
        name = parsed[0]
        if name in self.names:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        return address.is_loopback or self.any_address

    def _same_origin(self, origin: str, host: str) -> bool:
        try:
            parts = urlsplit(origin)
            origin_port = parts.port
        except ValueError:
            return False
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path or parts.query:
            return False
        name = _canonical(parts.hostname)
        if name in self.trusted_origins:
            return True
        parsed = parse_host(host)
        if parsed is None:
            return False
        default = _DEFAULT_PORTS[parts.scheme]
        return (name, origin_port or default) == (parsed[0], parsed[1] or default)

    def check(self, method: str, path: str, headers: Mapping[str, str]) -> Refusal | None:
        """Why this request is refused, or None. ``headers`` must look names up case-insensitively."""
        host = headers.get("Host", "")
        if path not in self.open_paths and not self.host_allowed(host):
            shown = repr(host[:100]) if host else "none"
            return Refusal(
                403, f"Host {shown} is not a name of this service (add it to web.allowed_hosts if it is one)"
            )
        guarded = method not in SAFE_METHODS or path in self.data_paths
        if guarded:
            origin = headers.get("Origin")
            if origin is not None and not self._same_origin(origin, host):
                return Refusal(403, f"cross-origin request refused (Origin {origin[:100]!r})")
            site = headers.get("Sec-Fetch-Site")
            if site is not None and site.lower() not in _ACCEPTED_FETCH_SITES:
                return Refusal(403, f"cross-site request refused (Sec-Fetch-Site: {site[:40]})")
        if method in BODY_METHODS:
            given = headers.get("Content-Type")
            media = (given or "").split(";", 1)[0].strip().lower()
            if media == FORM and path.startswith(FORM_PREFIX):
                site = (headers.get("Sec-Fetch-Site") or "").lower()
                if headers.get("Origin") is None and site != "same-origin":
                    return Refusal(403, "a form post must come from a page of this service (no Origin header)")
            elif media != JSON:
                shown = repr(given[:100]) if given else "none"
                return Refusal(415, f"Content-Type must be {JSON} (got {shown})")
        length = headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_body:
            return Refusal(413, f"request body larger than {self.max_body} bytes")
        return None


@dataclass
class _LogQuota:
    """At most ``per_minute`` warnings a minute for each kind of refusal (its status and method); the next one
    after the minute says how many were left out. A page that floods one kind hides no other kind."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    _windows: dict[tuple[int, str], list[float]] = field(default_factory=dict)  # [start, logged, dropped]

    def warn(self, kind: tuple[int, str], message: str, *args: object) -> None:
        now = self.clock()
        window = self._windows.setdefault(kind, [float("-inf"), 0, 0])
        if now - window[0] >= 60.0:
            if window[2]:
                log.warning("web: %d more refused %s request(s) (%d) were not logged", window[2], kind[1], kind[0])
            window[:] = [now, 0, 0]
        if window[1] < self.per_minute:
            window[1] += 1
            log.warning(message, *args)
        else:
            window[2] += 1


def browser_guard(rules: BrowserRules) -> Middleware:
    """aiohttp middleware applying ``rules`` before any view: a refusal is a JSON ``{"error": ...}``."""
    quota = _LogQuota(LOG_PER_MINUTE)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = rules.check(request.method, request.path, request.headers)
        if refusal is None:
            return await handler(request)
        method = request.method if request.method in _KNOWN_METHODS else "other"
        shown = (request.method[:20], request.path[:200], refusal.status, refusal.reason)
        quota.warn((refusal.status, method), "web: refused %s %s (%d): %s", *shown)
        return web.json_response({"error": refusal.reason}, status=refusal.status)

    return guard
