"""Synthetic news for the benchmarks: tagged articles made in Python for the sink to write, and stores filled
straight through SQL (no Python per row), then given their indicators by the product's own ``rebuild``.

    probe = synthetic(5_000, start=when, days=1.5)             # TaggedArticles for Store.write
    rebuilt = fill(path, 1_000_000, 365, "1GB")                # benchmarks.sink: even, uniform, 8 dynamics
    filled = fill_market(store, Market(10_000_000, days=1461))  # benchmarks.scale: a few years of a real market

:func:`fill` spreads its articles evenly over the days, 40 outlets alike, stories of three. :func:`fill_market`
draws them as a news market looks: volume growing over the years, quiet weekends and busy news days; a few
outlets carrying most of it (Zipf); the taxonomy's built-in dynamics (about half the articles none), each rising
and falling and now and then spiking; the gazetteer's entities, the first listed the most named; wire stories
syndicated by up to 40 outlets within hours; bodies on the newest articles only (retention drops older ones); and
alerts of four kinds with their evidence, written by the store itself.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from stackwatch.signals.entities import DEFAULT_ENTITIES, Entity, Gazetteer
from stackwatch.signals.indicators import count_update, hits_for
from stackwatch.signals.messages import Alert, Article, IndicatorUpdate, Observation, TaggedArticle
from stackwatch.signals.taxonomy import Taxonomy
from stackwatch.sizes import parse_size
from stackwatch.storage.scratch import registered
from stackwatch.storage.store import Batch, Store

__all__ = [
    "DYNAMICS",
    "ENTITIES",
    "OBJECTS",
    "SOURCES",
    "START",
    "VERBS",
    "VIEWS_START",
    "Filled",
    "Market",
    "fill",
    "fill_market",
    "market_alerts",
    "phrase",
    "synthetic",
    "updates_for",
    "zipf_weights",
]

DYNAMICS = ("decoupling", "edge", "capex", "exclusivity", "export_controls", "power", "pricing", "talent")
ENTITIES = ("Nvidia", "AMD", "Google TPUs", "AWS Trainium", "Microsoft Azure", "OpenAI", "Meta", "CoreWeave")
VERBS = ("signs", "expands", "cuts", "doubles", "pauses", "announces", "wins", "loses")
OBJECTS = ("GPU deal", "data-centre campus", "custom chip", "cloud contract", "power purchase", "export licence")
SOURCES = tuple(f"outlet{n:02d}" for n in range(40))
START = datetime(2026, 1, 1, tzinfo=UTC)
VIEWS_START = datetime(2025, 1, 1, tzinfo=UTC)
"""Where :func:`fill` starts its articles (the SQL below spells it out)."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``: steps done of all the steps, after each step."""


def synthetic(
    count: int,
    seed: int = 1,
    *,
    start: datetime = START,
    days: float = 30,
    prefix: str = "b",
    dynamics: Sequence[str] = DYNAMICS,
    entities: Sequence[str] = ENTITIES,
    sources: Sequence[str] = SOURCES,
    weights: Sequence[float] | None = None,
) -> list[TaggedArticle]:
    """Articles over ``days`` days from ``start``, roughly in arrival order: 30% syndicated copies, 5% late by up
    to two days; each names two of ``entities``, has up to two of ``dynamics`` and comes from one of ``sources``
    (as likely as its ``weights`` say; alike without)."""
    rng = random.Random(seed)
    items: list[TaggedArticle] = []
    wires: list[tuple[str, datetime]] = []
    for number in range(count):
        now = start + timedelta(days=days) * (number / count)
        if wires and rng.random() < 0.3:
            title, published = rng.choice(wires[-50:])
            published += timedelta(minutes=rng.randrange(0, 240))
        else:
            title = f"{rng.choice(entities)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} with {rng.choice(entities)}"
            title += f" ({number})"
            published = now - (timedelta(hours=rng.randrange(1, 48)) if rng.random() < 0.05 else timedelta(0))
            wires.append((title, published))
        labels = tuple(rng.sample(list(dynamics), rng.randrange(0, 3)))
        scores = {dynamic: round(rng.random(), 3) for dynamic in dynamics}
        source = rng.choices(sources, weights)[0] if weights else rng.choice(sources)
        article = Article(
            f"{prefix}{number:07d}",
            f"https://x.test/{prefix}{number}",
            title,
            "",
            source,
            "rss",
            published,
            published,
        )
        items.append(TaggedArticle(article, labels, scores, "v1", published))
    return items


