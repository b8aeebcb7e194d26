"""The guided first run: what `stackwatch up` prints when the demo source is configured.

    text = first_run_guide(settings, web_port=6066, config_file=Path("stackwatch.yaml"))
    if text is not None:
        print(text)

It names the dashboard, three `stackwatch sql` queries worth running on the demo and how to watch its webhooks,
as commands the user can paste from the directory the service was started in.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from stackwatch.settings import Settings

__all__ = ["DEMO_QUERIES", "first_run_guide"]

DEMO_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "Articles per dynamic and week:",
        "SELECT date_trunc('week', bucket_start)::DATE AS week, dynamic, sum(value)::INT AS articles "
        "FROM indicators WHERE indicator = 'article_count' AND bucket_width = '1d' AND entity = '*' "
        "AND source = '*' AND dynamic <> '*' GROUP BY ALL ORDER BY week, dynamic",
    ),
    (
        "Every alert: its kind, firing or resolved, and the value that tripped it:",
        "SELECT a.rule, x.kind, x.status, a.bucket_start::DATE AS day, round(a.value, 2) AS value, a.message "
        "FROM alerts a JOIN alert_details x ON x.alert_id = a.id ORDER BY a.bucket_start, a.rule",
    ),
    (
        "Stories several outlets carried:",
        "SELECT articles, sources, title FROM stories WHERE sources > 1 "
        "ORDER BY articles DESC, last_seen DESC LIMIT 10",
    ),
)


def _executable() -> str:
    """How the user runs stackwatch from here: `stackwatch` when that is on PATH, else the path it was run by."""
    program = Path(sys.argv[0])
    if program.name != "stackwatch":
        return "python -m stackwatch.pipeline.cli"
    found = shutil.which("stackwatch")
    if found is not None and Path(found).resolve() == program.resolve():
        return "stackwatch"
    return shlex.quote(os.path.relpath(program)) if not program.is_absolute() else shlex.quote(str(program))


def _shell_word(text: str) -> str:
    """``text`` as one shell word: in double quotes when nothing in it is special there (SQL reads better)."""
    return f'"{text}"' if not set(text) & set('"$`\\!') else shlex.quote(text)


def _config_option(config_file: Path | None) -> str:
    if config_file is None or config_file.resolve() == Path("stackwatch.yaml").resolve():
        return ""
    return f" -c {shlex.quote(str(config_file))}"


def _browsable(host: str) -> str:
    """The address a browser on this machine opens for a server bound to ``host``."""
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 (a bound address read, not bound)
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _receivers(settings: Settings) -> list[str]:
    """`stackwatch receive` commands for the webhooks that point at this machine."""
    commands = []
    for webhook in settings.webhooks:
        parts = urlsplit(str(webhook.url))
        if parts.hostname in {"127.0.0.1", "localhost", "::1"} and parts.port is not None:
            commands.append(f"receive --port {parts.port}    # webhook {webhook.name}")  # no URL: it may hold a token
    return commands


def first_run_guide(settings: Settings, *, web_port: int, config_file: Path | None) -> str | None:
    """Where to look once the demo plays; None when no demo source is configured."""
    if not any(source.type == "demo" for source in settings.sources):
        return None
    command = _executable()
    config = _config_option(config_file)
    lines = [
        "",
        "The demo source plays 17 weeks of AI-compute news once: within a minute of its first start they are",
        "classified, counted and stored, and the demo rules have fired.",
        "",
        f"  Dashboard   http://{_browsable(settings.web.host)}:{web_port}/dashboard/",
    ]
    receivers = _receivers(settings)
    if receivers:
        lines.append("  Webhooks    in another terminal, before or after this one:")
        lines += [f"                {command} {receiver}" for receiver in receivers]
        lines.append(f"              and `{command} alerts{config}` lists every alert and its deliveries.")
    lines += ["", "  Three queries worth running (read-only, through this service):"]
    for title, query in DEMO_QUERIES:
        lines += [f"    {title}", f"      {command} sql{config} {_shell_word(query)}"]
    lines.append("")
    return "\n".join(lines)
