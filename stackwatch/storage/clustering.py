"""Stories, kept inside the write transaction: each new or changed article is linked to every stored article that
is a syndicated copy of it (SimHash within MAX_DISTANCE bits, STORY_WINDOW apart), and to the one stored article
that reports the same event most alike (EVENT_WINDOW apart, entities that agree, and an event score of at least
EVENT_SIMILARITY from their embeddings, the entities they share and the amounts they state; or, for a
market-reaction piece, the closest earlier report of its parties: signals/stories.py); then each story's members,
id and novelty are recomputed. An article that reads like two events thus joins one of them, the one holding its
best match when it is written, instead of merging them. A story's id is the id of its article fetched first (ties
by id): a report fetched later, however early it was published, joins under it; when one article joins stories
(a syndicated copy of one that is most like another), the merged story keeps the id of the one holding the article
fetched first, and the others are retired to ``story_aliases`` (story_aliases.py)::

    restoried = cluster(connection, tagged, replaced={"id": former_published_at})
    # {article id: (former story id, former novelty, published_at)} of the articles whose story or novelty changed

The embeddings of the last EVENT_WINDOW of news are kept in ``article_embeddings`` (schema migration 9), so a
restart links the next article to the reports it would have met without one; each write removes the rows older
than EVENT_WINDOW before the newest article (not after the present time). An article that arrives later than
that is linked by SimHash only. Articles tagged without an embedding (the keyword backend) are linked by SimHash
only, and embeddings of different encoders (``space``) are never compared.

Every statement reads the dates it touches only (see zonemaps.py): the window around the new articles, the former
dates of replaced ones, and the span of the stories they join, taken from the ``stories`` rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa

from stackwatch.signals.amounts import Amount, amounts
from stackwatch.signals.messages import TaggedArticle
from stackwatch.signals.stories import (
    BANDS,
    ENTITY_WEIGHT,
    EVENT_SIMILARITY,
    EVENT_WINDOW,
    MARKET_REACTION,
    MAX_DISTANCE,
    STORY_WINDOW,
    components,
    entities_agree,
    event_score,
    is_market_reaction,
    novelty,
    reaction_links,
    simhash_many,
    unit_rows,
)
from stackwatch.storage.scratch import registered
from stackwatch.storage.story_aliases import retire
from stackwatch.storage.zonemaps import at, span

__all__ = ["cluster"]

_ROWS_PER_PASS = 64
"""New articles compared with the window's embeddings at once."""

_SLACK = 1e-6
"""Room for float32 rounding in the bound that picks the pairs to score: a pair it keeps too many is scored and
fails, none that would link is left out."""


