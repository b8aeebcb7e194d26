"""``stackwatch alerts``, ``stackwatch silence add|list|expire``, ``stackwatch rules check|backtest``.

stackwatch alerts -n 20                                   # recent alerts and their delivery status
stackwatch silence add alertname=capex-surge dynamic=~cap.* --for 2h --comment "known story"
stackwatch silence list
stackwatch silence expire sil_1a2b3c4d5e6f
stackwatch rules check
stackwatch rules backtest --since 2026-05-01
stackwatch rules backtest --since 2026-05-01 --set capex-surge.value=5     # what if its threshold were 5?

``alerts`` and ``silence`` go through the running service (``/api/alerts``, ``/api/silences`` on ``web.host:
web.port``, with the token named by ``web.token_env``): it holds the DuckDB file and writes the silence with
its single writer. When nothing listens there, they open the file themselves; when the service answers with
an error, they show it.
"""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from stackwatch.pipeline.cli.common import JSONValue, cli_settings, config_option
from stackwatch.pipeline.cli.output import render
from stackwatch.pipeline.cli.service import OFFLINE, ask_service, current_user, open_store
from stackwatch.pipeline.cli.storage import read_store
from stackwatch.settings import Settings, parse_duration
from stackwatch.settings.alerts import engine_rules
from stackwatch.signals.alerting import Matcher
from stackwatch.signals.conditions import Rule
from stackwatch.signals.messages import Alert, parse_time, utcnow
from stackwatch.signals.rules import replay, replay_observations
from stackwatch.signals.silence_check import silence_warnings
from stackwatch.storage import history, silences

__all__ = ["alerts", "backtest_table", "rules", "silence", "spark"]


