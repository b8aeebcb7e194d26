"""Commands that work with or without the running service: ask its HTTP API, else use the store file.

    answer = ask_service(settings, "GET", "/api/alerts", params={"limit": 20})
    if answer is OFFLINE:                               # nothing listens at web.host:web.port
        with open_store(settings, write=False) as store:
            ...

The running service holds the DuckDB file, so a command that finds it goes through its API; an error answer is a
ClickException with the service's message, never a fall-back to the file.
"""

from __future__ import annotations

import enum
import getpass
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Literal

import click

from stackwatch.errors import ConfigError, StoreError
from stackwatch.pipeline.cli.common import JSONValue
from stackwatch.settings import Settings
from stackwatch.storage.store import Store

__all__ = ["OFFLINE", "Offline", "ask_service", "current_user", "open_store"]


class Offline(enum.Enum):
    OFFLINE = enum.auto()


OFFLINE: Literal[Offline.OFFLINE] = Offline.OFFLINE
"""What :func:`ask_service` returns when no service listens at the configured web address."""


@contextmanager
def open_store(settings: Settings, *, write: bool) -> Iterator[Store]:
    if not write and not settings.storage.path.exists():
        raise click.ClickException(f"no store at {settings.storage.path}")
    try:
        opened = Store.open(settings.storage.path, read_only=not write)
    except StoreError as error:
        raise click.ClickException(
            f"{error} (another process holds the file, and no stackwatch service answers at web.host:web.port "
            f"{settings.web.host}:{settings.web.port} to do this for us)"
        ) from None
    with opened as store:
        try:
            yield store
        except StoreError as error:
            raise click.ClickException(str(error)) from None


def ask_service(
    settings: Settings,
    method: str,
    path: str,
    *,
    params: dict[str, int] | None = None,
    json: Mapping[str, object] | None = None,
) -> JSONValue | Literal[Offline.OFFLINE]:
    """The JSON answer of the running service to ``method path``, or ``OFFLINE`` when nothing listens there.

    An answer that is an error (a refused request, a wrong token, a store failure) is a ClickException with the
    service's message: the caller must not fall back to the file, which the service holds.
    """
    import httpx

    hint = ""
    try:
        base, headers = settings.web.client_target()
    except ConfigError as error:
        if settings.web.token_env is None:
            raise click.ClickException(str(error)) from None
        # No token here: still ask without one, to use the file when nothing listens or say why the service refuses.
        base, _ = settings.web.client_target({settings.web.token_env: "unset"})
        headers, hint = {}, f" ({error})"
    url = f"{base}{path}"
    try:
        response = httpx.request(method, url, headers=headers, timeout=30.0, params=params, json=json)
    except (httpx.ConnectError, httpx.ConnectTimeout):
        return OFFLINE
    except httpx.HTTPError as error:
        raise click.ClickException(f"the service at {base} did not answer {method} {path}: {error}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not response.is_success:
        reason = body.get("error") if isinstance(body, dict) else response.text[:200].strip()
        raise click.ClickException(
            f"{method} {url}: HTTP {response.status_code}: {reason or response.reason_phrase}{hint}"
        )
    if body is None:
        raise click.ClickException(f"{method} {url}: the answer is not JSON (is stackwatch listening there?)")
    return body


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