def cluster(
    connection: duckdb.DuckDBPyConnection, tagged: Sequence[TaggedArticle], replaced: Mapping[str, datetime]
) -> dict[str, tuple[str, float, datetime]]:
    """Store the stories of ``tagged`` (``replaced``: the former dates of those stored before); return every
    article whose story or novelty changed, with its former story id and novelty (a new or re-clustered article
    of the batch: itself and 1.0) and its date."""
    hashes = simhash_many([f"{item.article.title}\n{item.article.summary}" for item in tagged])
    old = span(replaced.values())  # a story row's published_at is its article's: both are written together
    known: dict[str, tuple[int, datetime]] = {}
    if old:
        rows = connection.execute(
            f"SELECT article_id, simhash, published_at FROM article_stories"  # noqa: S608
            f" WHERE published_at BETWEEN {old[0]} AND {old[1]} AND list_contains(?, article_id)",
            [list(replaced)],
        ).fetchall()
        known = {row[0]: (row[1], row[2]) for row in rows}
    # An article re-published at another date is clustered again: its story depends on when it was published.
    fresh = [
        (item, h)
        for item, h in zip(tagged, hashes, strict=True)
        if known.get(item.article.id) != (h, item.article.published_at)
    ]
    if not fresh:
        return {}
    if old:
        again = [[item.article.id for item, _ in fresh if item.article.id in known]]
        for table in ("article_stories", "article_embeddings"):
            connection.execute(
                f"DELETE FROM {table} WHERE published_at BETWEEN {old[0]} AND {old[1]}"  # noqa: S608
                " AND list_contains(?, article_id)",
                again,
            )
    _insert_embeddings(connection, [item for item, _ in fresh])
    new = pa.table(
        {
            "article_id": [item.article.id for item, _ in fresh],
            "story_id": [item.article.id for item, _ in fresh],
            "simhash": pa.array([h for _, h in fresh], pa.uint64()),
            "published_at": pa.array([item.article.published_at for item, _ in fresh], pa.timestamp("us", "UTC")),
            "novelty": [1.0] * len(fresh),
        }
    )
    with registered(connection, "_new_stories", new):
        connection.execute("INSERT INTO article_stories SELECT * FROM _new_stories")
        dates = [item.article.published_at for item, _ in fresh]
        near = (at(min(dates) - STORY_WINDOW), at(max(dates) + STORY_WINDOW))
        # Candidates share one 8-bit band (pigeonhole: within MAX_DISTANCE bits they must); then check exactly.
        edges = connection.execute(
            f"""
            WITH n AS (SELECT article_id, simhash, published_at, unnest(range({BANDS})) AS k FROM _new_stories),
                 nb AS (SELECT *, (simhash >> (8 * k)::UBIGINT) & 255 AS band FROM n),
                 s AS (SELECT article_id, simhash, published_at, story_id, unnest(range({BANDS})) AS k
                       FROM article_stories
                       WHERE published_at BETWEEN {near[0]} AND {near[1]}),
                 sb AS (SELECT *, (simhash >> (8 * k)::UBIGINT) & 255 AS band FROM s)
            SELECT DISTINCT nb.article_id, sb.article_id, sb.story_id
            FROM nb JOIN sb ON nb.k = sb.k AND nb.band = sb.band AND nb.article_id <> sb.article_id
            WHERE abs(epoch(nb.published_at) - epoch(sb.published_at)) <= {STORY_WINDOW.total_seconds()}
              AND bit_count(xor(nb.simhash, sb.simhash)) <= {MAX_DISTANCE}
            """  # noqa: S608 (only constants are interpolated)
        ).fetchall()
    edges += _event_edges(connection, [item for item, _ in fresh])
    stories = sorted({row[2] for row in edges} | {item.article.id for item, _ in fresh})
    members = connection.execute(
        "SELECT article_id, story_id, published_at, novelty FROM article_stories"  # noqa: S608
        f" WHERE {_extent(connection, stories, fresh, replaced)} AND list_contains(?, story_id)",
        [stories],
    ).fetchall()
    links = [(row[0], row[1]) for row in edges] + [(row[0], row[1]) for row in members]
    dated_members = [row[2] for row in members] or [item.article.published_at for item, _ in fresh]
    first, last = at(min(dated_members)), at(max(dated_members))
    members_at = f"published_at BETWEEN {first} AND {last}"  # every member of every story touched
    published = {row[0]: row[2] for row in members}
    before = {row[0]: (row[1], row[3]) for row in members}
    batch = {item.article.id for item, _ in fresh}
    held = {row[0]: row[1] for row in members if row[0] not in batch}  # the ids stories were given before
    rank = _fetch_order(connection, list(published), members_at)
    updates: list[tuple[str, str, float]] = []
    merges: list[tuple[str, str]] = []
    for group in components(published, links):
        dated = [(article, published[article]) for article in group if article in published]
        root, retired = _story_id([article for article, _ in dated], held, rank)
        merges += [(story, root) for story in retired]
        scores = novelty(dated)
        updates += [(article, root, scores[article]) for article, _ in dated]
    # Only members whose story or novelty changed need their buckets recomputed: a story of hundreds gaining a
    # later article changes that article alone, and recomputing every member's bucket made each batch cost
    # grow with the story.
    updates = [update for update in updates if before.get(update[0]) != (update[1], update[2])]
    table = pa.table(
        {
            "article_id": [u[0] for u in updates],
            "story_id": [u[1] for u in updates],
            "novelty": [u[2] for u in updates],
        }
    )
    with registered(connection, "_story_updates", table):
        connection.execute(
            "UPDATE article_stories SET story_id = u.story_id, novelty = u.novelty FROM _story_updates u"  # noqa: S608
            f" WHERE article_stories.article_id = u.article_id AND article_stories.{members_at}"
        )
    roots = sorted({u[1] for u in updates} | set(stories))
    # A root's stories row ends at or after its earliest member, or its root's date before it was replaced.
    floor = min(first, old[0]) if old else first
    connection.execute(
        f"DELETE FROM stories WHERE last_seen >= {floor} AND list_contains(?, story_id)",  # noqa: S608
        [roots],
    )
    connection.execute(
        f"""
        INSERT INTO stories
        SELECT s.story_id, arg_min(a.title, (s.published_at, s.article_id)), min(s.published_at),
               max(s.published_at), count(*), count(DISTINCT a.source)
        FROM article_stories s JOIN articles a ON a.id = s.article_id
        WHERE s.{members_at} AND a.{members_at} AND list_contains(?, s.story_id) GROUP BY s.story_id
        """,  # noqa: S608 (only literals we made are interpolated)
        [roots],
    )
    retire(connection, merges)
    _prune_embeddings(connection)
    return {update[0]: (*before[update[0]], published[update[0]]) for update in updates}