def updates_for(articles: list[TaggedArticle]) -> list[IndicatorUpdate]:
    """The stream's article_count updates for these articles (what the evaluate agent would emit)."""
    members: dict[str, set[str]] = {}
    updates = []
    for tagged in articles:
        for hit in hits_for(Observation.of(tagged)):
            ids = members.setdefault(hit.key, set())
            ids.add(hit.article_id)
            updates.append(count_update(hit, ids))
    return updates


def fill(path: Path, count: int, days: int, memory_limit: str) -> float:
    """``count`` synthetic articles over ``days`` days straight through SQL (no Python per row), then rebuild;
    returns the rebuild's seconds."""
    # the title names the article's entities: rebuild matches them again from the stored text
    named = " || ' and ' || ".join(
        f"{list(ENTITIES)}[1 + (hash(i, {k}::BIGINT) % {len(ENTITIES)})::BIGINT]" for k in (0, 1)
    )
    title = f"'title ' || i || ': ' || {named}"
    with Store.open(path, memory_limit=memory_limit) as store:
        c = store.connection
        c.execute(
            f"""
            INSERT INTO articles (id, url, title, summary, body, source, connector, language, published_at,
                                  fetched_at, labels, model_version, tagged_at)
            SELECT 'v' || i, 'https://x.test/' || i, {title}, '', NULL, 'outlet' || (i % 40), 'rss', NULL,
                   TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds((hash(i) % ({days} * 86400))::BIGINT) AS moment,
                   now(), [], 'v1', now()
            FROM range({count}) t(i) ORDER BY moment
            """  # noqa: S608 (rows in time order, as a stream writes them)
        )
        c.execute(
            f"""
            INSERT INTO article_dynamics
            SELECT 'v' || i, d, (hash(i, d) % 1000) / 1000.0, hash(i, d) % 4 = 0, 'v1',
                   TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds((hash(i) % ({days} * 86400))::BIGINT) AS moment
            FROM range({count}) t(i), (SELECT unnest({list(DYNAMICS)}) AS d) ORDER BY moment
            """  # noqa: S608
        )
        c.execute(
            f"""
            INSERT INTO article_entities (article_id, entity, mentions, published_at)
            SELECT 'v' || i, entity, 1,
                   TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds((hash(i) % ({days} * 86400))::BIGINT) AS moment
            FROM (SELECT DISTINCT i, {list(ENTITIES)}[1 + (hash(i, k) % {len(ENTITIES)})::BIGINT] AS entity
                  FROM range({count}) t(i), range(2) k(k))
            ORDER BY moment
            """  # noqa: S608
        )
        c.execute(
            f"""
            INSERT INTO article_stories
            SELECT 'v' || i, 'v' || (i - i % 3), hash(i), TIMESTAMPTZ '2025-01-01 00:00:00+00'
                   + to_seconds((hash(i) % ({days} * 86400))::BIGINT) AS moment, 1.0
            FROM range({count}) t(i) ORDER BY moment
            """  # noqa: S608
        )
        c.execute(
            """
            INSERT INTO alerts (id, rule, severity, dynamic, indicator, bucket_width, bucket_start, value, threshold,
                                message, fired_at)
            SELECT 'al' || i, 'edge-surge', 'warning', 'edge', 'article_count', '1d',
                   TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_days(i::INTEGER), 10, 5, 'm', now()
            FROM range(300) t(i)
            """
        )
        started = time.perf_counter()
        store.rebuild()
        rebuilt = time.perf_counter() - started
        c.execute("CHECKPOINT")
    return rebuilt


# -- a market: benchmarks.scale's stores ------------------------------------------------------------------------

OUTLETS = (
    "reuters",
    "bloomberg",
    "cnbc",
    "theinformation",
    "ft",
    "wsj",
    "theregister",
    "datacenterdynamics",
    "semianalysis",
    "servethehome",
)
"""The busiest outlets by name; the long tail after them is ``blogNNN``."""
CONNECTORS = ("rss", "rss", "rss", "rss", "rss", "rss", "api", "api", "hn", "sec")
REGIONS = ("Texas", "Virginia", "Ireland", "Johor", "Abu Dhabi", "Ohio", "Finland", "Arizona")
GENERIC = ("A chipmaker", "A hyperscaler", "A neocloud", "A regulator", "A sovereign fund", "A startup")
"""Who a title names when its article names no entity."""
MARKET_VERBS = ("signs", "expands", "cuts", "doubles", "pauses", "announces", "wins", "loses", "delays", "prices")
MARKET_OBJECTS = (
    "GPU cluster",
    "data-centre campus",
    "custom chip",
    "cloud contract",
    "power purchase deal",
    "export licence",
    "inference service",
    "Stargate site",
    "NPU laptop line",
    "debt financing",
)
BASE_CHANCES = {"capex": 0.22, "decoupling": 0.15, "edge": 0.10, "exclusivity": 0.08}
"""How likely an original article is labelled with each built-in dynamic, before its waves and spikes."""
SLOTS = 10_000
"""A skewed choice in SQL is an equi-join on ``hash(...) % SLOTS`` with a table giving each name its share of the
slots."""


