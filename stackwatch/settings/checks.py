"""Checks across sections: names unique, references known, hosts well formed. Every message starts with its key.

:func:`reference_problems` takes :class:`References`, which come from validated settings
(:meth:`References.of`) or, when the schema already refused the file, leniently from the parsed file
(:meth:`References.from_raw`), so one run reports the schema's errors and these together.

    >>> host_problem("127.0.0.1"), host_problem("stackwatch.example.com"), host_problem("")
    (None, None, 'is empty: expected a host name or an IP address')
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from stackwatch.settings.alerts import RuleSettings
from stackwatch.signals.taxonomy import Taxonomy

if TYPE_CHECKING:
    from stackwatch.settings import Settings

__all__ = ["References", "host_problem", "reference_problems"]

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_RULE = TypeAdapter[RuleSettings](RuleSettings)
_NAMED = ("sources", "webhooks", "rules", "dynamics", "digests")


def host_problem(host: str, *, brackets: bool = False) -> str | None:
    """What is wrong with ``host`` as a host name or IP address, or None. ``brackets``: ``[::1]`` is allowed."""
    if not host.strip():
        return "is empty: expected a host name or an IP address"
    bare = host[1:-1] if brackets and host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        return None
    if len(host) <= 253 and _HOST_NAME.match(host):
        return None
    hint = " (an IPv6 address goes without brackets here)" if host.startswith("[") else ""
    return f"expected a host name or an IP address, without scheme, port, path or spaces, got {host[:80]!r}{hint}"


@dataclass(frozen=True, slots=True)
class References:
    """What the cross-section checks look at."""

    names: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Declared names of ``sources``, ``webhooks``, ``rules``, ``dynamics`` and ``digests``, in file order."""
    dynamics: Sequence[str] = ()
    """Every dynamic a rule may name: the built-in ones and those the file declares."""
    rules: Sequence[tuple[int, RuleSettings]] = ()
    """The rules that are valid on their own, with their index in the file."""
    routes: Sequence[tuple[int, Sequence[str]]] = ()
    """Each ``alerting.routes`` entry's webhooks."""
    digests: Sequence[tuple[int, Sequence[str], Sequence[str]]] = ()
    """Each ``digests`` entry's dynamics and webhooks."""
    web_host: str | None = None
    kafka_hosts: Sequence[tuple[int, str]] = ()
    """The host part of each ``kafka.bootstrap_servers`` entry."""

    @classmethod
    def of(cls, settings: Settings) -> References:
        return cls(
            names={
                "sources": [item.name for item in settings.sources],
                "webhooks": [item.name for item in settings.webhooks],
                "rules": [item.name for item in settings.rules],
                "dynamics": [item.name for item in settings.dynamics],
                "digests": [item.name for item in settings.digests],
            },
            dynamics=settings.taxonomy().names,
            rules=list(enumerate(settings.rules)),
            routes=[(index, route.webhooks) for index, route in enumerate(settings.alerting.routes)],
            digests=[(index, item.dynamics, item.webhooks) for index, item in enumerate(settings.digests)],
            web_host=settings.web.host,
            kafka_hosts=list(enumerate(_host_of(server) for server in settings.kafka.bootstrap_servers or [])),
        )

    @classmethod
    def from_raw(cls, data: Mapping[str, Any]) -> References:
        """From a parsed file the schema refused: whatever is well formed enough to check is checked."""
        names = {key: _raw_names(data.get(key)) for key in _NAMED}
        rules = []
        for index, item in enumerate(_list(data.get("rules"))):
            try:
                rules.append((index, _RULE.validate_python(item)))
            except ValidationError:
                continue  # the schema reports it
        alerting = data.get("alerting")
        routes = [
            (index, [hook for hook in _list(route.get("webhooks")) if isinstance(hook, str)])
            for index, route in enumerate(_list(alerting.get("routes") if isinstance(alerting, dict) else None))
            if isinstance(route, dict)
        ]
        digests = [
            (index, _strings(item.get("dynamics")), _strings(item.get("webhooks")))
            for index, item in enumerate(_list(data.get("digests")))
            if isinstance(item, dict)
        ]
        web = data.get("web")
        host = web.get("host") if isinstance(web, dict) else None
        return cls(
            names=names,
            dynamics=(*Taxonomy().names, *names["dynamics"]),
            rules=rules,
            routes=routes,
            digests=digests,
            web_host=host if isinstance(host, str) else None,
            kafka_hosts=_raw_kafka_hosts(data.get("kafka")),
        )


