"""Silences while the service runs: the CLI goes through the service's API, the service writes with its one writer.

A real broker, a real ``stackwatch`` process and a real webhook receiver. The rule fires from observations sent to
the observations topic, as the classify agent sends them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from click.testing import CliRunner, Result

from stackwatch.pipeline.cli.main import cli
from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.pipeline.kafka.codec import encode
from stackwatch.pipeline.roles.agents.common import RULES_KEY
from stackwatch.signals.messages import Observation, Observations
from tests.helpers.http import LocalServer
from tests.helpers.service import Service, pipeline_config, write_config

pytestmark = pytest.mark.integration

NOON = datetime(2026, 5, 1, 12, tzinfo=UTC)
RULE = {"name": "capex-surge", "kind": "threshold", "dynamic": "capex", "op": ">=", "value": 3, "webhooks": ["ops"]}
TOKEN_ENV = "STACKWATCH_SILENCE_TEST_TOKEN"
TOKEN = "silence-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AUTH_JSON = {**AUTH, "Content-Type": "application/json"}  # a raw body must say it is JSON (else 415)
GOOD = {"matchers": ["alertname=capex-surge"], "duration": "2h"}


def capex_articles(hour: int, count: int) -> list[Observation]:
    """``count`` capex articles in the bucket ``hour`` hours after noon."""
    return [
        Observation(f"a-{hour}-{n}", "wire", NOON + timedelta(hours=hour, minutes=n), ("capex",)) for n in range(count)
    ]


def send(broker: str, topic: str, items: list[Observation]) -> None:
    """One observation batch per article, as the classify agent would send them."""

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        try:
            for item in items:
                await producer.send_and_wait(topic, encode(Observations((item,))), key=RULES_KEY)
        finally:
            await producer.stop()

    asyncio.run(go())


def create_topic(broker: str, topic: str) -> None:
    """With the service's partition count (1), before a producer auto-creates it with the broker's default:
    Faust requires a table's source topic and changelog to have as many partitions."""

    async def go() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()

    asyncio.run(go())


def stackwatch(config: Path, *args: str, env: dict[str, str | None] | None = None) -> Result:
    """``stackwatch ARGS -c CONFIG``, as an operator types it."""
    return CliRunner().invoke(cli, [*args, "-c", str(config)], env=env)


def table(result: Result) -> list[list[str]]:
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()[2:]  # after the header and its rule
    return [line.split() for line in lines if line.strip() and not line.startswith("(")]


@pytest.fixture
def running(broker: str, unique: str, http_server: LocalServer, tmp_path: Path) -> Iterator[tuple[Service, Path]]:
    """``stackwatch up`` with one rule and one webhook, its web API on the port its configuration names."""
    http_server.route("/hook", "ok")
    web_port = free_port()
    config = pipeline_config(
        tmp_path,
        [broker],
        unique,
        kafka={"partitions": 1},
        web={"host": "127.0.0.1", "port": web_port},
        classifier={"backend": "keyword"},
        webhooks=[{"name": "ops", "url": http_server.url("/hook")}],
        rules=[RULE],
        alerting={"group_wait": "1s", "group_interval": "1s"},
        indicators={"stream_retention": "3650d"},  # NOON lies months back
    )
    create_topic(broker, f"{unique}.observations")
    service = Service(config, web_port=web_port)
    try:
        service.wait_until("SELECT 1", lambda rows: rows == [[1]])
        yield service, config
    finally:
        code = service.stop()
    assert code == 0, service.output[-4000:]
    assert "Traceback" not in service.output


