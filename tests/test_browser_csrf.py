"""What a hostile web page in the analyst's browser can do to the service: nothing, checked in headless Chromium.

A real ``stackwatch sink`` on 127.0.0.1 (no token: the default local set-up) and a real "attacker" HTTP server on
another port of 127.0.0.1, whose pages Chromium opens as ``http://localhost:PORT`` (another site) and as
``http://127.0.0.1:PORT`` (the same site, another origin). The pages try what the hostile-input review did: a
``no-cors`` fetch creating a silence, a form POST, SQL through ``text/plain``, and reading the service's answers
under a name that resolves to 127.0.0.1 (DNS rebinding). Each page writes what it saw into its DOM; the service's
store and log say what reached it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.helpers.api import ApiService, api_service
from tests.helpers.browser import dump_dom
from tests.helpers.http import LocalServer

pytestmark = pytest.mark.integration

SILENCE = {"matchers": ["alertname=~.*"], "duration": "3650d", "comment": "csrf"}
# The page asks for upper('leaked'): the answer LEAKED is in the DOM only if the page read the service's reply.
SQL = "SELECT upper('leaked') AS answer"

FETCH_PAGE = """<!doctype html>
<html><body><pre id="out">running</pre><script>
const target = "TARGET";
const silence = JSON.stringify(SILENCE);
const sql = JSON.stringify({sql: SQL});
const lines = [];
async function attempt(name, run) {
  try { lines.push(name + ": " + await run()); } catch (error) { lines.push(name + ": failed " + error.name); }
}
const post = (path, mode, body, type) => fetch(target + path, {
  method: "POST", mode: mode, body: body, headers: type ? {"Content-Type": type} : {}});
(async () => {
  await attempt("silence no-cors text/plain", async () => (await post("/api/silences", "no-cors", silence,
    "text/plain")).type);
  await attempt("silence no-cors no type", async () => (await post("/api/silences", "no-cors", new Blob([silence]),
    null)).type);
  await attempt("silence cors text/plain", async () => (await post("/api/silences", "cors", silence,
    "text/plain")).status);
  await attempt("sql no-cors text/plain", async () => (await post("/api/sql", "no-cors", sql, "text/plain")).type);
  await attempt("sql read text/plain", async () => await (await post("/api/sql", "cors", sql, "text/plain")).text());
  await attempt("sql read get", async () => await (await fetch(target + "/api/sql?q=" + encodeURIComponent(SQL)))
    .text());
  document.getElementById("out").textContent = lines.join("\\n") + "\\ndone";
})();
</script></body></html>
"""

FORM_PAGE = """<!doctype html>
<html><body><form id="attack" method="POST" action="TARGET/api/silences" enctype="ENCTYPE">
<input type="hidden" name='NAME' value='"}'></form>
<script>document.getElementById("attack").submit();</script></body></html>
"""


def page(template: str, target: str, **values: str) -> str:
    text = template.replace("TARGET", target).replace("SILENCE", json.dumps(SILENCE)).replace("SQL", json.dumps(SQL))
    for name, value in values.items():
        text = text.replace(name, value)
    return text


@pytest.fixture(scope="module")
def api(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiService]:
    with api_service(tmp_path_factory.mktemp("browser-csrf"), broker) as running:
        yield running


@pytest.fixture(scope="module")
def attacker() -> Iterator[LocalServer]:
    server = LocalServer()
    yield server
    server.close()


def refusals(api: ApiService, method: str, path: str) -> list[str]:
    """The service's log lines for refused ``method path`` requests."""
    return [line for line in api.service.output.splitlines() if f"web: refused {method} {path} (" in line]


@pytest.mark.parametrize("site", ["localhost", "127.0.0.1"], ids=["another-site", "same-site-another-port"])
def test_a_page_from_another_origin_cannot_create_a_silence_or_read_sql_with_fetch(
    api: ApiService, attacker: LocalServer, site: str
) -> None:
    attacker.route(f"/fetch-{site}.html", page(FETCH_PAGE, api.base), headers={"Content-Type": "text/html"})
    silences_refused = len(refusals(api, "POST", "/api/silences"))
    sql_refused = len(refusals(api, "POST", "/api/sql")) + len(refusals(api, "GET", "/api/sql"))

    dom = dump_dom(f"http://{site}:{attacker.port}/fetch-{site}.html")

    out = dom.split('<pre id="out">', 1)[1].split("</pre>", 1)[0]
    assert out.endswith("done"), dom
    seen = dict(line.split(": ", 1) for line in out.splitlines()[:-1])
    # the no-cors requests went out (an opaque answer), the others' answers were not for the page to read
    assert seen["silence no-cors text/plain"] == seen["silence no-cors no type"] == "opaque"
    assert seen["sql no-cors text/plain"] == "opaque"
    assert seen["silence cors text/plain"] == seen["sql read text/plain"] == seen["sql read get"] == "failed TypeError"
    assert "LEAKED" not in dom
    # and the service refused each of them before any view ran
    assert api.silences() == []
    assert len(refusals(api, "POST", "/api/silences")) == silences_refused + 3
    assert len(refusals(api, "POST", "/api/sql")) + len(refusals(api, "GET", "/api/sql")) == sql_refused + 3
    assert "(403): cross-" in refusals(api, "POST", "/api/silences")[-1]


@pytest.mark.parametrize("enctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_form_on_another_site_cannot_post_a_silence(api: ApiService, attacker: LocalServer, enctype: str) -> None:
    # with text/plain, NAME=VALUE is the JSON object {"matchers": ..., "comment": "="}: the classic JSON CSRF
    name = json.dumps({**SILENCE, "comment": ""})[: -len('"}')]
    slug = enctype.split("/")[1]
    attacker.route(f"/form-{slug}.html", page(FORM_PAGE, api.base, ENCTYPE=enctype, NAME=name),
                   headers={"Content-Type": "text/html"})  # fmt: skip

    dom = dump_dom(f"http://localhost:{attacker.port}/form-{slug}.html")

    assert "cross-origin request refused (Origin 'http://localhost:" in dom, dom  # the answer the form navigated to
    assert api.silences() == []


def test_a_rebinding_page_reads_nothing_under_its_own_name(api: ApiService) -> None:
    rebound = ("--host-resolver-rules=MAP rebound.test 127.0.0.1",)
    for path in (f"/api/sql?q={SQL}", "/api/silences", "/dashboard/"):
        dom = dump_dom(f"http://rebound.test:{api.port}{path}", *rebound, budget_ms=2000)
        assert "Host 'rebound.test:" in dom, dom
        assert "is not a name of this service" in dom
        assert "LEAKED" not in dom
        assert "Stackwatch" not in dom  # no dashboard
    # under its own name the same browser reads the answer: the refusal above is the Host check, nothing else
    assert "LEAKED" in dump_dom(f"{api.base}/api/sql?q={SQL}", budget_ms=2000)


def test_a_form_on_another_site_cannot_correct_an_articles_labels(api: ApiService, attacker: LocalServer) -> None:
    # the dashboard's own forms post application/x-www-form-urlencoded: a copy on another site is refused
    form = FORM_PAGE.replace("TARGET/api/silences", f"{api.base}/dashboard/article/a1/labels")
    form = form.replace("ENCTYPE", "application/x-www-form-urlencoded").replace("'NAME'", "'add'")
    attacker.route("/form-labels.html", form, headers={"Content-Type": "text/html"})

    dom = dump_dom(f"http://localhost:{attacker.port}/form-labels.html")

    assert "cross-origin request refused (Origin 'http://localhost:" in dom, dom