def zipf_weights(count: int, exponent: float) -> list[float]:
    """Weights of ranks 1..count that fall as ``rank ** -exponent``, summing to 1."""
    raw = [rank**-exponent for rank in range(1, count + 1)]
    total = sum(raw)
    return [weight / total for weight in raw]


def _slots(weights: Sequence[float]) -> list[int]:
    """The index owning each of :data:`SLOTS` slots: every index at least one, the rest by largest remainder."""
    shares = [max(1.0, weight * SLOTS) for weight in weights]
    scale = (SLOTS - len(weights)) / sum(share - 1 for share in shares) if len(weights) < SLOTS else 0.0
    exact = [1 + (share - 1) * scale for share in shares]
    counts = [int(value) for value in exact]
    order = sorted(range(len(exact)), key=lambda index: counts[index] - exact[index])
    for index in order[: SLOTS - sum(counts)]:
        counts[index] += 1
    return [index for index, count in enumerate(counts) for _ in range(count)]


def phrase(entity: Entity, gazetteer: Gazetteer) -> str:
    """How a title names ``entity``: its name, else its first alias the gazetteer finds as it alone (and as its
    owner, which a mention of a product, chip or person counts for too)."""
    alone = {entity.name: 1} | ({entity.owner: 1} if entity.owner else {})
    for text in (entity.name, *entity.exact, *entity.aliases):
        if gazetteer.find(text) == alone:
            return text
    raise ValueError(f"the gazetteer finds no name of {entity.name}")


def _end() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Day:
    """One day of a :class:`Market`: how many articles it holds and how likely each dynamic is."""

    index: int
    start: datetime
    seconds: int
    """How long the day is: a whole day, but the last one ends at the market's end."""
    articles: int
    first: int
    """Story numbers of this day start here (the articles of the days before)."""
    chances: tuple[float, ...]
    """Per dynamic, in the market's order: the chance an original article is labelled with it."""


@dataclass(frozen=True)
class Market:
    """A store's worth of news: ``articles`` over ``days`` days ending at ``end`` (the next hour by default)."""

    articles: int
    days: int = 4 * 365 + 1
    end: datetime = field(default_factory=_end)
    seed: int = 20
    dynamics: tuple[str, ...] = Taxonomy.builtin().names
    entities: tuple[Entity, ...] = DEFAULT_ENTITIES
    outlets: int = 300
    growth: float = 2.0
    """The last day's volume is ``1 + growth`` times the first's."""
    body_days: int = 120
    """Articles of the last ``body_days`` days keep their body (90 days by default in the service, so its first
    retention run has a month of bodies to drop)."""

    @property
    def start(self) -> datetime:
        """Midnight (UTC) of the first day: the last of ``days`` days holds ``end``."""
        return (self.end - timedelta(microseconds=1)).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
            days=self.days - 1
        )

    def _length(self, day: datetime) -> int:
        return int(min(timedelta(days=1), self.end - day).total_seconds())

    def sources(self) -> list[str]:
        named = list(OUTLETS[: self.outlets])
        return named + [f"blog{rank:03d}" for rank in range(len(named), self.outlets)]

    def source_weights(self) -> list[float]:
        return zipf_weights(self.outlets, 1.1)

    def entity_weights(self) -> list[float]:
        return zipf_weights(len(self.entities), 1.0)

    def plan(self) -> tuple[list[Day], list[tuple[str, int]]]:
        """The days, and the (dynamic, day index) of each spike: a dynamic three times as likely for 1-3 days."""
        rng = random.Random(self.seed)
        bases = [BASE_CHANCES.get(name, 0.1) for name in self.dynamics]
        periods = [rng.uniform(90, 400) for _ in self.dynamics]
        phases = [rng.uniform(0, 2 * math.pi) for _ in self.dynamics]
        weights, chances, spikes = [], [], []
        spiking = [0] * len(self.dynamics)
        for index in range(self.days):
            moment = self.start + timedelta(days=index)
            weight = (1 + self.growth * index / max(1, self.days - 1)) * self._length(moment) / 86400
            weight *= 0.4 if moment.weekday() >= 5 else 1.0
            weight *= 1.6 if rng.random() < 0.04 else 1.0  # a busy news day
            weights.append(weight)
            today = []
            for number, dynamic in enumerate(self.dynamics):
                if not spiking[number] and rng.random() < 1 / 45:
                    spiking[number] = rng.randint(1, 3)
                    spikes.append((dynamic, index))
                wave = 1 + 0.5 * math.sin(2 * math.pi * index / periods[number] + phases[number])
                chance = bases[number] * wave * (3 if spiking[number] else 1)
                spiking[number] = max(0, spiking[number] - 1)
                today.append(round(min(chance, 0.95), 4))
            chances.append(tuple(today))
        total = sum(weights)
        exact = [self.articles * weight / total for weight in weights]
        counts = [int(value) for value in exact]
        for index in sorted(range(self.days), key=lambda i: counts[i] - exact[i])[: self.articles - sum(counts)]:
            counts[index] += 1
        days, first = [], 0
        for index, count in enumerate(counts):
            moment = self.start + timedelta(days=index)
            days.append(Day(index, moment, self._length(moment), count, first, chances[index]))
            first += count
        return days, spikes


