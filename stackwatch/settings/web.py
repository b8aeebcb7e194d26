"""``web:`` and ``log:`` sections."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from stackwatch.errors import ConfigError
from stackwatch.settings.base import Section

__all__ = ["HostName", "LogSettings", "WebSettings", "is_loopback"]

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.1``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """A host name or IP address as a ``Host`` header names it, lower-case, IPv6 without brackets."""
    text = value.strip().lower()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if len(text) > 253 or not _HOST_NAME.match(text):
        raise ValueError(
            f"expected a host name such as stackwatch.example.com or an IP address (no scheme, port or "
            f"wildcard), got {value[:80]!r}"
        )
    return text


HostName = Annotated[str, AfterValidator(_host_name)]
"""A name the service may be reached by: a DNS name or an IP address, normalised for comparison."""


class WebSettings(Section):
    """The service's HTTP server (dashboard, health, metrics, SQL front).

    Bound to 127.0.0.1 by default. A non-loopback ``host`` needs an access token, read at start from the
    environment variable named by ``token_env`` (never from the file); requests then carry
    ``Authorization: Bearer TOKEN`` (or ``?token=TOKEN`` once, which sets a cookie). ``/healthz`` and
    ``/readyz`` stay open for probes.

    Browsers reach the service under the names in the ``Host`` header it accepts: ``localhost``, ``127.0.0.1``,
    ``[::1]``, ``host`` itself (any IP address when ``host`` is ``0.0.0.0`` or ``::``) and the names in
    ``allowed_hosts`` (the name of a reverse proxy in front, a DNS name of the machine). Any other ``Host`` is
    refused with 403, which is what defeats DNS rebinding; see docs/security.md.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=6066, ge=0, le=65535)
    token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    allowed_hosts: tuple[HostName, ...] = Field(default=(), max_length=64)

    def token(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The access token, or None when none is configured.

        Raises ConfigError when ``token_env`` names a variable that is not set, or when a non-loopback bind
        has no token.
        """
        environ = os.environ if environ is None else environ
        if self.token_env is None:
            if not is_loopback(self.host):
                raise ConfigError(
                    f"web.host {self.host!r} is not a loopback address: set web.token_env to the name of an "
                    "environment variable holding an access token"
                )
            return None
        value = environ.get(self.token_env, "")
        if not value:
            raise ConfigError(f"web.token_env: environment variable {self.token_env} is not set")
        return value

    def client_target(self, environ: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
        """The base URL a local client reaches the service at, and the headers that authorise it.

        Raises ConfigError as :meth:`token` does.
        """
        token = self.token(environ)
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host  # noqa: S104 (a bind, not a target)
        return f"http://{host}:{self.port}", ({"Authorization": f"Bearer {token}"} if token else {})


class LogSettings(Section):
    """Log level for stackwatch's own loggers; library loggers stay at warning.

    ``format``: ``auto`` (JSON lines when stderr is not a terminal, readable text when it is), ``json`` or
    ``text``. ``STACKWATCH_LOG_LEVEL`` overrides ``level`` (as does ``STACKWATCH__LOG__LEVEL``).
    """

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "text"] = "auto"