_NEVER = datetime.max.replace(tzinfo=UTC)


def _fetch_order(
    connection: duckdb.DuckDBPyConnection, articles: list[str], members_at: str
) -> dict[str, tuple[datetime, str]]:
    """Each article's place in the order the sources delivered them: ``fetched_at`` (a record's own field, so a
    replay in any order or a rebuild finds the same), then the id."""
    rows = connection.execute(
        f"SELECT id, fetched_at FROM articles WHERE {members_at} AND list_contains(?, id)",  # noqa: S608
        [articles],
    ).fetchall()
    return {row[0]: (row[1], row[0]) for row in rows}


def _story_id(
    group: list[str], held: Mapping[str, str], rank: Mapping[str, tuple[datetime, str]]
) -> tuple[str, list[str]]:
    """The id of one story (``group``: its articles) and the ids it retires: the id of its article fetched first,
    and the other ids its articles held before this write (``held``: article to story id, for the articles stored
    before). A report fetched later, however early it was published, leaves the id as it is; of two stories that
    one article joins, the one holding the article fetched first keeps its id."""
    root = min(group, key=lambda article: rank.get(article, (_NEVER, article)))
    return root, sorted({held[article] for article in group if article in held} - {root})


def _insert_embeddings(connection: duckdb.DuckDBPyConnection, items: Sequence[TaggedArticle]) -> None:
    carried = [item for item in items if item.embedding is not None]
    if not carried:
        return
    table = pa.table(
        {
            "article_id": [item.article.id for item in carried],
            "space": [item.embedding.space for item in carried if item.embedding is not None],
            "vector": pa.array([item.embedding.values for item in carried if item.embedding is not None], pa.binary()),
            "published_at": pa.array([item.article.published_at for item in carried], pa.timestamp("us", "UTC")),
        }
    )
    with registered(connection, "_new_embeddings", table):
        connection.execute("INSERT INTO article_embeddings SELECT * FROM _new_embeddings")