def test_a_silence_added_through_the_cli_mutes_the_running_service_until_it_is_expired(
    running: tuple[Service, Path], broker: str, unique: str, http_server: LocalServer
) -> None:
    service, config = running
    added = stackwatch(config, "silence", "add", "alertname=capex-surge", "dynamic=~cap.*", "--for", "2h",
                       "--comment", "known story")  # fmt: skip
    assert added.exit_code == 0, added.output
    silence_id = added.output.strip()
    assert silence_id.startswith("sil_")
    (listed,) = table(stackwatch(config, "silence", "list"))
    assert listed[:3] == [silence_id, "alertname=capex-surge", "dynamic=~cap.*"]
    assert listed[4] == "active"
    assert " ".join(listed).endswith("known story")

    send(broker, f"{unique}.observations", capex_articles(0, 4))  # the rule starts to hold at 3: it fires
    service.wait_until("SELECT status FROM deliveries", lambda rows: rows == [["silenced"]])
    assert http_server.received("/hook") == []
    shown = stackwatch(config, "alerts")
    assert shown.exit_code == 0, shown.output
    assert "capex-surge" in shown.output
    assert "ops:silenced(0)" in shown.output
    assert service.sql("SELECT last_error FROM deliveries") == [[f"silenced by {silence_id}"]]

    dashboard = httpx.get(f"http://127.0.0.1:{service.web_port}/dashboard/", timeout=30).text
    assert silence_id in dashboard
    assert "known story" in dashboard

    expired = stackwatch(config, "silence", "expire", silence_id)
    assert expired.exit_code == 0, expired.output
    assert expired.output.strip() == f"expired {silence_id}"
    assert table(stackwatch(config, "silence", "list")) == []
    assert silence_id not in httpx.get(f"http://127.0.0.1:{service.web_port}/dashboard/", timeout=30).text
    (old,) = table(stackwatch(config, "silence", "list", "--all"))
    assert (old[0], old[4]) == (silence_id, "expired")
    again = stackwatch(config, "silence", "expire", silence_id)
    assert again.exit_code != 0
    assert "no active silence" in again.output

    (fired,) = http_server.wait_for("/hook", timeout=120)  # unsilenced and still firing: sent at the next flush
    assert json.loads(fired.body)["type"] == "alert.fired"
    send(broker, f"{unique}.observations", capex_articles(1, 1) + capex_articles(2, 1))  # it stops holding: resolved
    hook = http_server.wait_for("/hook", count=2, timeout=120)[1]
    body = json.loads(hook.body)
    assert (body["type"], body["data"]["rule"]) == ("alert.resolved", "capex-surge")
    assert service.sql("SELECT status FROM deliveries ORDER BY status") == [["delivered"], ["delivered"]]


def test_a_silence_no_running_rule_can_match_is_added_with_the_services_warning(
    running: tuple[Service, Path],
) -> None:
    service, config = running
    elsewhere = yaml.safe_load(config.read_text(encoding="utf-8"))
    other = write_config(config.with_name("no-rules.yaml"), {**elsewhere, "rules": []})  # the same service
    added = stackwatch(other, "silence", "add", "alertname=capex-surg", "--for", "1h")
    assert added.exit_code == 0, added.output
    assert added.stdout.strip().startswith("sil_")
    assert added.stderr.startswith(  # the service's rules, not this file's (none)
        "warning: no configured rule's alerts match alertname=capex-surg (did you mean alertname=capex-surge?);"
        " the configured rules: capex-surge."
    )
    api = f"http://127.0.0.1:{service.web_port}/api/silences"
    typo = httpx.post(api, json={"matchers": ["alertname=capexsurge"], "duration": "1h"}, timeout=10)
    assert typo.status_code == 201, typo.text
    (warning,) = typo.json()["warnings"]
    assert "(did you mean alertname=capex-surge?)" in warning
    fine = httpx.post(api, json={"matchers": ["alertname=capex-surge"], "duration": "1h"}, timeout=10)
    assert (fine.status_code, fine.json()["warnings"]) == (201, [])
    stored = httpx.get(api, timeout=10).json()
    assert sorted(item["matchers"][0] for item in stored) == [  # warned of, stored all the same
        "alertname=capex-surg",
        "alertname=capex-surge",
        "alertname=capexsurge",
    ]


def test_a_bad_silence_from_the_cli_is_refused_with_the_services_reason(running: tuple[Service, Path]) -> None:
    service, config = running
    bad = stackwatch(config, "silence", "add", "alertname=x", "--for", "99999d")
    assert bad.exit_code != 0
    assert "HTTP 400" in bad.output
    assert "duration" in bad.output
    assert service.sql("SELECT count(*) FROM silences") == [[0]]


# -- the API under hostile requests, on a service that wants a token --------------------------------------------------


