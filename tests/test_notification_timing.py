"""Alertmanager's notification timing on a real DuckDB outbox and a real local webhook receiver.

The clock is a parameter: each round asks the deliverer what is due at a given ``now`` (a fixed date in the
past, so the group timers start at the round that first sees an alert), and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackwatch.errors import ConfigError
from stackwatch.pipeline.roles.delivery import Deliverer
from stackwatch.pipeline.roles.delivery.formats import render_body
from stackwatch.pipeline.roles.delivery.sentences import sentence
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import WebhookSettings, settings_from_mapping
from stackwatch.signals.alerting import Matcher
from stackwatch.signals.conditions import Rule, Threshold
from stackwatch.signals.messages import Alert, Article, IndicatorUpdate, TaggedArticle
from stackwatch.signals.rules import RuleEngine
from stackwatch.storage import silences
from stackwatch.storage.outbox import AlertRow, Grouping, Notification, dispatch
from stackwatch.storage.status import store_summary
from stackwatch.storage.store import Batch, Store
from tests.helpers.http import LocalServer

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
GROUPING = Grouping(
    group_by=("alertname", "dynamic"),
    group_wait=timedelta(seconds=30),
    group_interval=timedelta(minutes=5),
    repeat_interval=timedelta(hours=4),
)
FIRST = T0 + timedelta(seconds=30)  # the first flush of a group that saw its first alert at T0


def at(**offset: float) -> datetime:
    return T0 + timedelta(**offset)


def alert(window: str = "1h", dynamic: str = "capex", status: str = "firing", bucket: datetime = T0) -> Alert:
    labels = {"alertname": "surge", "severity": "warning", "dynamic": dynamic, "window": window}
    dedup = f"surge|{dynamic}|{window}"
    return Alert(
        f"alert_{dynamic}_{window}_{bucket:%H}_{status}", "surge", "warning", dynamic, "article_count", window,
        bucket, 5.0, 3.0, f"{dynamic} article_count 5 >= 3", ("ops",), bucket, status=status, kind="threshold",
        dedup_key=dedup, labels=labels, values={"article_count": 5.0},
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "alerts.duckdb") as opened:
        yield opened


@pytest.fixture
def receiver(http_server: LocalServer) -> LocalServer:
    http_server.route("/hook", "ok")
    return http_server


def deliver(store: Store, server: LocalServer, *moments: datetime, grouping: Grouping = GROUPING) -> int:
    """Delivery rounds at ``moments`` by one deliverer; how many notifications were attempted."""

    async def go() -> int:
        hook = WebhookSettings(name="ops", url=server.url("/hook"))
        deliverer = Deliverer(StoreThread(store), {"ops": hook}, grouping)
        try:
            return sum([await deliverer.deliver_due(now=moment) for moment in moments])
        finally:
            await deliverer.close()

    return asyncio.run(go())


def received(server: LocalServer) -> list[tuple[str, list[tuple[str, str]], bool]]:
    """(webhook-id, [(alert id, status)], repeat) of every request, in order."""
    found = []
    for request in server.received("/hook"):
        data = json.loads(request.body)["data"]
        alerts = [(item["id"], item["status"]) for item in data["alerts"]]
        found.append((request.headers["webhook-id"], alerts, data["repeat"]))
    return found


def test_group_wait_batches_the_alerts_of_a_group_into_one_notification(store: Store, receiver: LocalServer) -> None:
    store.write(Batch(alerts=[alert("1h")]))
    assert deliver(store, receiver, T0) == 0  # the group waits group_wait from here
    store.write(Batch(alerts=[alert("1d"), alert("1h", dynamic="edge")]))
    assert deliver(store, receiver, at(seconds=29)) == 0
    assert deliver(store, receiver, at(seconds=30)) == 1  # capex: started at T0; edge started at 29 s
    assert deliver(store, receiver, at(seconds=58)) == 0
    assert deliver(store, receiver, at(seconds=59)) == 1
    sent = [sorted(item for item, _ in alerts) for _, alerts, _ in received(receiver)]
    assert sent == [sorted([alert("1h").id, alert("1d").id]), [alert("1h", dynamic="edge").id]]


def test_what_changes_in_a_notified_group_waits_for_its_next_group_interval(
    store: Store, receiver: LocalServer
) -> None:
    store.write(Batch(alerts=[alert("1h")]))
    deliver(store, receiver, T0, FIRST)
    store.write(Batch(alerts=[alert("1d")]))  # joins a group that has notified: no group_wait of its own
    assert deliver(store, receiver, FIRST + timedelta(minutes=1), FIRST + timedelta(minutes=4, seconds=59)) == 0
    assert deliver(store, receiver, FIRST + timedelta(minutes=5)) == 1
    store.write(Batch(alerts=[alert("1h", status="resolved", bucket=at(hours=1))]))
    assert deliver(store, receiver, FIRST + timedelta(minutes=9)) == 0
    assert deliver(store, receiver, FIRST + timedelta(minutes=10)) == 1
    assert [alerts for _, alerts, _ in received(receiver)] == [
        [(alert("1h").id, "firing")],
        [(alert("1d").id, "firing"), (alert("1h").id, "firing")],  # a change sends what the group holds
        [(alert("1d").id, "firing"), (alert("1h", status="resolved", bucket=at(hours=1)).id, "resolved")],
    ]


def test_a_firing_alert_is_sent_again_every_repeat_interval_under_a_new_webhook_id(
    store: Store, receiver: LocalServer
) -> None:
    store.write(Batch(alerts=[alert()]))
    ticks = [FIRST + timedelta(minutes=5 * n) for n in range(0, 8 * 12 + 1)]  # every group_interval for 8 h
    deliver(store, receiver, T0, *ticks)
    requests = received(receiver)
    assert [alerts for _, alerts, _ in requests] == [[(alert().id, "firing")]] * 3
    assert [repeat for _, _, repeat in requests] == [False, True, True]
    assert len({webhook_id for webhook_id, _, _ in requests}) == 3
    sent_at = store.query("SELECT created_at FROM notifications ORDER BY created_at").rows
    assert [row[0] - sent_at[0][0] for row in sent_at] == [timedelta(0), timedelta(hours=4), timedelta(hours=8)]


def test_a_repeat_lands_on_the_first_group_interval_tick_after_repeat_interval(
    store: Store, receiver: LocalServer
) -> None:
    grouping = Grouping(
        group_wait=timedelta(0), group_interval=timedelta(minutes=7), repeat_interval=timedelta(hours=1)
    )
    store.write(Batch(alerts=[alert()]))
    deliver(store, receiver, T0, *(T0 + timedelta(minutes=minute) for minute in range(1, 131)), grouping=grouping)
    sent_at = [row[0] for row in store.query("SELECT created_at FROM notifications ORDER BY created_at").rows]
    assert sent_at == [T0, T0 + timedelta(minutes=63), T0 + timedelta(minutes=126)]  # ticks every 7 minutes


def test_a_notified_firing_is_always_resolved_and_an_unnotified_one_never(store: Store, receiver: LocalServer) -> None:
    store.write(Batch(alerts=[alert("1h"), alert("1d")]))
    deliver(store, receiver, T0, FIRST)
    silence = silences.add_silence(store.connection, [Matcher.parse("window=1h")], at(days=1), now=FIRST)
    store.write(Batch(alerts=[alert("1h", status="resolved", bucket=at(hours=1))]))
    deliver(store, receiver, FIRST + timedelta(minutes=5))  # its firing was notified: the silence does not hold it
    store.write(Batch(alerts=[alert("1h", bucket=at(hours=2))]))  # a new episode, silenced
    deliver(store, receiver, FIRST + timedelta(minutes=10))
    store.write(Batch(alerts=[alert("1h", status="resolved", bucket=at(hours=3))]))
    deliver(store, receiver, FIRST + timedelta(minutes=15), FIRST + timedelta(minutes=20))
    assert [alerts for _, alerts, _ in received(receiver)] == [
        [(alert("1d").id, "firing"), (alert("1h").id, "firing")],
        [(alert("1d").id, "firing"), (alert("1h", status="resolved", bucket=at(hours=1)).id, "resolved")],
    ]
    statuses = dict(store.query("SELECT alert_id, status || ': ' || coalesce(last_error, '') FROM deliveries").rows)
    assert statuses[alert("1h", bucket=at(hours=2)).id] == f"silenced: silenced by {silence}"
    assert statuses[alert("1h", status="resolved", bucket=at(hours=3)).id] == (
        "muted: its firing was never notified (nothing to resolve)"
    )


def test_a_firing_resolved_within_group_wait_sends_nothing(store: Store, receiver: LocalServer) -> None:
    store.write(Batch(alerts=[alert()]))
    deliver(store, receiver, T0)
    store.write(Batch(alerts=[alert(status="resolved", bucket=at(hours=1))]))
    deliver(store, receiver, at(seconds=10), FIRST, FIRST + timedelta(hours=5))
    assert received(receiver) == []
    assert store.query("SELECT count(*) FROM alert_groups").rows == [(0,)]  # the empty group ended


def test_the_resolution_of_every_notified_firing_is_sent_around_a_cooldown(store: Store, receiver: LocalServer) -> None:
    """The rule engine mutes an episode inside the cooldown and its resolution; every episode it notified is
    resolved at the receiver."""
    engine = RuleEngine(
        [Rule("surge", Threshold("capex", threshold=2), cooldown=timedelta(hours=4), webhooks=("ops",))]
    )
    state: dict[str, Any] = {}
    grouping = Grouping(group_wait=timedelta(0), group_interval=timedelta(minutes=1))
    for hour, value in enumerate([2, 1, 2, 1, 1, 1, 2, 1, 1]):
        bucket = at(hours=hour - 12)  # buckets from midnight
        update = IndicatorUpdate("article_count", "capex", "1h", bucket, float(value))
        store.write(Batch(alerts=engine.apply(state, update)))
        deliver(store, receiver, at(hours=hour), grouping=grouping)
    sent = [(item, status) for _, alerts, _ in received(receiver) for item, status in alerts]
    assert [status for _, status in sent] == ["firing", "resolved", "firing", "resolved"]
    assert len({item for item, _ in sent}) == 4
    statuses = store.query("SELECT status FROM deliveries ORDER BY status").rows
    assert statuses == [("delivered",)] * 4


def test_a_restart_resumes_the_timers_without_an_early_or_a_lost_send(tmp_path: Path, receiver: LocalServer) -> None:
    path = tmp_path / "alerts.duckdb"
    with Store.open(path) as store:
        store.write(Batch(alerts=[alert()]))
        deliver(store, receiver, T0, FIRST)
    with Store.open(path) as store:  # new process objects on the same file
        ticks = [FIRST + timedelta(minutes=5 * n) for n in range(1, 48)]  # up to 3 h 55 min after the send
        assert deliver(store, receiver, *ticks) == 0
    with Store.open(path) as store:
        store.write(Batch(alerts=[alert("1d")]))
        assert deliver(store, receiver, FIRST + timedelta(hours=3, minutes=57)) == 0  # before the next tick
    with Store.open(path) as store:
        assert deliver(store, receiver, FIRST + timedelta(hours=4)) == 1  # the change, on the tick
        assert deliver(store, receiver, FIRST + timedelta(hours=8) - timedelta(minutes=5)) == 0
        assert deliver(store, receiver, FIRST + timedelta(hours=8)) == 1  # repeat: 4 h after the last send
    assert [repeat for _, _, repeat in received(receiver)] == [False, False, True]


KILLED_AFTER_DISPATCH = """
import os, signal, sys
from datetime import datetime, timedelta
from stackwatch.storage.outbox import Grouping, dispatch
from stackwatch.storage.store import Store
store = Store.open(sys.argv[1])
made = dispatch(store.connection, datetime.fromisoformat(sys.argv[2]), Grouping(group_wait=timedelta(seconds=30)))
print(made, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # before any attempt: the notification exists only in DuckDB
"""


def test_a_notification_made_before_a_sigkill_is_sent_after_the_restart_under_its_id(
    tmp_path: Path, receiver: LocalServer
) -> None:
    path = tmp_path / "alerts.duckdb"
    with Store.open(path) as store:
        store.write(Batch(alerts=[alert()]))
        assert dispatch(store.connection, T0, GROUPING) == 0  # the group starts waiting
    for moment in (FIRST - timedelta(seconds=1), FIRST):
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_AFTER_DISPATCH, str(path), moment.isoformat()],
            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": os.getcwd()}, check=False,
        )  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert killed.stdout.split() == ["1"]
    with Store.open(path) as store:
        (made,) = store.query("SELECT id FROM notifications").rows
        assert deliver(store, receiver, FIRST + timedelta(seconds=1)) == 1
    [(webhook_id, alerts, repeat)] = received(receiver)
    assert (webhook_id, alerts, repeat) == (made[0], [(alert().id, "firing")], False)


def test_status_shows_when_an_alert_was_notified_not_its_bucket(store: Store, receiver: LocalServer) -> None:
    store.write(Batch(alerts=[alert("1d"), alert("1h", dynamic="edge")]))
    deliver(store, receiver, T0, FIRST)
    store.write(Batch(alerts=[alert("1d", dynamic="quiet")]))
    last = {item["dynamic"]: item for item in store_summary(store.connection)["last_alerts"]}
    delivered = dict(store.query("SELECT group_key, delivered_at FROM notifications").rows)
    assert last["capex"]["notified_at"] == delivered["alertname=surge,dynamic=capex"]
    assert last["capex"]["bucket_start"] == T0
    assert last["quiet"]["notified_at"] is None  # recorded, not sent yet
    assert last["quiet"]["recorded_at"] is not None


def test_the_intervals_are_read_from_the_settings_with_alertmanagers_defaults() -> None:
    from stackwatch.pipeline.roles.delivery import grouping_from

    default = grouping_from(settings_from_mapping({}).alerting)
    assert (default.group_interval, default.repeat_interval) == (timedelta(minutes=5), timedelta(hours=4))
    chosen = grouping_from(
        settings_from_mapping({"alerting": {"group_interval": "1m", "repeat_interval": "1d"}}).alerting
    )
    assert (chosen.group_interval, chosen.repeat_interval) == (timedelta(minutes=1), timedelta(days=1))


def test_a_zero_interval_is_refused_with_its_key() -> None:
    with pytest.raises(ConfigError, match=r"alerting\.repeat_interval: expected a positive duration"):
        settings_from_mapping({"alerting": {"repeat_interval": "0s"}})


def test_chat_texts_are_sentences_with_the_bucket_as_a_date_and_escaped() -> None:
    hostile = Alert(
        "a1", "decoupling-spike", "warning", "<!channel> *x*", "zscore(article_count)", "1d",
        datetime(2026, 12, 2, tzinfo=UTC), 2.0, 2.0,
        "decoupling zscore(article_count) 2 >= 2 in the 1d bucket starting 2026-12-02T00:00:00+00:00", ("chat",),
    )  # fmt: skip
    assert sentence(hostile) == (
        "The z-score of the article count of <!channel> *x* was 2, at or above the threshold of 2,"
        " on Wednesday 2 December 2026."
    )
    note = Notification("msg_1", "chat", "alertname=decoupling-spike", 0, (AlertRow(hostile),), repeat=True)
    slack = render_body(note, "slack", T0)
    assert "of &lt;!channel&gt; *x* was 2" in json.dumps(slack)  # verbatim mrkdwn: * stays text
    assert slack["blocks"][0]["text"]["text"] == "stackwatch: 1 alert(s) still firing"
    discord = render_body(note, "discord", T0)
    assert discord["embeds"][0]["description"].startswith("The z-score of the article count of \\<!channel\\> \\*x\\*")
    standard = render_body(note, "standard", T0)
    assert standard["data"]["text"] == sentence(hostile)
    assert standard["data"]["message"] == hostile.message  # the machine fields stay
    resolved = Alert(
        "a2", "surge", "critical", "capex", "article_count", "1h", datetime(2026, 12, 2, 14, tzinfo=UTC), 1.0, 5.0,
        "resolved: capex article_count 1 >= 5 in the 1h bucket starting 2026-12-02T14:00:00+00:00", (),
        status="resolved",
    )  # fmt: skip
    assert sentence(resolved) == (
        "Resolved: the article count of capex was 1 in the hour from 14:00 UTC on Wednesday 2 December 2026,"
        " no longer at or above the threshold of 5."
    )


def test_the_status_command_shows_an_alert_not_yet_notified_as_not_sent() -> None:
    from stackwatch.pipeline.cli.ops import render_status

    alert_line = {"notified_at": None, "recorded_at": T0.isoformat(), "bucket_start": T0.isoformat(),
                  "severity": "warning", "rule": "surge", "dynamic": "capex", "message": "m"}  # fmt: skip
    store = {"articles": 1, "dead_letters": 0, "alerts": {"warning": 1}, "deliveries": {}, "last_alerts": [alert_line]}
    text = render_status({"ready": True}, {"roles": ["sink"], "uptime": 1, "store": store})
    assert "  not sent  warning  surge (capex): m" in text.splitlines()


def test_a_message_the_rule_wrote_for_people_is_shown_as_it_is() -> None:
    written = "capex share of coverage was 34.1 % in the hour from 2026-12-02 10:00 UTC, at or above 30 %"
    alert = Alert("a3", "capex-share", "warning", "capex", "share", "1h", T0, 0.341, 0.3, written, ())
    assert sentence(alert) == written


def test_a_notification_carries_the_articles_stored_after_its_alert(store: Store, receiver: LocalServer) -> None:
    """Evidence is assembled when the notification is made: a report of the bucket that reached the store after
    the alert is in it."""
    store.write(Batch(alerts=[alert()]))
    when = at(minutes=5)
    late = Article("late-1", "https://w.test/1", "Hyperscaler raises capex", "", "wire", "rss", when, when)
    store.write(Batch(tagged=[TaggedArticle(late, ("capex",), {"capex": 0.9}, "v1", at(minutes=6))]))
    assert deliver(store, receiver, T0, FIRST) == 1
    (request,) = receiver.received("/hook")
    (sent,) = json.loads(request.body)["data"]["alerts"]
    assert [item["id"] for item in sent["evidence"]["articles"]] == ["late-1"]
    assert sent["evidence"]["model_versions"] == ["v1"]  # the classifier version behind the count