def _event_edges(connection: duckdb.DuckDBPyConnection, items: Sequence[TaggedArticle]) -> list[tuple[str, str, str]]:
    """(new article, stored article, its story): for each new article, the stored article (the batch's included)
    that reports the same event most alike, if any: embeddings of one space, published within EVENT_WINDOW of each
    other, entities that agree and an event score (the cosine, the entities in common, the amounts stated) of at
    least EVENT_SIMILARITY; failing that, for a market-reaction piece, the closest earlier report naming all its
    entities."""
    carried = [item for item in items if item.embedding is not None]
    if not carried:
        return []
    dates = [item.article.published_at for item in carried]
    lo, hi = at(min(dates) - EVENT_WINDOW), at(max(dates) + EVENT_WINDOW)
    stored = connection.execute(
        f"""
        SELECT e.article_id, epoch(e.published_at), e.space, e.vector, s.story_id
        FROM (SELECT * FROM article_embeddings WHERE published_at BETWEEN {lo} AND {hi}) e
        JOIN (SELECT article_id, story_id FROM article_stories WHERE published_at BETWEEN {lo} AND {hi}) s
          ON s.article_id = e.article_id
        WHERE list_contains(?, e.space)
        """,  # noqa: S608 (only literals we made are interpolated)
        [sorted({item.embedding.space for item in carried if item.embedding is not None})],
    ).fetchall()
    reacting = {
        row[0]
        for row in connection.execute(
            f"SELECT id FROM articles WHERE published_at BETWEEN {lo} AND {hi} AND regexp_matches(title, ?)",  # noqa: S608
            [MARKET_REACTION],
        ).fetchall()
    } | {item.article.id for item in carried if is_market_reaction(item.article.title)}
    named: dict[str, set[str]] = {}
    for article, entity in connection.execute(
        f"SELECT article_id, entity FROM article_entities WHERE published_at BETWEEN {lo} AND {hi}"  # noqa: S608
    ).fetchall():
        named.setdefault(article, set()).add(entity)
    candidates: list[_Candidate] = []
    window = EVENT_WINDOW.total_seconds()
    for space in sorted({row[2] for row in stored}):
        mine = [item for item in carried if item.embedding is not None and item.embedding.space == space]
        theirs = [row for row in stored if row[2] == space]
        their_rows = unit_rows([row[3] for row in theirs])
        their_times = np.array([float(row[1]) for row in theirs])
        their_reacting = np.array([row[0] in reacting for row in theirs])
        their_counts, naming = _entity_index([named.get(row[0], set()) for row in theirs])
        for start in range(0, len(mine), _ROWS_PER_PASS):  # a pass's matrices stay a few MB however full the window
            part = mine[start : start + _ROWS_PER_PASS]
            similar = unit_rows([item.embedding.values for item in part if item.embedding is not None]) @ their_rows.T
            later = np.array([item.article.published_at.timestamp() for item in part])[:, None] - their_times
            my_reacting = np.array([item.article.id in reacting for item in part])[:, None]
            # A reaction piece follows the report of what moved the price: the report is published no later.
            reacts = (my_reacting & ~their_reacting & (later >= 0)) | (~my_reacting & their_reacting & (later <= 0))
            alike = _may_be_one_event(
                similar, [named.get(item.article.id, set()) for item in part], their_counts, naming
            )
            near = (alike | reacts) & (np.abs(later) <= window)
            for i, j in zip(*np.nonzero(near), strict=True):
                if part[i].article.id != theirs[j][0]:
                    reaction = (part[i].article.id if my_reacting[i, 0] else theirs[j][0]) if reacts[i, j] else None
                    candidates.append(
                        _Candidate(part[i].article.id, theirs[j][0], theirs[j][4], float(similar[i, j]), reaction)
                    )
    if not candidates:
        return []
    ids = sorted({edge.new for edge in candidates} | {edge.old for edge in candidates})
    stated = {
        row[0]: amounts(f"{row[1]}\n{row[2] or ''}")
        for row in connection.execute(
            f"SELECT id, title, summary FROM articles WHERE published_at BETWEEN {lo} AND {hi}"  # noqa: S608
            " AND list_contains(?, id)",
            [ids],
        ).fetchall()
    }
    none: frozenset[Amount] = frozenset()
    # One link per article: to its best match, so an article that reads like two events joins one of them instead
    # of merging them. Same-event links rank above market-reaction ones; ties go to the greater stored id.
    chosen: dict[str, tuple[tuple[bool, float, str], _Candidate]] = {}
    for edge in candidates:
        first, second = named.get(edge.new, set()), named.get(edge.old, set())
        score = -1.0  # the entity guard holds the pair apart at any score: not scored
        if entities_agree(first, second):
            score = event_score(edge.cosine, first, second, stated.get(edge.new, none), stated.get(edge.old, none))
        if score >= EVENT_SIMILARITY:
            key, rank = edge.new, (True, score, edge.old)
        elif edge.reaction is not None and reaction_links(
            *((first, second) if edge.reaction == edge.new else (second, first))
        ):
            key, rank = edge.reaction, (False, edge.cosine, edge.old)
        else:
            continue
        if key not in chosen or rank > chosen[key][0]:
            chosen[key] = (rank, edge)
    return [(edge.new, edge.old, edge.story) for _, edge in chosen.values()]