@pytest.fixture(scope="module")
def guarded(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Service]]:
    """The sink role alone (it holds the store and serves the API), with ``web.token_env`` set."""
    directory = tmp_path_factory.mktemp("guarded")
    web_port = free_port()
    name = f"t{uuid.uuid4().hex[:10]}"
    config = pipeline_config(
        directory, [broker], name, web={"host": "127.0.0.1", "port": web_port, "token_env": TOKEN_ENV}
    )
    service = Service(config, command="sink", web_port=web_port, env={TOKEN_ENV: TOKEN})
    base = f"http://127.0.0.1:{web_port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{base}/api/silences", headers=AUTH, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert service.process.poll() is None, service.output[-4000:]
            time.sleep(0.5)
        yield base, config, service
    finally:
        code = service.stop()
    assert code == 0, service.output[-4000:]
    assert "Traceback" not in service.output


def error_of(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    message = response.json()["error"]
    assert isinstance(message, str)
    return message


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/silences"), ("POST", "/api/silences"), ("DELETE", "/api/silences/sil_x")]
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["no-token", "wrong-token"])
def test_silences_need_the_token(
    guarded: tuple[str, Path, Service], method: str, path: str, headers: dict[str, str]
) -> None:
    base, _, _ = guarded
    response = httpx.request(method, base + path, json=GOOD, headers=headers, timeout=10)
    assert response.status_code == 401
    assert "token" in error_of(response)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "request body is not JSON"),
        (b'{"matchers": ["a=b"], "duration": NaN}', "request body is not JSON"),
        (b"[]", "expected a JSON object"),
        (b'"alertname=x"', "expected a JSON object"),
        (b'{"matchers": "alertname=x", "duration": "2h"}', "matchers: expected a non-empty list"),
        (b'{"matchers": [], "duration": "2h"}', "matchers: expected a non-empty list"),
        (b'{"duration": "2h"}', "matchers: expected a non-empty list"),
        (b'{"matchers": [42], "duration": "2h"}', "matchers[0]: expected a string, got int"),
        (b'{"matchers": ["a=b", null], "duration": "2h"}', "matchers[1]: expected a string, got NoneType"),
        (b'{"matchers": ["no matcher here"], "duration": "2h"}', "matchers[0]: not a matcher"),
        (b'{"matchers": ["dynamic=~(cap"], "duration": "2h"}', "matchers[0]: matcher 'dynamic=~(cap': bad regular"),
        (b'{"matchers": ["a=b"]}', "duration: required"),
        (b'{"matchers": ["a=b"], "duration": "forever"}', "duration: expected a duration"),
        (b'{"matchers": ["a=b"], "duration": "0s"}', "duration: expected a positive duration"),
        (b'{"matchers": ["a=b"], "duration": -60}', "duration: expected a positive duration"),
        (b'{"matchers": ["a=b"], "duration": true}', "duration: expected a duration"),
        (b'{"matchers": ["a=b"], "duration": ["2h"]}', "duration: expected a duration"),
        (b'{"matchers": ["a=b"], "duration": 1e400}', "duration: at most 3650d"),
        (b'{"matchers": ["a=b"], "duration": "99999999999d"}', "duration: at most 3650d"),
        (b'{"matchers": ["a=b"], "duration": "2h", "comment": 5}', "comment: expected a string, got int"),
        (b'{"matchers": ["a=b"], "duration": "2h", "created_by": {}}', "created_by: expected a string, got dict"),
        (b'{"matchers": ["a=b"], "duration": "2h", "matcher": []}', "unknown field(s) 'matcher'"),
    ],
)
def test_a_bad_silence_is_a_400_that_names_the_field(
    guarded: tuple[str, Path, Service], body: bytes, message: str
) -> None:
    base, _, _ = guarded
    response = httpx.post(f"{base}/api/silences", content=body, headers=AUTH_JSON, timeout=10)
    assert response.status_code == 400
    assert error_of(response).startswith(message)


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("DELETE", "/api/silences/sil_000000000000", 404, "no active silence 'sil_000000000000'"),
        ("DELETE", "/api/silences/%27%3B%20DROP%20TABLE%20silences", 404, "no active silence \"'; DROP TABLE"),
        ("GET", "/api/silences?all=maybe", 400, "all: expected 1 or 0"),
        ("GET", "/api/alerts?limit=-1", 400, "limit: expected a whole number"),
        ("GET", "/api/alerts?limit=lots", 400, "limit: expected a whole number"),
    ],
)
def test_unknown_silences_and_bad_parameters_are_refused(
    guarded: tuple[str, Path, Service], method: str, path: str, status: int, message: str
) -> None:
    base, _, _ = guarded
    response = httpx.request(method, base + path, headers=AUTH, timeout=10)
    assert response.status_code == status
    assert error_of(response).startswith(message)