@click.group(invoke_without_command=True)
@config_option
@click.option("-n", "--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.pass_context
def alerts(context: click.Context, config: str | None, limit: int) -> None:
    """Recent alerts with their delivery status per webhook (pending, delivered, dead, silenced, inhibited);
    ``alerts show ID`` prints one in full."""
    if context.invoked_subcommand is not None:
        return
    settings = cli_settings(config, secrets=False)
    columns = ["bucket_start", "rule", "severity", "status", "dynamic", "value", "deliveries"]
    answer = ask_service(settings, "GET", "/api/alerts", params={"limit": limit})
    if answer is OFFLINE:
        with open_store(settings, write=False) as store:
            rows = [list(row) for row in history.recent_alerts(store.connection, limit)]
    else:
        rows = answer["rows"]
    click.echo(render(columns, rows, "table"))


@alerts.command("show")
@config_option
@click.argument("alert_id")
def alerts_show(config: str | None, alert_id: str) -> None:
    """One alert in full: what was judged and why (labels, values), the articles stored as its evidence, the SQL
    that reproduces its value (run it with ``stackwatch sql``), and its deliveries. ALERT_ID may be the id's first
    10 or more characters."""
    settings = cli_settings(config, secrets=False)
    answer = ask_service(settings, "GET", f"/api/alerts/{urllib.parse.quote(alert_id, safe='')}")
    if answer is OFFLINE:
        with open_store(settings, write=False) as store:
            try:
                record = history.alert_record(store.connection, alert_id)
            except ValueError as error:
                raise click.BadParameter(str(error)) from None
        if record is None:
            raise click.ClickException(f"no alert with id {alert_id!r}")
        answer = json.loads(json.dumps(record, default=str))
    assert isinstance(answer, dict)
    click.echo(alert_text(answer))


def alert_text(record: Mapping[str, Any]) -> str:
    """An alert record (:func:`~stackwatch.storage.history.alert_record`, as JSON) as terminal text."""
    lines = [
        f"{record['id']}  {record['status']}  {record['severity']}  rule {record['rule']} ({record['kind']})",
        str(record["message"]),
        f"{record['indicator']} of {record['dynamic']} in the {record['window']} bucket from {record['bucket_start']}:"
        f" {record['value']:g} against {record['threshold']:g}; stored {record['stored_at']}",
        "labels: " + ", ".join(f"{key}={value}" for key, value in sorted(record["labels"].items())),
    ]
    evidence = record.get("evidence") or {}
    articles = evidence.get("articles") or []
    lines.append(f"evidence: {len(articles)} article(s)")
    for article in articles:
        shown = {key: article[key] for key in ("published_at", "source", "title") if key in article}
        lines.append("  " + "  ".join(str(value) for value in shown.values()))
        explanation = article.get("explanation")
        if isinstance(explanation, Mapping) and explanation.get("sentence"):
            lines.append(f"    why: {explanation['sentence']}")
    if evidence.get("model_versions"):
        lines.append("tagged by: " + ", ".join(str(version) for version in evidence["model_versions"]))
    if evidence.get("value_sql"):
        lines += ["its value, with stackwatch sql:", "  " + str(evidence["value_sql"])]
    if evidence.get("sql"):
        lines += ["its articles counted, with stackwatch sql:", "  " + str(evidence["sql"]).replace("\n", "\n  ")]
    lines.append(
        "deliveries: "
        + (
            ", ".join(f"{d['webhook']} {d['status']} ({d['attempts']} attempt(s))" for d in record["deliveries"])
            or "none"
        )
    )
    return "\n".join(lines)


@click.group()
def silence() -> None:
    """Mute alerts matching label matchers until an expiry (through the running service, else in the file)."""


@silence.command("add")
@config_option
@click.argument("matchers", nargs=-1, required=True)
@click.option("--for", "duration", default="2h", show_default=True, help="How long (30m, 2h, 1d).")
@click.option("--comment", default="", help="Why.")
def silence_add(config: str | None, matchers: Sequence[str], duration: str, comment: str) -> None:
    """Add a silence: MATCHERS like alertname=capex-surge, dynamic=~cap.*, severity!=critical.

    Warns on stderr (and still adds it) when no configured rule's alerts can match it, naming the nearest rule
    for a misspelt alertname."""
    try:
        parsed = [Matcher.parse(text) for text in matchers]
        seconds = parse_duration(duration)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    settings = cli_settings(config, secrets=False)
    wanted = {"matchers": list(matchers), "duration": duration, "comment": comment, "created_by": current_user()}
    answer = ask_service(settings, "POST", "/api/silences", json=wanted)
    if answer is not OFFLINE:
        said = answer.get("warnings")  # the service judges by the rules it runs, when it runs them
        _warn(said if isinstance(said, list) else silence_warnings(parsed, _configured_rules(settings)))
        click.echo(answer["id"])
        return
    now = utcnow()
    try:
        ends_at = now + timedelta(seconds=seconds)
    except OverflowError:
        raise click.BadParameter(f"--for {duration}: longer than {silences.MAX_SILENCE.days}d") from None
    with open_store(settings, write=True) as store:
        try:
            silence_id = silences.add_silence(
                store.connection, parsed, ends_at, now=now, comment=comment, created_by=current_user()
            )
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    _warn(silence_warnings(parsed, _configured_rules(settings)))
    click.echo(silence_id)


def _configured_rules(settings: Settings) -> list[Rule]:
    return engine_rules(settings.rules)


def _warn(warnings: Sequence[JSONValue]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@silence.command("list")
@config_option
@click.option("--all", "include_expired", is_flag=True, help="Include expired silences.")
def silence_list(config: str | None, include_expired: bool) -> None:
    """Active silences (and expired ones with --all)."""
    settings = cli_settings(config, secrets=False)
    answer = ask_service(settings, "GET", "/api/silences", params={"all": int(include_expired)})
    if answer is OFFLINE:
        with open_store(settings, write=False) as store:
            answer = silences.silence_records(store.connection, utcnow(), include_expired=include_expired)
    rows = [
        [item["id"], " ".join(item["matchers"]), item["ends_at"], item["state"], item["created_by"], item["comment"]]
        for item in answer
    ]
    click.echo(render(["id", "matchers", "ends_at", "state", "created_by", "comment"], rows, "table"))


@silence.command("expire")
@config_option
@click.argument("silence_id")
def silence_expire(config: str | None, silence_id: str) -> None:
    """End a silence now."""
    settings = cli_settings(config, secrets=False)
    answer = ask_service(settings, "DELETE", f"/api/silences/{urllib.parse.quote(silence_id, safe='')}")
    if answer is OFFLINE:
        with open_store(settings, write=True) as store:
            if not silences.expire_silence(store.connection, silence_id, utcnow()):
                raise click.ClickException(f"no active silence {silence_id!r}")
    click.echo(f"expired {silence_id}")


@click.group()
def rules() -> None:
    """Validate rules and replay stored history through them."""


@rules.command("check")
@config_option
def rules_check(config: str | None) -> None:
    """Validate the rules (kinds, dynamics, webhooks, templates) and say which the stream evaluates."""
    settings = cli_settings(config, secrets=False)
    for item in settings.rules:
        click.echo(f"{item.name:<32} {item.kind:<13} {item.severity:<8} ok")
    click.echo(f"{len(settings.rules)} rule(s) valid")


def spark(values: Sequence[float]) -> str:
    """A one-line chart: ``spark([0, 1, 2, 4])`` → ``' ▂▄█'``."""
    bars = " ▁▂▃▄▅▆▇█"
    top = max(values, default=0.0)
    if top <= 0:
        return " " * len(values)
    return "".join(bars[round(value / top * (len(bars) - 1))] for value in values)


def backtest_table(fired: Sequence[Alert]) -> list[list[str]]:
    return [[a.bucket_start.isoformat(), a.rule, a.severity, a.status, a.dynamic, f"{a.value:g}", a.id] for a in fired]


@rules.command("backtest")
@config_option
@click.option("--since", required=True, help="Replay from this date or time (ISO-8601, UTC).")
@click.option("--until", default=None, help="Up to this date or time (default: now).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="RULE.KEY=VALUE",
    help="Try another value of a rule's key without editing the file (repeatable): --set capex-surge.value=5.",
)
def rules_backtest(config: str | None, since: str, until: str | None, overrides: Sequence[str]) -> None:
    """Replay stored indicator history through the rules: when each would have fired, as a table and a chart.

    Reads the store file, or its snapshot while the service runs (which one, and its age, on stderr). ``--set``
    replays with a rule's key changed (what if the threshold were 5?), validated as the file is."""
    settings = cli_settings(config, secrets=False)
    if overrides:
        from stackwatch.pipeline.cli.whatif import what_if

        settings = what_if(settings, overrides)
        click.echo(f"backtest: what if {' '.join(overrides)}", err=True)
    try:
        start, end = parse_time(since, "--since"), parse_time(until, "--until") if until else None
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    from stackwatch.pipeline.roles.agents.rules import build_engine

    with read_store(settings, "backtest") as store:
        values = history.indicator_history(store.connection, start, end)
        articles = history.observation_history(store.connection, start, end)
    from tqdm import tqdm

    # Entity rules and quiet sources judge articles, the others judge indicator values: each replays its input.
    engine = build_engine(settings.rules, settings.alerting, settings.indicators.baseline_params())
    by_articles = [rule for rule in engine.rules if rule.reads_articles]
    by_values = [rule for rule in engine.rules if not rule.reads_articles]
    fired = replay(replace(engine, rules=by_values), tqdm(values, unit="value", desc="backtest", disable=None))
    if by_articles:
        fired += replay_observations(replace(engine, rules=by_articles), articles)
    fired.sort(key=lambda alert: (alert.bucket_start, alert.rule, alert.status))
    columns = ["bucket_start", "rule", "severity", "status", "dynamic", "value", "alert_id"]
    click.echo(render(columns, backtest_table(fired), "table"))
    click.echo(f"{len(values)} indicator value(s) and {len(articles)} article(s) replayed, {len(fired)} alert(s)")
    if fired:
        click.echo(_chart(fired, start, end or max(a.bucket_start for a in fired)))


def _chart(fired: Sequence[Alert], start: datetime, end: datetime, width: int = 48) -> str:
    """Firings per rule over time, one row per rule, ``width`` columns from ``start`` to ``end``."""
    span = max((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds(), 1.0)
    lines = [f"{'':<24} {start.date().isoformat()}{' ' * (width - 20)}{end.date().isoformat()}"]
    for name in sorted({a.rule for a in fired}):
        counts = Counter(
            min(width - 1, int((a.bucket_start - start).total_seconds() / span * width))
            for a in fired
            if a.rule == name and a.status == "firing"
        )
        lines.append(f"{name[:24]:<24} |{spark([float(counts.get(i, 0)) for i in range(width)])}|")
    return "\n".join(lines)
