"""A fixed store for digests: two days of articles and alerts, written through the store's own API.

    path = fill_digest_store(tmp_path / "digest.duckdb")
    period_of("1d", UNTIL)    # the day it is about: 2026-03-09 UTC; the 8th is the day before

The 9th has a story syndicated by three outlets, a story that began on the 8th, a new single-article story, an
article whose title, URL and entity are hostile in every output format, and two alerts (one with a hostile
message); the 8th has the articles the counts are compared with and the entities that are therefore not new.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from stackwatch.signals.entities import Entity, Gazetteer
from stackwatch.signals.messages import Alert, Article, TaggedArticle
from stackwatch.storage.derive import Derivation
from stackwatch.storage.store import Batch, Store

__all__ = ["HOSTILE_TITLE", "HOSTILE_URL", "UNTIL", "fill_digest_store"]

UNTIL = "2026-03-10T00:00:00+00:00"
DYNAMICS = ("exclusivity", "capex", "decoupling", "edge")

HOSTILE_TITLE = (
    "<!channel> @everyone *Humain* [click](https://evil.example) <script>alert(1)</script>\n# heading & `code` | x"
)
HOSTILE_URL = "https://news.example/humain_(1)?a=1&b=<2>"

ENTITIES = (
    Entity("NVIDIA", ("nvidia",)),
    Entity("Google", ("google",), ("TPU", "TPUs")),
    Entity("Meta", (), ("Meta",)),
    Entity("Anthropic", ("anthropic",)),
    Entity("Oracle", ("oracle",)),
    Entity("Humain <@U1> @here", ("humain",)),
)


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def _tagged(
    key: str, source: str, when: datetime, title: str, summary: str, labels: tuple[str, ...], url: str = ""
) -> TaggedArticle:
    article = Article(
        id=key,
        url=url or f"https://{source}.example/{key}",
        title=title,
        summary=summary,
        source=source,
        connector="file",
        published_at=when,
        fetched_at=when,
    )
    scores = {name: 0.9 if name in labels else 0.1 for name in DYNAMICS}
    return TaggedArticle(article, labels, scores, "fixed-v1", when)


TPU_TITLE = "Anthropic commits to a million Google TPUs"
TPU_SUMMARY = "The lab moves training off NVIDIA GPUs onto Google TPUs in a multi-year deal."
META_TITLE = "Meta tests Google TPUs to cut its reliance on NVIDIA"
META_SUMMARY = "Meta is weighing an exclusive deal to rent TPUs in Google Cloud from next year."

ARTICLES = (
    # the 8th: the previous period
    _tagged(
        "p1", "ledger", _at(8, 9), "Oracle raises capex for AI data centers", "Oracle books more capex.", ("capex",)
    ),
    _tagged(
        "p2",
        "wire",
        _at(8, 10),
        "NVIDIA sales to hyperscalers slow",
        "NVIDIA sees buyers test rivals.",
        ("decoupling",),
    ),
    _tagged("p3", "wire", _at(8, 20), META_TITLE, META_SUMMARY, ("decoupling", "exclusivity")),
    # the 9th: the period
    _tagged("a1", "wire", _at(9, 9), TPU_TITLE, TPU_SUMMARY, ("decoupling",)),
    _tagged("a2", "courier", _at(9, 10), TPU_TITLE, TPU_SUMMARY, ("decoupling",)),
    _tagged("a3", "ledger", _at(9, 11), TPU_TITLE, TPU_SUMMARY, ("decoupling",)),
    _tagged("a4", "courier", _at(9, 2), META_TITLE, META_SUMMARY, ("decoupling", "exclusivity")),
    _tagged("a5", "gazette", _at(9, 14), HOSTILE_TITLE, "Humain plans a gigawatt campus.", ("capex",), HOSTILE_URL),
    _tagged(
        "a6", "wire", _at(9, 16), "Oracle moves inference to the edge", "Oracle puts small models in PoPs.", ("edge",)
    ),
)


def _alert(key: str, rule: str, dynamic: str, fired: datetime, message: str, severity: str = "warning") -> Alert:
    return Alert(
        id=key,
        rule=rule,
        severity=severity,
        dynamic=dynamic,
        indicator="article_count",
        window="1d",
        bucket_start=fired.replace(hour=0),
        value=3.0,
        threshold=2.0,
        message=message,
        webhooks=(),
        fired_at=fired,
    )


ALERTS = (
    _alert("al0", "decoupling-spike", "decoupling", _at(8, 21), "decoupling: 2 articles on 2026-03-08"),
    _alert("al1", "decoupling-spike", "decoupling", _at(9, 12), "decoupling: 3 articles on 2026-03-09", "critical"),
    _alert("al2", "capex <!here>", "capex", _at(9, 15), "capex spike <@U123> @everyone **now**"),
)


def fill_digest_store(path: Path) -> Path:
    """Write the fixed articles and alerts into a new store at ``path`` (with the fixed gazetteer); returns it."""
    with Store.open(path, derivation=Derivation(Gazetteer(ENTITIES))) as store:
        store.write(Batch(tagged=list(ARTICLES[:3])))
        store.write(Batch(tagged=list(ARTICLES[3:])))
        store.write(Batch(alerts=list(ALERTS)))
    return path