def reference_problems(refs: References) -> list[str]:
    """Duplicate names, rules naming unknown dynamics, sources or webhooks, routes naming unknown webhooks, and
    malformed hosts: one message per problem, each starting with its key."""
    problems = []
    for key in _NAMED:
        repeated = sorted(name for name, count in Counter(refs.names.get(key, ())).items() if count > 1)
        if repeated:
            problems.append(f"{key}: duplicate name(s) {', '.join(repeated)}")
    sources = list(refs.names.get("sources", ()))
    hooks = set(refs.names.get("webhooks", ()))
    for index, rule in refs.rules:
        for dynamic in rule.referenced_dynamics():
            if dynamic not in refs.dynamics:
                problems.append(
                    f"rules[{index}].dynamic: unknown dynamic {dynamic!r} (known: {', '.join(refs.dynamics)})"
                )
        for source in rule.referenced_sources():
            if source not in sources:
                problems.append(
                    f"rules[{index}].source: unknown source {source!r} (defined: {', '.join(sources) or 'none'})"
                )
        for hook in rule.webhooks:
            if hook not in hooks:
                problems.append(
                    f"rules[{index}].webhooks: unknown webhook {hook!r} (defined: {', '.join(sorted(hooks)) or 'none'})"
                )
    for index, route_hooks in refs.routes:
        unknown = sorted(set(route_hooks) - hooks)
        if unknown:
            problems.append(f"alerting.routes[{index}].webhooks: unknown webhook(s) {', '.join(unknown)}")
    for index, dynamics, digest_hooks in refs.digests:
        known = ", ".join(refs.dynamics)
        folded = {dynamic.casefold() for dynamic in refs.dynamics}
        if unknown := [dynamic for dynamic in dynamics if dynamic.casefold() not in folded]:  # any case, as digests
            problems.append(f"digests[{index}].dynamics: unknown dynamic(s) {', '.join(unknown)} (known: {known})")
        if unknown := sorted(set(digest_hooks) - hooks):
            problems.append(
                f"digests[{index}].webhooks: unknown webhook(s) {', '.join(unknown)} "
                f"(defined: {', '.join(sorted(hooks)) or 'none'})"
            )
    if refs.web_host is not None and (problem := host_problem(refs.web_host)):
        problems.append(f"web.host: {problem}")
    for index, host in refs.kafka_hosts:
        if problem := host_problem(host, brackets=True):
            problems.append(f"kafka.bootstrap_servers[{index}]: host {problem}")
    return problems


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: object) -> list[str]:
    return [item for item in _list(value) if isinstance(item, str)]


def _raw_names(section: object) -> list[str]:
    return [item["name"] for item in _list(section) if isinstance(item, dict) and isinstance(item.get("name"), str)]


def _host_of(server: str) -> str:
    return server.rpartition(":")[0]


def _raw_kafka_hosts(kafka: object) -> list[tuple[int, str]]:
    servers = kafka.get("bootstrap_servers") if isinstance(kafka, dict) else None
    if isinstance(servers, str):
        servers = [part.strip() for part in servers.split(",") if part.strip()]
    hosts = []
    for index, server in enumerate(_list(servers)):
        host, _, port = str(server).removeprefix("kafka://").rpartition(":")
        if host and port.isdigit():  # otherwise the schema already says "expected host:port"
            hosts.append((index, host))
    return hosts