@dataclass(frozen=True, slots=True)
class Filled:
    articles: int
    stories: int
    alerts: int
    chunks: int


_STORIES = """
CREATE OR REPLACE TEMP TABLE _stories AS
WITH s AS (
    SELECT day_index, day, seconds, articles, chances, first + unnest(range(articles)) AS story
    FROM _plan WHERE day_index >= $lo AND day_index < $hi AND articles > 0
), sized AS (  -- most stories are one article; one in a hundred is carried by 16 to 40 outlets
    SELECT *, CASE WHEN r < 850 THEN 1 WHEN r < 930 THEN 2 WHEN r < 970 THEN 3 + w % 3
                   WHEN r < 990 THEN 6 + w % 10 ELSE 16 + w % 25 END AS wanted
    FROM (SELECT *, hash(story, 'size') % 1000 AS r, hash(story, 'width') AS w FROM s)
), counted AS (
    SELECT *, coalesce(sum(wanted) OVER (PARTITION BY day_index ORDER BY story
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
    FROM sized
)
SELECT day_index, day, seconds, chances, story, least(wanted, articles - before)::INTEGER AS size,
       row_number() OVER (PARTITION BY day_index ORDER BY story) - 1 AS position,
       count(*) OVER (PARTITION BY day_index) AS stories,
       hash(story, 'entities') % 10 AS named,
       list_transform(list_filter(range(1, len(chances) + 1),
                                  lambda k: hash(story, k) % 10000 < chances[k] * 10000),
                      lambda k: $dynamics[k]) AS labels
FROM counted WHERE before < articles
"""

_ARTICLES = """
CREATE OR REPLACE TEMP TABLE _articles AS
WITH m AS (
    SELECT *, unnest(range(size)) AS member FROM _stories
), e AS (  -- up to three entities per story, drawn skewed; copies name what the original names
    SELECT m.*, e0.name AS e0, e0.phrase AS p0, CASE WHEN named >= 7 THEN e1.name END AS e1,
           CASE WHEN named >= 7 THEN e1.phrase END AS p1, CASE WHEN named = 9 THEN e2.name END AS e2
    FROM m
    LEFT JOIN _entity_slots e0 ON e0.slot = (hash(story, 0) % $slots)::BIGINT AND m.named >= 3
    LEFT JOIN _entity_slots e1 ON e1.slot = (hash(story, 1) % $slots)::BIGINT
    LEFT JOIN _entity_slots e2 ON e2.slot = (hash(story, 2) % $slots)::BIGINT
), t AS (
    SELECT e.*, s.name AS source, s.connector,
           least(day + to_microseconds(((position + 0.5) / stories * seconds * 1e6)::BIGINT)
                 + to_minutes((member * (2 + hash(story, member) % 8))::BIGINT), $end) AS published_at,
           coalesce(p0, $generic[1 + (hash(story, 'g') % len($generic))::BIGINT]) || ' '
               || $verbs[1 + (hash(story, 'v') % len($verbs))::BIGINT] || ' '
               || $objects[1 + (hash(story, 'o') % len($objects))::BIGINT]
               || coalesce(' with ' || p1, '') AS title
    FROM e JOIN _source_slots s ON s.slot = (hash(story, member, 'source') % $slots)::BIGINT
)
SELECT md5(story::VARCHAR || '/' || member) AS id, md5(story::VARCHAR || '/0') AS story_id, story, member,
       source, connector, published_at, title, labels, chances, e0, e1, e2,
       title || '. Reported on ' || strftime(day, '%d %B %Y') || ', it adds to the plans of '
           || coalesce(p1, 'its rivals') || ' for the '
           || $objects[1 + (hash(story, 'o2') % len($objects))::BIGINT] || ' in '
           || $regions[1 + (hash(story, 'r') % len($regions))::BIGINT] || '.' AS summary
FROM t
"""