def test_an_oversized_body_and_a_wrong_method_are_refused(guarded: tuple[str, Path, Service]) -> None:
    base, _, _ = guarded
    huge = json.dumps({**GOOD, "comment": "x" * 100_000})
    assert httpx.post(f"{base}/api/silences", content=huge, headers=AUTH_JSON, timeout=10).status_code == 413
    long_comment = json.dumps({**GOOD, "comment": "x" * 5000})
    response = httpx.post(f"{base}/api/silences", content=long_comment, headers=AUTH_JSON, timeout=10)
    assert response.status_code == 400
    assert error_of(response) == "comment: longer than 4096 characters"
    assert httpx.put(f"{base}/api/silences", json=GOOD, headers=AUTH, timeout=10).status_code == 405


def test_after_hostile_requests_the_api_still_adds_lists_and_expires(guarded: tuple[str, Path, Service]) -> None:
    base, _, service = guarded
    created = httpx.post(f"{base}/api/silences", json={**GOOD, "comment": "<b>known</b>"}, headers=AUTH, timeout=10)
    assert created.status_code == 201, created.text
    silence: dict[str, Any] = created.json()
    assert silence["matchers"] == ["alertname=capex-surge"]
    assert (silence["state"], silence["comment"], silence["created_by"]) == ("active", "<b>known</b>", "api")
    listed = httpx.get(f"{base}/api/silences", headers=AUTH, timeout=10).json()
    assert silence["id"] in [item["id"] for item in listed]
    dashboard = httpx.get(f"{base}/dashboard/", headers=AUTH, timeout=30).text
    assert silence["id"] in dashboard
    assert "&lt;b&gt;known&lt;/b&gt;" in dashboard  # the comment is text on the page
    assert "<b>known" not in dashboard
    gone = httpx.delete(f"{base}/api/silences/{silence['id']}", headers=AUTH, timeout=10)
    assert (gone.status_code, gone.json()["state"]) == (200, "expired")
    assert httpx.delete(f"{base}/api/silences/{silence['id']}", headers=AUTH, timeout=10).status_code == 404
    assert silence["id"] not in [item["id"] for item in httpx.get(f"{base}/api/silences", headers=AUTH).json()]
    everything = httpx.get(f"{base}/api/silences?all=1", headers=AUTH, timeout=10).json()
    assert [item["state"] for item in everything if item["id"] == silence["id"]] == ["expired"]
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    assert service.process.poll() is None


def test_the_cli_sends_the_token_and_shows_the_services_refusal(guarded: tuple[str, Path, Service]) -> None:
    _, config, _ = guarded
    added = stackwatch(config, "silence", "add", "severity=warning", "--for", "30m", env={TOKEN_ENV: TOKEN})
    assert added.exit_code == 0, added.output
    listed = stackwatch(config, "silence", "list", env={TOKEN_ENV: TOKEN})
    assert added.stdout.strip() in listed.output
    wrong = stackwatch(config, "silence", "list", env={TOKEN_ENV: "wrong"})
    assert wrong.exit_code != 0
    assert "HTTP 401: missing or wrong token" in wrong.output
    unset = stackwatch(config, "silence", "expire", added.stdout.strip(), env={TOKEN_ENV: None})
    assert unset.exit_code != 0
    assert "HTTP 401: missing or wrong token" in unset.output
    assert f"(web.token_env: environment variable {TOKEN_ENV} is not set)" in unset.output


def test_with_no_service_listening_the_cli_uses_the_file(tmp_path: Path, broker: str, unique: str) -> None:
    config = pipeline_config(tmp_path, [broker], unique, web={"host": "127.0.0.1", "port": free_port()})
    added = stackwatch(config, "silence", "add", "alertname=capex-surge", "--for", "1h")
    assert added.exit_code == 0, added.output
    assert "the configured rules: none." in added.stderr  # judged here, by this configuration
    (listed,) = table(stackwatch(config, "silence", "list"))
    assert listed[0] == added.stdout.strip()
    assert stackwatch(config, "silence", "expire", listed[0]).exit_code == 0
    assert table(stackwatch(config, "silence", "list")) == []
