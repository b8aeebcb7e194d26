"""Entity kinds and roles: the built-in gazetteer, the fixed sentences of ``entity_sentences.py``, what the store
keeps per article entity, ``rebuild`` applying a configured entity to history, and the dashboard showing roles.

Real DuckDB files and a real web app on 127.0.0.1 for the store and the pages; the matching is pure and is tested
with plain values.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from stackwatch.pipeline.cli.main import cli
from stackwatch.settings import settings_from_mapping
from stackwatch.settings.entities import EntitySettings, gazetteer_from
from stackwatch.signals.entities import DEFAULT_ENTITIES, KINDS, Entity, Gazetteer, load_entities
from stackwatch.signals.entity_roles import ROLES, entity_roles, match_entities
from stackwatch.signals.messages import Article, TaggedArticle
from stackwatch.storage.dashboard import Range, dynamic_detail, entity_detail
from stackwatch.storage.derive import Derivation
from stackwatch.storage.store import Batch, Store
from tests.entity_sentences import CASES, HELD_OUT, HELD_OUT_2
from tests.helpers.web_app import served_web

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
HOSTILE = "<b>Evil & Co</b>"


def expected(spec: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """``"Meta=company:buyer; NVIDIA=company"`` as {entity: (kind, roles)}."""
    found = {}
    for part in spec.split("; "):
        name, rest = part.split("=")
        kind, _, roles = rest.partition(":")
        found[name] = (kind, tuple(sorted(roles.split("+"))) if roles else ())
    return found


def judged(gazetteer: Gazetteer, text: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {match.entity: (match.kind, match.roles) for match in match_entities(gazetteer, text)}


# -- the gazetteer -----------------------------------------------------------------------------------------------


def test_the_built_in_gazetteer_covers_the_cast_with_a_kind_each_and_owners_it_holds() -> None:
    by_name = {entity.name: entity for entity in DEFAULT_ENTITIES}
    assert len(by_name) == len(DEFAULT_ENTITIES) >= 100
    assert {entity.kind for entity in DEFAULT_ENTITIES} == set(KINDS)
    for name in ("Microsoft", "Amazon", "Google", "CoreWeave", "Nebius", "NVIDIA", "AMD", "OpenAI", "Anthropic"):
        assert by_name[name].kind == "company"
    for name in ("Saudi Arabia", "United Arab Emirates", "France", "Japan", "India", "United Kingdom"):
        assert by_name[name].kind == "country"
    assert {by_name[name].kind for name in ("PIF", "MGX", "Mubadala")} == {"fund"}
    assert {by_name[name].kind for name in ("European Commission", "EuroHPC", "METI", "Pentagon")} == {
        "government_body"
    }
    for entity in DEFAULT_ENTITIES:
        assert entity.owner is None or entity.owner in by_name, entity
    aliases = [alias.casefold() for entity in DEFAULT_ENTITIES for alias in entity.aliases]
    assert len(aliases) == len(set(aliases))  # one alias, one entity


def test_names_match_at_word_boundaries_in_any_script_and_side_by_side() -> None:
    gazetteer = Gazetteer([*DEFAULT_ENTITIES, Entity("Ünïcode Labs", ("ünïcode labs",), ("ÜL",))])
    found = [(m.start, m.end, m.entity) for m in gazetteer.mentions("NVIDIA AMD,Intel; ÜNÏCODE LABS and ÜL.")]
    assert found == [
        (0, 6, "NVIDIA"),
        (7, 10, "AMD"),
        (11, 16, "Intel"),
        (18, 30, "Ünïcode Labs"),
        (35, 37, "Ünïcode Labs"),
    ]
    assert gazetteer.find("ÜNVIDIA nvidiaé _NVIDIA NVIDIA3 3NVIDIA naïve") == {}  # letters, digits, "_" join words
    assert gazetteer.find("U.S. firms; the US's; Lambda, Inc. and together.ai") == {
        "United States": 2,
        "Lambda": 1,
        "Together AI": 1,
    }
    assert gazetteer.find("Mistral AI, or Mistral") == {"Mistral AI": 2}  # the longer name where two overlap


def test_a_gazetteer_document_that_is_wrong_says_which_entry_and_why() -> None:
    with pytest.raises(ValueError, match=r"g\.json: entities\[1\] \(Bad\): kind 'agency' is not one of company"):
        load_entities('{"entities": [{"name": "Ok"}, {"name": "Bad", "kind": "agency"}]}', "g.json")
    with pytest.raises(ValueError, match=r"g\.json: expected a JSON object with an 'entities' list"):
        load_entities("[]", "g.json")


def test_configured_entities_add_replace_and_drop_built_in_ones() -> None:
    gazetteer = gazetteer_from(
        [
            EntitySettings(name="Etched", aliases=["etched ai"], exact=["Etched"]),
            EntitySettings(name="Sohu", exact=["Sohu"], kind="chip_or_product", owner="Etched"),
            EntitySettings(name="Akamai", enabled=False),
        ]
    )
    assert gazetteer.find("Etched ships Sohu; Akamai watches") == {"Etched": 2, "Sohu": 1}
    assert gazetteer.kind("Sohu") == "chip_or_product"
    with pytest.raises(ValueError, match="kind"):
        EntitySettings(name="DoD", kind="agency")  # type: ignore[arg-type]


# -- kinds and roles on the fixed sentences ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "spec"), CASES, ids=[text[:50] for text, _ in CASES])
def test_kinds_and_roles_of_a_fixed_sentence(text: str, spec: str) -> None:
    assert judged(Gazetteer(), text) == expected(spec)


def test_the_fixed_sentences_are_enough_and_cover_every_role_and_kind() -> None:
    assert len(CASES) >= 40
    specs = [expected(spec) for _, spec in CASES]
    assert {role for spec in specs for _, roles in spec.values() for role in roles} == set(ROLES)
    assert {kind for spec in specs for kind, _ in spec.values()} == set(KINDS)
    assert sum(not any(roles for _, roles in spec.values()) for spec in specs) >= 10  # sentences without a role


@pytest.mark.parametrize("held_out", [HELD_OUT, HELD_OUT_2], ids=["held_out", "held_out_2"])
def test_most_judgements_on_sentences_the_patterns_were_not_adjusted_to_are_right(
    held_out: tuple[tuple[str, str], ...],
) -> None:
    """Held-out sentences measure the patterns rather than fit them (docs/entities.md has the figures): 45 of 47
    and 43 of 46 judgements when each set was written. The misses are wordings the patterns do not know ("is
    reportedly losing OpenAI business", "swapped out Nvidia chips", "stop relying solely on Microsoft")."""
    gazetteer = Gazetteer()
    right = total = 0
    for text, spec in held_out:
        want, got = expected(spec), judged(gazetteer, text)
        total += len(want.keys() | got.keys())
        right += sum(want.get(name) == got.get(name) for name in want.keys() | got.keys())
    assert len(held_out) >= 15
    assert right / total >= 0.9


def test_roles_are_the_same_for_the_same_text_and_none_for_a_sentence_too_long_to_read() -> None:
    gazetteer = Gazetteer()
    text = "Meta shifts inference from NVIDIA to its own MTIA chips."
    assert entity_roles(text, gazetteer.mentions(text), gazetteer.by_name) == {
        "Meta": ("buyer",),
        "NVIDIA": ("displaced_vendor",),
    }
    rambling = "Meta shifts inference from NVIDIA " + "and so on " * 120 + "to its own MTIA chips"
    assert entity_roles(rambling, gazetteer.mentions(rambling), gazetteer.by_name) == {}


# -- the store ---------------------------------------------------------------------------------------------------


def tagged(key: str, title: str, labels: Sequence[str] = ("decoupling",), hours: int = 2) -> TaggedArticle:
    at = NOW - timedelta(hours=hours)
    article = Article(key, f"https://x.test/{key}", title, "", "wire", "rss", at, at)
    return TaggedArticle(article, tuple(labels), dict.fromkeys(labels, 0.9), "v1", at)


ARTICLES = [
    tagged("a1", "Meta shifts inference from NVIDIA to its own MTIA chips"),
    tagged("a2", "Microsoft moves workloads away from Nvidia to its Maia accelerators", hours=3),
    tagged("a3", "Google builds its own TPU pods; NVIDIA still sells to Google Cloud", hours=4),
    tagged("a4", "NVIDIA and Meta sign a supply deal", ("capex",), hours=5),
    tagged("a5", f"Evilco drops NVIDIA for {HOSTILE} chips", hours=6),
]


def entity_rows(store: Store) -> list[tuple[str, str, int, str, list[str]]]:
    found = store.query(
        "SELECT article_id, entity, mentions, kind, roles FROM article_entities ORDER BY article_id, entity"
    ).rows
    return [(str(a), str(e), int(m), str(k), list(r)) for a, e, m, k, r in found]


def test_the_store_keeps_one_row_per_article_entity_with_its_kind_and_roles(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        store.write(Batch(tagged=ARTICLES[:4]))
        rows = entity_rows(store)
        assert ("a1", "Meta", 2, "company", ["buyer"]) in rows  # "Meta" and its MTIA
        assert ("a1", "NVIDIA", 1, "company", ["displaced_vendor"]) in rows
        assert ("a1", "MTIA", 1, "chip_or_product", []) in rows
        assert [row for row in rows if row[0] == "a4"] == [
            ("a4", "Meta", 1, "company", []),
            ("a4", "NVIDIA", 1, "company", []),
        ]
        # entity indicators count articles, whatever roles they give: NVIDIA is in four, once each
        counted = store.query(
            "SELECT sum(value) FROM indicators WHERE indicator = 'article_count' AND entity = 'NVIDIA'"
            " AND dynamic = '*' AND source = '*' AND bucket_width = '1d'"
        ).rows
        assert counted == [(4.0,)]


def test_indicators_are_the_same_whether_or_not_articles_give_roles(tmp_path: Path) -> None:
    """The same entities in every article, with and without the words that give roles: the same indicators."""
    plain = [tagged(f"p{n}", f"Meta and NVIDIA, note {n}", hours=n + 1) for n in range(6)]
    roled = [tagged(f"p{n}", f"Meta moves away from NVIDIA, note {n}", hours=n + 1) for n in range(6)]
    select = (
        "SELECT * EXCLUDE (updated_at) FROM indicators"
        " WHERE indicator IN ('article_count', 'share', 'source_count', 'score_sum') ORDER BY ALL"
    )
    with Store.open(tmp_path / "plain.duckdb") as store:
        store.write(Batch(tagged=plain))
        without = store.query(select).rows
        assert {tuple(row[4]) for row in entity_rows(store)} == {()}
    with Store.open(tmp_path / "roled.duckdb") as store:
        store.write(Batch(tagged=roled))
        assert store.query(select).rows == without
        assert {tuple(row[4]) for row in entity_rows(store)} == {("buyer",), ("displaced_vendor",)}


def test_rebuild_applies_an_entity_added_to_the_config_to_stored_history(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    before = Derivation(gazetteer=gazetteer_from([]))
    with Store.open(path, derivation=before) as store:
        store.write(Batch(tagged=ARTICLES))
        assert "Evilco" not in {row[1] for row in entity_rows(store)}
    configured = gazetteer_from([EntitySettings(name="Evilco", aliases=["evilco"]), EntitySettings(name="Akamai")])
    steps: list[tuple[int, int]] = []
    with Store.open(path, derivation=Derivation(gazetteer=configured)) as store:
        store.rebuild(lambda done, total: steps.append((done, total)))
        assert ("a5", "Evilco", 1, "company", ["buyer"]) in entity_rows(store)
        assert ("a5", "NVIDIA", 1, "company", ["displaced_vendor"]) in entity_rows(store)
        counted = store.query(
            "SELECT sum(value) FROM indicators WHERE indicator = 'article_count' AND entity = 'Evilco'"
            " AND dynamic = 'decoupling' AND bucket_width = '1d'"
        ).rows
        assert counted == [(1.0,)]
    assert steps
    assert steps[-1][0] == steps[-1][1]


def test_a_stored_store_gets_kinds_and_roles_when_first_opened_after_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        store.write(Batch(tagged=ARTICLES[:1]))
        store.connection.execute("UPDATE article_entities SET kind = 'company', roles = []")
        store.connection.execute("INSERT INTO pending_rebuild VALUES ('schema 8: as a store from before it')")
    with Store.open(path) as store:
        assert ("a1", "NVIDIA", 1, "company", ["displaced_vendor"]) in entity_rows(store)
        assert ("a1", "MTIA", 1, "chip_or_product", []) in entity_rows(store)


def test_a_title_only_article_keeps_entities_a_rematch_cannot_see(tmp_path: Path) -> None:
    """Retention may drop the body an article was matched on; a rebuild does not lose what it cannot re-read."""
    path = tmp_path / "s.duckdb"
    bodied = Article("b1", "https://x.test/b1", "A chip story", "", "wire", "rss", NOW, NOW, body="Groq raised money")
    with Store.open(path) as store:
        store.write(Batch(tagged=[TaggedArticle(bodied, ("capex",), {"capex": 0.9}, "v1", NOW)]))
        assert [row[1] for row in entity_rows(store)] == ["Groq"]
        store.connection.execute("UPDATE articles SET body = NULL")
        store.rebuild()
        assert [row[1] for row in entity_rows(store)] == ["Groq"]


# -- the dashboard -----------------------------------------------------------------------------------------------


def test_the_displaced_vendor_is_not_a_driver_of_decoupling(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        store.write(Batch(tagged=ARTICLES[:4]))
        view = dynamic_detail(store.connection, "decoupling", Range(7, "1d"))
        assert [e.entity for e in view.displaced] == ["NVIDIA"]
        assert view.displaced[0].displaced_vendor == 2
        drivers = [(e.entity, e.buyer, e.articles - e.displaced_vendor) for e in view.drivers]
        assert drivers[:3] == [("Google", 1, 1), ("Meta", 1, 1), ("Microsoft", 1, 1)]
        assert ("NVIDIA", 0, 1) in drivers  # named in a3 without a role; its two displaced articles do not count
        nvidia = entity_detail(store.connection, "NVIDIA", Range(7, "1d"))
        assert nvidia.kind == "company"
        roles = {dynamic: (r.articles, r.buyer, r.displaced_vendor) for dynamic, r in nvidia.roles}
        assert roles == {"*": (4, 0, 2), "capex": (1, 0, 0), "decoupling": (3, 0, 2)}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    """A sink runtime's web app over a store holding :data:`ARTICLES`, with a hostile entity name configured."""
    path = tmp_path / "stackwatch.duckdb"
    entities = [{"name": HOSTILE, "aliases": [HOSTILE.casefold()]}, {"name": "Evilco", "aliases": ["evilco"]}]
    settings = settings_from_mapping({"storage": {"path": str(path)}, "entities": entities}, environ={})
    with Store.open(path, derivation=Derivation(gazetteer=gazetteer_from(settings.entities))) as store:
        store.write(Batch(tagged=ARTICLES))
    async with served_web(settings, store=path) as base:
        yield base


async def test_the_dynamic_entity_and_article_pages_show_roles_with_names_escaped(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        dynamic = (await client.get("/dashboard/dynamic/decoupling?days=7&width=1d")).text
        nvidia = (await client.get("/dashboard/entity/NVIDIA?days=7&width=1d")).text
        hostile = await client.get("/dashboard/entity/%3Cb%3EEvil%20%26%20Co%3C%2Fb%3E?days=7&width=1d")
        article = (await client.get("/dashboard/article/a5")).text
    drivers, displaced = dynamic.split("<h2>Displaced vendors")
    assert ">Evilco</a></td><td>company</td><td>1</td><td>1</td>" in drivers
    assert ">NVIDIA</a></td><td>company</td><td>3</td>" in displaced.split("</table>")[0]
    assert html.escape(HOSTILE) in drivers
    assert HOSTILE not in dynamic
    assert "<td>all</td><td>5</td><td>0</td><td>3</td><td>0</td>" in nvidia
    assert hostile.status_code == 200
    assert f'<h1>Entity: {html.escape(HOSTILE)}</h1>\n<p class="muted kind">company</p>' in hostile.text
    assert HOSTILE not in hostile.text
    facts = article.split("<dt>entities</dt>")[1].split("</dd>")[0]
    assert '>Evilco</a> <span class="kind">company</span> ×1 <span class="role">as buyer</span>' in facts
    assert '>NVIDIA</a> <span class="kind">company</span> ×1 <span class="role">as displaced vendor</span>' in facts
    assert html.escape(HOSTILE) in facts
    assert HOSTILE not in article


def test_stackwatch_rebuild_applies_a_configured_entity_to_history_step_by_step(tmp_path: Path) -> None:
    path = tmp_path / "stackwatch.duckdb"
    with Store.open(path) as store:
        store.write(Batch(tagged=ARTICLES))
    config = tmp_path / "stackwatch.yaml"
    config.write_text(f"storage: {{path: {path}}}\nentities:\n  - {{name: Evilco, aliases: [evilco]}}\n")
    result = CliRunner().invoke(cli, ["rebuild", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "rebuild: 2/2 steps" in result.stderr  # a line per step when stderr is not a terminal
    with Store.open(path, read_only=True) as store:
        assert ("a5", "Evilco", 1, "company", ["buyer"]) in entity_rows(store)