_INSERTS = (
    """
    INSERT INTO articles
    SELECT id, 'https://' || source || '.example/' || strftime(published_at, '%Y/%m/%d/') || id, title, summary,
           CASE WHEN published_at >= $bodies THEN repeat(summary || ' ', 8) END, source, connector, 'en',
           published_at, tagged_at - INTERVAL 1 MINUTE, labels, 'v3', tagged_at, tagged_at
    FROM (SELECT *, published_at + to_minutes((4 + hash(id) % 30)::INTEGER) AS tagged_at FROM _articles)
    ORDER BY published_at, id
    """,
    """
    INSERT INTO article_dynamics
    SELECT id, $dynamics[k],
           CASE WHEN list_contains(labels, $dynamics[k]) THEN 0.5 ELSE 0.0 END + (hash(id, k) % 500) / 1000.0,
           list_contains(labels, $dynamics[k]), 'v3', published_at
    FROM _articles, (SELECT unnest(range(1, len($dynamics) + 1)) AS k)
    """,
    """
    INSERT INTO article_entities (article_id, entity, mentions, published_at)
    SELECT DISTINCT id, entity, 1 + hash(id, entity) % 3, published_at
    FROM (SELECT id, published_at, unnest([e0, e1, e2]) AS entity FROM _articles) WHERE entity IS NOT NULL
    """,
    """
    INSERT INTO article_stories
    SELECT id, story_id, hash(story), published_at, pow(0.5, member) FROM _articles
    """,
    """
    INSERT INTO stories
    SELECT story_id, arg_min(title, (published_at, id)), min(published_at), max(published_at), count(*),
           count(DISTINCT source)
    FROM _articles GROUP BY story_id
    """,
)


def _params(sql: str, values: dict[str, object]) -> dict[str, object]:
    """The named parameters ``sql`` uses (DuckDB refuses ones it does not)."""
    return {key: value for key, value in values.items() if f"${key}" in sql}


def _day_chunks(days: Sequence[Day], articles: int) -> list[tuple[int, int]]:
    """[lo, hi) day indexes of whole days holding at most ``articles`` articles (or one day, if it holds more)."""
    chunks: list[tuple[int, int]] = []
    lo, held = 0, 0
    for day in days:
        if day.index > lo and held + day.articles > articles:
            chunks.append((lo, day.index))
            lo, held = day.index, 0
        held += day.articles
    chunks.append((lo, len(days)))
    return chunks


def market_alerts(market: Market, days: Sequence[Day], spikes: Sequence[tuple[str, int]]) -> list[Alert]:
    """The alerts such a market fires: a spike for each dynamic's spike, a trend for every fifth, a co-occurrence
    of two entities and an entity seen for the first time every month or so."""
    rng = random.Random(market.seed + 1)
    names = [entity.name for entity in market.entities]
    alerts = []
    for number, (dynamic, index) in enumerate(spikes):
        day = days[index].start
        fired = day + timedelta(days=1, minutes=5)
        kinds: list[tuple[str, str, str, float, float, dict[str, str]]] = [
            ("spike", "zscore", "1d", 3.0, 3.0 + rng.random() * 2, {})
        ]
        if number % 5 == 0:
            kinds.append(("trend", "momentum", "1d", 0.5, 0.5 + rng.random(), {}))
        if number % 3 == 0:
            pair = " & ".join(sorted(rng.sample(names[:6], 2)))
            kinds.append(("co_occurrence", "article_count", "1d", 5.0, 5.0 + rng.randrange(1, 40), {"entities": pair}))
        if number % 4 == 0:
            kinds.append(("first_seen", "article_count", "1d", 1.0, 1.0, {"entity": rng.choice(names[6:])}))
        for kind, indicator, window, threshold, value, labels in kinds:
            alerts.append(
                Alert(
                    id=f"scale-{kind}-{dynamic}-{index}",
                    rule=f"{dynamic}-{kind}",
                    severity="critical" if kind == "spike" and value > 4 else "warning",
                    dynamic=dynamic,
                    indicator=indicator,
                    window=window,
                    bucket_start=day,
                    value=round(value, 3),
                    threshold=threshold,
                    message=f"{dynamic}: {indicator} {value:.2f} over {threshold:.2f}",
                    webhooks=("ops",),
                    fired_at=fired,
                    kind=kind,
                    dedup_key=f"{dynamic}-{kind}",
                    labels=labels,
                    values={indicator: round(value, 3)},
                )
            )
    return alerts