def _entity_index(entity_sets: Sequence[set[str]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """How many entities each stored article names, and for each entity the rows of the articles naming it."""
    rows: dict[str, list[int]] = {}
    for row, entities in enumerate(entity_sets):
        for entity in entities:
            rows.setdefault(entity, []).append(row)
    counts = np.array([len(entities) for entities in entity_sets], dtype=np.float32)
    return counts, {entity: np.array(found, dtype=np.intp) for entity, found in rows.items()}


def _may_be_one_event(
    similar: np.ndarray, my_entities: Sequence[set[str]], their_counts: np.ndarray, naming: dict[str, np.ndarray]
) -> np.ndarray:
    """The pairs (new rows by stored columns) whose entities agree and whose :func:`event_score` can reach
    EVENT_SIMILARITY: the cosine plus the entities in common, amounts not counted (they only take away). Of the
    pairs of a 48 h window most are unrelated reports with a cosine well above zero; scoring only these keeps a
    write's cost in the numpy product instead of a Python call per pair."""
    shared = np.zeros(similar.shape, dtype=np.float32)
    for i, entities in enumerate(my_entities):
        for entity in entities:
            found = naming.get(entity)
            if found is not None:
                shared[i, found] += 1
    my_counts = np.array([len(entities) for entities in my_entities], dtype=np.float32)[:, None]
    union = my_counts + their_counts - shared
    jaccard = np.divide(shared, union, out=np.zeros_like(shared), where=union > 0)
    agree = (my_counts == 0) | (their_counts == 0) | (shared > 0)
    result: np.ndarray = agree & (similar + ENTITY_WEIGHT * jaccard >= EVENT_SIMILARITY - _SLACK)
    return result


@dataclass(frozen=True)
class _Candidate:
    new: str
    old: str
    story: str
    cosine: float
    reaction: str | None
    """The market-reaction piece of the two, when the pair is a reaction and a report before it."""


def _prune_embeddings(connection: duckdb.DuckDBPyConnection) -> None:
    """Keep the embeddings of the last EVENT_WINDOW before the newest article not dated in the future: older
    ones can meet no article still to come, except a late one."""
    connection.execute(
        "DELETE FROM article_embeddings WHERE published_at < (SELECT max(published_at) FROM article_embeddings"  # noqa: S608
        f" WHERE published_at <= now()) - to_seconds({EVENT_WINDOW.total_seconds()})"
    )


def _extent(
    connection: duckdb.DuckDBPyConnection,
    stories: list[str],
    fresh: Sequence[tuple[TaggedArticle, int]],
    replaced: Mapping[str, datetime],
) -> str:
    """A bound on the published_at of every member of ``stories``: the new articles' dates, and the span of
    those stories' rows (a row spans its members; members leave a story only by being re-published, so a row
    not rewritten since spans more). The rows end after the earliest date a candidate was looked for at, or
    (a replaced article's own story) after that article's former date."""
    new = [item.article.published_at for item, _ in fresh]
    floor = min([min(new) - STORY_WINDOW, *replaced.values()])
    row = connection.execute(
        f"SELECT min(first_seen), max(last_seen) FROM stories WHERE last_seen >= {at(floor)}"  # noqa: S608
        " AND list_contains(?, story_id)",
        [stories],
    ).fetchone()
    spans = [moment for moment in (row or ()) if moment is not None]
    return f"published_at BETWEEN {at(min(new + spans))} AND {at(max(new + spans))}"
