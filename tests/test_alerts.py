"""Grouping, inhibition, silences and evidence in the DuckDB outbox; the CLI; backtest equals live firing."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from click.testing import CliRunner

from stackwatch.pipeline.cli.main import cli
from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.pipeline.kafka.codec import decode, encode
from stackwatch.pipeline.roles.agents.common import RULES_KEY
from stackwatch.pipeline.roles.agents.rules import build_engine
from stackwatch.pipeline.roles.delivery import Deliverer
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import WebhookSettings, load_settings
from stackwatch.signals.alerting import Inhibition, Matcher
from stackwatch.signals.conditions import Cooccurrence, Rule
from stackwatch.signals.messages import Alert, Article, IndicatorUpdate, Observation, Observations, TaggedArticle
from stackwatch.signals.rules import RuleEngine, replay, replay_observations
from stackwatch.storage import silences
from stackwatch.storage.outbox import Grouping
from stackwatch.storage.recovery import stored_observations
from stackwatch.storage.store import Batch, Store
from tests.helpers.http import LocalServer
from tests.helpers.service import Service, write_config

NOON = datetime(2026, 5, 1, 12, tzinfo=UTC)
GROUPING = Grouping(
    group_by=("alertname", "dynamic"),
    group_wait=timedelta(minutes=10),
    inhibitions=(Inhibition({"severity": "critical"}, {"severity": "warning"}, ("dynamic", "window")),),
)


def alert(rule: str, dynamic: str = "capex", severity: str = "warning", window: str = "1h") -> Alert:
    labels = {"alertname": rule, "severity": severity, "dynamic": dynamic, "window": window, "kind": "threshold"}
    return Alert(
        f"alert_{rule}_{dynamic}_{severity}_{window}", rule, severity, dynamic, "article_count", window, NOON, 5.0,
        3.0, "m", ("ops",), NOON, dedup_key=f"{rule}|{dynamic}|{window}", labels=labels,
        values={"article_count": 5.0},
    )  # fmt: skip


def deliver(store: Store, url: str, *moments: datetime) -> None:
    async def go() -> None:
        deliverer = Deliverer(StoreThread(store), {"ops": WebhookSettings(name="ops", url=url)}, GROUPING)
        try:
            for moment in moments:
                await deliverer.deliver_due(now=moment)
        finally:
            await deliverer.close()

    asyncio.run(go())


def bodies(server: LocalServer) -> list[dict[str, Any]]:
    return [json.loads(request.body) for request in server.received("/hook")]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "alerts.duckdb") as opened:
        yield opened


def test_alerts_with_the_same_group_labels_within_the_wait_are_one_notification(
    store: Store, http_server: LocalServer
) -> None:
    http_server.route("/hook", "ok")
    now = datetime.now(UTC)
    store.write(Batch(alerts=[alert("surge", window="1h")]))
    deliver(store, http_server.url("/hook"), now)  # the group is still waiting
    assert http_server.received("/hook") == []
    store.write(Batch(alerts=[alert("surge", window="1d"), alert("surge", dynamic="edge")]))
    deliver(store, http_server.url("/hook"), now + timedelta(minutes=11))
    groups = sorted((body["data"]["group_key"], len(body["data"]["alerts"])) for body in bodies(http_server))
    assert groups == [("alertname=surge,dynamic=capex", 2), ("alertname=surge,dynamic=edge", 1)]
    assert store.query("SELECT count(*) FROM deliveries WHERE status = 'delivered'").rows == [(3,)]


def test_a_critical_alert_inhibits_its_warning_twin(store: Store, http_server: LocalServer) -> None:
    http_server.route("/hook", "ok")
    store.write(Batch(alerts=[alert("surge"), alert("surge-critical", severity="critical"), alert("other", "edge")]))
    deliver(store, http_server.url("/hook"), datetime.now(UTC) + timedelta(hours=1))
    sent = sorted(item["rule"] for body in bodies(http_server) for item in body["data"]["alerts"])
    assert sent == ["other", "surge-critical"]
    rows = store.query("SELECT status, last_error FROM deliveries WHERE alert_id = ?", [alert("surge").id]).rows
    assert rows == [("inhibited", "inhibited by surge-critical (critical)")]


def test_silences_mute_matching_alerts_until_they_expire(store: Store, http_server: LocalServer) -> None:
    http_server.route("/hook", "ok")
    now = datetime.now(UTC)
    silence = silences.add_silence(
        store.connection, [Matcher.parse("alertname=~sur.*"), Matcher.parse("dynamic=capex")], now + timedelta(days=1),
        now=now, comment="known",
    )  # fmt: skip
    store.write(Batch(alerts=[alert("surge"), alert("surge", dynamic="edge")]))
    deliver(store, http_server.url("/hook"), now + timedelta(hours=1))
    assert [item["dynamic"] for body in bodies(http_server) for item in body["data"]["alerts"]] == ["edge"]
    assert store.query("SELECT status, last_error FROM deliveries WHERE status = 'silenced'").rows == [
        ("silenced", f"silenced by {silence}")
    ]
    assert [item.id for item in silences.list_silences(store.connection, now)] == [silence]
    assert silences.expire_silence(store.connection, silence, now + timedelta(hours=2))
    assert silences.list_silences(store.connection, now + timedelta(hours=3)) == []
    store.write(Batch(alerts=[alert("surge", window="1d")]))
    deliver(store, http_server.url("/hook"), now + timedelta(hours=4))
    assert len(http_server.received("/hook")) == 2


def test_every_alert_carries_evidence_that_reproduces_its_numbers(store: Store) -> None:
    tagged = [
        TaggedArticle(
            Article(
                f"a{i}", f"https://x.test/{i}", f"Capex story {i}", "", "wire", "rss", NOON + timedelta(minutes=i), NOON
            ),
            ("capex",),
            {"capex": 0.5 + i / 10},
            "v1",
        )
        for i in range(4)
    ]
    store.write(Batch(tagged=tagged, indicators=[IndicatorUpdate("article_count", "capex", "1h", NOON, 4.0)]))
    fired = alert("surge")
    store.write(Batch(alerts=[fired]))
    (row,) = store.query("SELECT evidence FROM alert_details WHERE alert_id = ?", [fired.id]).rows
    evidence = json.loads(row[0])
    assert [item["title"] for item in evidence["articles"]] == [
        "Capex story 3",
        "Capex story 2",
        "Capex story 1",
        "Capex story 0",
    ]
    assert set(evidence["articles"][0]) == {"id", "title", "url", "source", "published_at", "scores"}
    assert evidence["values"] == {"article_count": 5.0}
    assert store.query(evidence["sql"]).rows == [("capex", 4)]


def config(tmp_path: Path, db: Path, extra: dict[str, Any] | None = None) -> Path:
    return write_config(
        tmp_path / "stackwatch.yaml",
        {
            "storage": {"path": str(db)},
            "state": {"path": str(tmp_path / "state")},
            "web": {"port": free_port()},  # nothing listens there: the commands use the file
            "webhooks": [{"name": "ops", "url": "http://127.0.0.1:9/hook"}],
            "rules": [
                {"name": "surge", "kind": "threshold", "dynamic": "capex", "value": 3, "for": 2, "webhooks": ["ops"]},
                {"name": "spike", "kind": "spike", "dynamic": "capex", "baseline": 4, "value": 2, "cooldown": "3h"},
                {"name": "quiet", "kind": "silence", "dynamic": "edge", "after": "3h"},
                {"name": "msft", "kind": "cooccurrence", "dynamic": "exclusivity", "entities": ["Microsoft"]},
            ],
            **(extra or {}),
        },
    )


def test_silence_and_alerts_commands(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    with Store.open(db) as store:
        store.write(Batch(alerts=[alert("surge")]))
    path = str(config(tmp_path, db))
    runner = CliRunner()
    added = runner.invoke(cli, ["silence", "add", "-c", path, "alertname=surge", "--for", "1h", "--comment", "known"])
    assert added.exit_code == 0, added.output
    silence_id = added.output.strip()
    listed = runner.invoke(cli, ["silence", "list", "-c", path])
    assert silence_id in listed.output
    assert "alertname=surge" in listed.output
    assert runner.invoke(cli, ["silence", "expire", "-c", path, silence_id]).exit_code == 0
    assert silence_id not in runner.invoke(cli, ["silence", "list", "-c", path]).output
    bad = runner.invoke(cli, ["silence", "add", "-c", path, "no matcher here"])
    assert bad.exit_code != 0
    assert "not a matcher" in bad.output
    shown = runner.invoke(cli, ["alerts", "-c", path])
    assert "surge" in shown.output
    assert "ops:pending(0)" in shown.output


def test_rules_check_validates_every_kind(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["rules", "check", "-c", str(config(tmp_path, tmp_path / "x.duckdb"))])
    assert ok.exit_code == 0, ok.output
    assert "4 rule(s) valid" in ok.output
    assert all(line.endswith(" ok") for line in ok.output.splitlines()[:4])
    bad = write_config(
        tmp_path / "bad.yaml",
        {"rules": [{"name": "x", "kind": "spike", "dynamic": "capex", "dedup": "{nope}", "for": 0}]},
    )
    failed = runner.invoke(cli, ["rules", "check", "-c", str(bad)])
    assert failed.exit_code != 0
    assert "rules[0].for" in failed.output


def scripted_history() -> list[IndicatorUpdate]:
    """Per-bucket counts rising one article at a time, as the indicator agent emits them, capex and edge."""
    capex = [1, 1, 1, 1, 4, 5, 1, 1, 6, 1, 1, 1]
    edge = [1, 2, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1]
    updates = []
    for hour, (c, e) in enumerate(zip(capex, edge, strict=True)):
        start = NOON + timedelta(hours=hour)
        updates += [IndicatorUpdate("article_count", "capex", "1h", start, float(n)) for n in range(1, c + 1)]
        updates += [IndicatorUpdate("article_count", "edge", "1h", start, float(n)) for n in range(1, e + 1)]
    return updates


def articles_for(updates: list[IndicatorUpdate]) -> list[TaggedArticle]:
    """One tagged article per counted update (the n-th article of a bucket makes its count n)."""
    return [
        TaggedArticle(
            Article(
                f"{u.dynamic}-{u.bucket_start:%H}-{int(u.value)}",
                "https://x.test/",
                "t",
                "",
                "wire",
                "rss",
                u.bucket_start + timedelta(minutes=int(u.value)),
                u.bucket_start,
            ),
            (u.dynamic,),
            {u.dynamic: 0.9},
            "v1",
        )
        for u in updates
    ]


def live_firing(broker: str, unique: str, tmp_path: Path, updates: list[IndicatorUpdate]) -> list[Alert]:
    """Run the real worker role on a real broker, feed it the articles behind ``updates`` (as the classify agent
    would: observations, one batch per article) and collect the alerts it sends."""
    path = config(
        tmp_path,
        tmp_path / "unused.duckdb",
        {
            "kafka": {
                "bootstrap_servers": [broker],
                "app_id": unique,
                "topic_prefix": unique,
                "session_timeout": "6s",
            },
            "classifier": {"backend": "keyword"},
            "indicators": {"stream_retention": "3650d"},  # the scripted history lies months back
        },
    )
    web_port = free_port()
    service = Service(path, command="worker", web_port=web_port)

    async def feed_and_collect() -> list[Alert]:
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        try:
            for tagged in articles_for(updates):
                batch = Observations((Observation.of(tagged),))
                await producer.send_and_wait(f"{unique}.observations", encode(batch), key=RULES_KEY)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(f"{unique}.alerts", bootstrap_servers=broker, auto_offset_reset="earliest")
        await consumer.start()
        got: list[Alert] = []
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and len(got) < len(expected) and service.process.poll() is None:
                batch = await consumer.getmany(timeout_ms=1000)
                got += [decode(Alert, record.value) for records in batch.values() for record in records]
        finally:
            await consumer.stop()
        return got

    settings = load_settings(path)
    expected = replay(build_engine(settings.rules, settings.alerting), updates)
    try:
        return asyncio.run(feed_and_collect())
    finally:
        assert service.stop() == 0, service.output[-4000:]


def test_backtest_output_matches_live_firing_on_the_same_history(broker: str, unique: str, tmp_path: Path) -> None:
    updates = scripted_history()
    live = live_firing(broker, unique, tmp_path, updates)
    db = tmp_path / "history.duckdb"
    with Store.open(db) as store:  # the same history as the sink keeps it: articles, indicators derived from them
        store.write(Batch(tagged=articles_for(updates)))
    path = str(config(tmp_path, db))
    result = CliRunner().invoke(cli, ["rules", "backtest", "-c", path, "--since", "2026-05-01"])
    assert result.exit_code == 0, result.output
    live_rows = sorted((a.bucket_start.isoformat(), a.rule, a.status, a.id) for a in live)
    shown = sorted(
        (cells[0], cells[1], cells[3], cells[6])
        for line in result.output.splitlines()
        if (cells := line.split()) and cells[-1].startswith("alert_") and cells[0] != "bucket_start"
    )
    assert shown == live_rows
    rules_fired = {row[1] for row in live_rows}
    assert rules_fired == {"surge", "spike", "quiet"}
    assert "surge" in result.output.split("alert(s)")[-1]  # the chart has a row per rule


def test_a_cooccurrence_alert_gives_as_evidence_only_articles_naming_its_entities(store: Store) -> None:
    texts = [
        "Microsoft and OpenAI extend their exclusive cloud deal",
        "Microsoft signs an exclusive deal with a chip start-up",  # one entity only
        "OpenAI's exclusive API stays on Microsoft Azure",
    ]
    tagged = [
        TaggedArticle(
            Article(f"x{i}", f"https://x.test/{i}", text, "", "wire", "rss", NOON + timedelta(minutes=i), NOON),
            ("exclusivity",),
            {"exclusivity": 0.9 - i / 10},
            "v1",
        )
        for i, text in enumerate(texts)
    ]
    store.write(Batch(tagged=tagged))
    rule = Rule("lock-in", Cooccurrence("exclusivity", ("Microsoft", "OpenAI"), window="1h"))
    (fired,) = replay_observations(RuleEngine([rule]), [Observation.of(t, ("Microsoft", "OpenAI")) for t in tagged[:1]])
    store.write(Batch(alerts=[fired]))
    (row,) = store.query("SELECT evidence FROM alert_details WHERE alert_id = ?", [fired.id]).rows
    evidence = json.loads(row[0])
    assert [item["title"] for item in evidence["articles"]] == [texts[0], texts[2]]
    assert store.query(evidence["sql"]).rows == [("exclusivity", 2)]


def test_a_cooccurrence_of_stories_alert_recomputes_its_story_count_in_sql(store: Store) -> None:
    """Two outlets' copies of one Microsoft-OpenAI story and one other story: the stories rule judged 2, and its
    ``value_sql`` counts the same two stories (the copies are one story in the store)."""
    texts = [
        ("wire", "Microsoft and OpenAI extend their exclusive cloud deal through 2030"),
        ("tech", "Microsoft and OpenAI extend their exclusive cloud deal through 2030 | Tech"),
        ("cloud", "OpenAI's exclusive API stays on Microsoft Azure, the companies say"),
    ]
    tagged = [
        TaggedArticle(
            Article(f"s{i}", f"https://{source}.test/{i}", text, "", source, "rss", NOON + timedelta(minutes=i), NOON),
            ("exclusivity",),
            {"exclusivity": 0.9},
            "v1",
        )
        for i, (source, text) in enumerate(texts)
    ]
    changed = store.write(Batch(tagged=tagged))
    observed = stored_observations(store.connection, changed)
    assert len({item.story for item in observed}) == 2
    rule = Rule(
        "lock-in-events",
        Cooccurrence("exclusivity", ("Microsoft", "OpenAI"), window="1h", threshold=2, indicator="story_count"),
    )
    (fired,) = replay_observations(RuleEngine([rule]), observed)
    assert (fired.value, fired.indicator) == (2.0, "cooccurrence_stories")
    store.write(Batch(alerts=[fired]))
    (row,) = store.query("SELECT evidence FROM alert_details WHERE alert_id = ?", [fired.id]).rows
    assert store.query(json.loads(row[0])["value_sql"]).rows == [(2,)]