def fill_market(store: Store, market: Market, progress: Progress | None = None) -> Filled:
    """Write ``market``'s articles, their dynamics, entities and stories straight through SQL, a transaction per
    chunk of whole days (as many articles as ``storage.memory_limit`` comfortably holds), then its alerts through
    ``Store.write`` (which records their evidence); ``progress(done, total)`` after each chunk. The indicators are
    left to ``store.rebuild()``."""
    days, spikes = market.plan()
    gazetteer = Gazetteer(market.entities)
    entity_slots = _slots(market.entity_weights())
    source_slots = _slots(market.source_weights())
    sources = market.sources()
    tables = {
        "_plan_rows": pa.table(
            {
                "day_index": [day.index for day in days],
                "day": pa.array([day.start for day in days], pa.timestamp("us", "UTC")),
                "seconds": pa.array([day.seconds for day in days], pa.int64()),
                "articles": pa.array([day.articles for day in days], pa.int64()),
                "first": pa.array([day.first for day in days], pa.int64()),
                "chances": pa.array([list(day.chances) for day in days], pa.list_(pa.float64())),
            }
        ),
        "_entity_slots_rows": pa.table(
            {
                "slot": list(range(SLOTS)),
                "name": [market.entities[index].name for index in entity_slots],
                "phrase": [phrase(market.entities[index], gazetteer) for index in entity_slots],
            }
        ),
        "_source_slots_rows": pa.table(
            {
                "slot": list(range(SLOTS)),
                "name": [sources[index] for index in source_slots],
                "connector": [CONNECTORS[index % len(CONNECTORS)] for index in source_slots],
            }
        ),
    }
    connection = store.connection
    for name, table in tables.items():
        with registered(connection, name, table):
            connection.execute(f"CREATE OR REPLACE TEMP TABLE {name.removesuffix('_rows')} AS FROM {name}")
    values = {
        "dynamics": list(market.dynamics),
        "slots": SLOTS,
        "generic": list(GENERIC),
        "verbs": list(MARKET_VERBS),
        "objects": list(MARKET_OBJECTS),
        "regions": list(REGIONS),
        "bodies": market.end - timedelta(days=market.body_days),
        "end": market.end - timedelta(seconds=1),
    }
    try:
        chunk_articles = max(5_000, parse_size(store.memory_limit) // 8_000)
    except ValueError:
        chunk_articles = 100_000
    chunks = _day_chunks(days, chunk_articles)
    stories = 0
    for done, (lo, hi) in enumerate(chunks, start=1):
        connection.execute("BEGIN TRANSACTION")
        try:
            for sql in (_STORIES, _ARTICLES, *_INSERTS):
                connection.execute(sql, _params(sql, {**values, "lo": lo, "hi": hi}))
            row = connection.execute("SELECT count(DISTINCT story_id) FROM _articles").fetchone()
            stories += int(row[0]) if row else 0
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        if progress is not None:
            progress(done, len(chunks))
    for name in ("_stories", "_articles", "_plan", "_entity_slots", "_source_slots"):
        connection.execute(f"DROP TABLE IF EXISTS {name}")
    alerts = market_alerts(market, days, spikes)
    for start in range(0, len(alerts), 200):
        store.write(Batch(alerts=alerts[start : start + 200]))
    connection.execute("UPDATE deliveries SET status = 'delivered', attempts = 1, delivered_at = created_at")
    return Filled(sum(day.articles for day in days), stories, len(alerts), len(chunks))
