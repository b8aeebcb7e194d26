"""The DuckDB schema, as numbered migrations applied in order and recorded in ``schema_version``."""

from __future__ import annotations

import duckdb

__all__ = ["MIGRATIONS", "current_version", "migrate"]

MIGRATIONS: tuple[str, ...] = (
    # 1: the walking skeleton's tables
    """
    CREATE TABLE articles (
        id            VARCHAR PRIMARY KEY,
        url           VARCHAR NOT NULL,
        title         VARCHAR NOT NULL,
        summary       VARCHAR NOT NULL,
        body          VARCHAR,
        source        VARCHAR NOT NULL,
        connector     VARCHAR NOT NULL,
        language      VARCHAR,
        published_at  TIMESTAMPTZ NOT NULL,
        fetched_at    TIMESTAMPTZ NOT NULL,
        labels        VARCHAR[] NOT NULL,
        model_version VARCHAR NOT NULL,
        tagged_at     TIMESTAMPTZ NOT NULL,
        stored_at     TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE article_dynamics (
        article_id    VARCHAR NOT NULL,
        dynamic       VARCHAR NOT NULL,
        score         DOUBLE NOT NULL,
        label         BOOLEAN NOT NULL,
        model_version VARCHAR NOT NULL,
        PRIMARY KEY (article_id, dynamic)
    );
    CREATE TABLE indicators (
        indicator     VARCHAR NOT NULL,
        dynamic       VARCHAR NOT NULL,
        bucket_width  VARCHAR NOT NULL,
        bucket_start  TIMESTAMPTZ NOT NULL,
        value         DOUBLE NOT NULL,
        updated_at    TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (indicator, dynamic, bucket_width, bucket_start)
    );
    CREATE TABLE alerts (
        id            VARCHAR PRIMARY KEY,
        rule          VARCHAR NOT NULL,
        severity      VARCHAR NOT NULL,
        dynamic       VARCHAR NOT NULL,
        indicator     VARCHAR NOT NULL,
        bucket_width  VARCHAR NOT NULL,
        bucket_start  TIMESTAMPTZ NOT NULL,
        value         DOUBLE NOT NULL,
        threshold     DOUBLE NOT NULL,
        message       VARCHAR NOT NULL,
        fired_at      TIMESTAMPTZ NOT NULL,
        stored_at     TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE deliveries (
        id              VARCHAR PRIMARY KEY,
        alert_id        VARCHAR NOT NULL,
        webhook         VARCHAR NOT NULL,
        status          VARCHAR NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMPTZ NOT NULL,
        last_status     INTEGER,
        last_error      VARCHAR,
        created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
        delivered_at    TIMESTAMPTZ
    );
    CREATE TABLE dead_letters (
        id            VARCHAR PRIMARY KEY,
        stage         VARCHAR NOT NULL,
        reason        VARCHAR NOT NULL,
        payload       VARCHAR NOT NULL,
        origin        VARCHAR NOT NULL,
        received_at   TIMESTAMPTZ NOT NULL
    );
    """,
    # 2: alerting (issue 4): alert labels and evidence, grouped notifications, silences
    """
    CREATE TABLE alert_details (
        alert_id      VARCHAR PRIMARY KEY,
        status        VARCHAR NOT NULL,
        kind          VARCHAR NOT NULL,
        dedup_key     VARCHAR NOT NULL,
        labels        VARCHAR NOT NULL,
        indicator_values VARCHAR NOT NULL,
        evidence      VARCHAR NOT NULL
    );
    CREATE TABLE notifications (
        id              VARCHAR PRIMARY KEY,
        webhook         VARCHAR NOT NULL,
        group_key       VARCHAR NOT NULL,
        alert_ids       VARCHAR[] NOT NULL,
        status          VARCHAR NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMPTZ NOT NULL,
        last_status     INTEGER,
        last_error      VARCHAR,
        created_at      TIMESTAMPTZ NOT NULL,
        delivered_at    TIMESTAMPTZ
    );
    CREATE TABLE notification_members (
        delivery_id     VARCHAR PRIMARY KEY,
        notification_id VARCHAR NOT NULL
    );
    CREATE TABLE silences (
        id          VARCHAR PRIMARY KEY,
        matchers    VARCHAR[] NOT NULL,
        comment     VARCHAR NOT NULL,
        created_by  VARCHAR NOT NULL,
        starts_at   TIMESTAMPTZ NOT NULL,
        ends_at     TIMESTAMPTZ NOT NULL,
        created_at  TIMESTAMPTZ NOT NULL
    );
    """,
    # 3: indicators per dynamic × entity × source, entities, near-duplicate stories, views (issue 7; docs/schema.md)
    """
    CREATE TABLE indicators_v3 (
        indicator     VARCHAR NOT NULL,
        dynamic       VARCHAR NOT NULL,
        entity        VARCHAR NOT NULL DEFAULT '*',
        source        VARCHAR NOT NULL DEFAULT '*',
        bucket_width  VARCHAR NOT NULL,
        bucket_start  TIMESTAMPTZ NOT NULL,
        value         DOUBLE NOT NULL,
        updated_at    TIMESTAMPTZ NOT NULL
        -- unique by (indicator, dynamic, entity, source, bucket_width, bucket_start): the store keeps it so.
        -- No index: recomputing a bucket rewrites thousands of rows, and an ART index made that 5x slower.
    );
    INSERT INTO indicators_v3
        SELECT indicator, dynamic, '*', '*', bucket_width, bucket_start, value, updated_at FROM indicators;
    DROP TABLE indicators;
    ALTER TABLE indicators_v3 RENAME TO indicators;
    CREATE TABLE article_entities (
        article_id    VARCHAR NOT NULL,
        entity        VARCHAR NOT NULL,
        mentions      INTEGER NOT NULL,
        PRIMARY KEY (article_id, entity)
    );
    CREATE TABLE article_stories (
        article_id    VARCHAR PRIMARY KEY,
        story_id      VARCHAR NOT NULL,
        simhash       UBIGINT NOT NULL,
        published_at  TIMESTAMPTZ NOT NULL,
        novelty       DOUBLE NOT NULL
    );
    CREATE TABLE stories (
        story_id      VARCHAR PRIMARY KEY,
        title         VARCHAR NOT NULL,
        first_seen    TIMESTAMPTZ NOT NULL,
        last_seen     TIMESTAMPTZ NOT NULL,
        articles      INTEGER NOT NULL,
        sources       INTEGER NOT NULL
    );
    CREATE TABLE maintenance_runs (
        ran_at          TIMESTAMPTZ NOT NULL,
        bodies_dropped  BIGINT NOT NULL,
        file_bytes      BIGINT NOT NULL,
        row_counts      VARCHAR NOT NULL
    );
    CREATE VIEW daily_dynamic_volume AS
        SELECT bucket_start AS day, dynamic,
               max(value) FILTER (WHERE indicator = 'article_count') AS articles,
               max(value) FILTER (WHERE indicator = 'story_count') AS stories,
               max(value) FILTER (WHERE indicator = 'source_count') AS sources,
               max(value) FILTER (WHERE indicator = 'score_sum') AS score_sum,
               max(value) FILTER (WHERE indicator = 'share') AS share,
               max(value) FILTER (WHERE indicator = 'novelty') AS novelty,
               max(value) FILTER (WHERE indicator = 'zscore') AS zscore,
               max(value) FILTER (WHERE indicator = 'momentum') AS momentum
        FROM indicators
        WHERE bucket_width = '1d' AND entity = '*' AND source = '*' AND dynamic <> '*'
        GROUP BY bucket_start, dynamic;
    CREATE VIEW top_entities AS
        SELECT dynamic, entity, sum(value) AS articles, max(bucket_start) AS last_day,
               rank() OVER (PARTITION BY dynamic ORDER BY sum(value) DESC, entity) AS rank
        FROM indicators
        WHERE indicator = 'article_count' AND bucket_width = '1d' AND entity <> '*' AND source = '*'
          AND dynamic <> '*' AND bucket_start >= now() - INTERVAL 30 DAYS
        GROUP BY dynamic, entity;
    CREATE VIEW latest_alerts AS
        SELECT a.fired_at, a.severity, a.rule, a.dynamic, a.indicator, a.bucket_width, a.bucket_start, a.value,
               a.threshold, a.message, x.status,
               json_extract_string(x.evidence, '$.articles[*].title') AS evidence,
               x.evidence AS evidence_json
        FROM (SELECT * FROM alerts ORDER BY fired_at DESC, id LIMIT 100) a
        LEFT JOIN alert_details x ON x.alert_id = a.id
        ORDER BY a.fired_at DESC, a.id;
    """,
    # 4: no primary keys on the tables that grow with every article (issue 20). A key is an ART index, and DuckDB
    # holds an ART in memory, outside what it can evict: to check a key on insert, to merge a transaction's keys at
    # commit, to build it (a bulk load, the snapshot's COPY FROM DATABASE). With ids that are hashes every write
    # touches the whole tree, so past a few million articles a 500-article write failed under the 1 GB
    # storage.memory_limit. The store keeps these tables unique by id itself: it deletes an article's rows before it
    # inserts them, in the same transaction (as it does for indicators since migration 3).
    """
    CREATE TABLE articles_v4 (
        id            VARCHAR NOT NULL,
        url           VARCHAR NOT NULL,
        title         VARCHAR NOT NULL,
        summary       VARCHAR NOT NULL,
        body          VARCHAR,
        source        VARCHAR NOT NULL,
        connector     VARCHAR NOT NULL,
        language      VARCHAR,
        published_at  TIMESTAMPTZ NOT NULL,
        fetched_at    TIMESTAMPTZ NOT NULL,
        labels        VARCHAR[] NOT NULL,
        model_version VARCHAR NOT NULL,
        tagged_at     TIMESTAMPTZ NOT NULL,
        stored_at     TIMESTAMPTZ NOT NULL DEFAULT now()
        -- unique by id: the store keeps it so
    );
    INSERT INTO articles_v4 SELECT * FROM articles;
    DROP TABLE articles;
    ALTER TABLE articles_v4 RENAME TO articles;
    CREATE TABLE article_dynamics_v4 (
        article_id    VARCHAR NOT NULL,
        dynamic       VARCHAR NOT NULL,
        score         DOUBLE NOT NULL,
        label         BOOLEAN NOT NULL,
        model_version VARCHAR NOT NULL
        -- unique by (article_id, dynamic): the store keeps it so
    );
    INSERT INTO article_dynamics_v4 SELECT * FROM article_dynamics;
    DROP TABLE article_dynamics;
    ALTER TABLE article_dynamics_v4 RENAME TO article_dynamics;
    CREATE TABLE article_entities_v4 (
        article_id    VARCHAR NOT NULL,
        entity        VARCHAR NOT NULL,
        mentions      INTEGER NOT NULL
        -- unique by (article_id, entity): the store keeps it so
    );
    INSERT INTO article_entities_v4 SELECT * FROM article_entities;
    DROP TABLE article_entities;
    ALTER TABLE article_entities_v4 RENAME TO article_entities;
    CREATE TABLE article_stories_v4 (
        article_id    VARCHAR NOT NULL,
        story_id      VARCHAR NOT NULL,
        simhash       UBIGINT NOT NULL,
        published_at  TIMESTAMPTZ NOT NULL,
        novelty       DOUBLE NOT NULL
        -- unique by article_id: the store keeps it so
    );
    INSERT INTO article_stories_v4 SELECT * FROM article_stories;
    DROP TABLE article_stories;
    ALTER TABLE article_stories_v4 RENAME TO article_stories;
    CREATE TABLE stories_v4 (
        story_id      VARCHAR NOT NULL,
        title         VARCHAR NOT NULL,
        first_seen    TIMESTAMPTZ NOT NULL,
        last_seen     TIMESTAMPTZ NOT NULL,
        articles      INTEGER NOT NULL,
        sources       INTEGER NOT NULL
        -- unique by story_id: the store keeps it so
    );
    INSERT INTO stories_v4 SELECT * FROM stories;
    DROP TABLE stories;
    ALTER TABLE stories_v4 RENAME TO stories;
    """,
    # 5: a write's cost depends on the write, not on the store (issue 20). Without an index, DuckDB finds rows by
    # reading a table, and skips a row group (~122,880 rows) only when its min/max of a filtered column rule it out
    # (zone maps). So the per-article tables all carry published_at (dynamics and entities now too; they are
    # rewritten in published_at order), which follows the order rows are written in, and a write bounds every
    # statement by the dates it touches. A story row's published_at is its article's again (it kept the date of
    # its first write when an article was re-published with the same text), and the stories of those articles are
    # recomputed, so a story's row spans its members.
    """
    CREATE TABLE article_dynamics_v5 (
        article_id    VARCHAR NOT NULL,
        dynamic       VARCHAR NOT NULL,
        score         DOUBLE NOT NULL,
        label         BOOLEAN NOT NULL,
        model_version VARCHAR NOT NULL,
        published_at  TIMESTAMPTZ NOT NULL  -- the article's
        -- unique by (article_id, dynamic): the store keeps it so
    );
    INSERT INTO article_dynamics_v5
        SELECT d.*, a.published_at FROM article_dynamics d JOIN articles a ON a.id = d.article_id
        ORDER BY a.published_at;
    DROP TABLE article_dynamics;
    ALTER TABLE article_dynamics_v5 RENAME TO article_dynamics;
    CREATE TABLE article_entities_v5 (
        article_id    VARCHAR NOT NULL,
        entity        VARCHAR NOT NULL,
        mentions      INTEGER NOT NULL,
        published_at  TIMESTAMPTZ NOT NULL  -- the article's
        -- unique by (article_id, entity): the store keeps it so
    );
    INSERT INTO article_entities_v5
        SELECT e.*, a.published_at FROM article_entities e JOIN articles a ON a.id = e.article_id
        ORDER BY a.published_at;
    DROP TABLE article_entities;
    ALTER TABLE article_entities_v5 RENAME TO article_entities;
    CREATE TEMP TABLE _moved_stories AS
        SELECT DISTINCT s.story_id FROM article_stories s JOIN articles a ON a.id = s.article_id
        WHERE a.published_at <> s.published_at;
    UPDATE article_stories SET published_at = a.published_at FROM articles a
        WHERE a.id = article_stories.article_id AND a.published_at <> article_stories.published_at;
    DELETE FROM stories WHERE story_id IN (SELECT story_id FROM _moved_stories);
    INSERT INTO stories
        SELECT s.story_id, arg_min(a.title, (s.published_at, s.article_id)), min(s.published_at),
               max(s.published_at), count(*), count(DISTINCT a.source)
        FROM article_stories s JOIN articles a ON a.id = s.article_id
        WHERE s.story_id IN (SELECT story_id FROM _moved_stories) GROUP BY s.story_id;
    DROP TABLE _moved_stories;
    """,
    # 6: baselines resume from stored state (issue 20). Each dynamic's EWMA mean and variance and momentum's fast
    # and slow EWMAs after every bucket of its series, so a write recomputes its baselines from the bucket before
    # the earliest it touched instead of from the series' start. Filled for a store's existing series when it is
    # opened for writing (Store.open), as rebuild fills it.
    """
    CREATE TABLE baseline_state (
        dynamic       VARCHAR NOT NULL,
        bucket_width  VARCHAR NOT NULL,
        bucket_start  TIMESTAMPTZ NOT NULL,
        mean          DOUBLE NOT NULL,
        variance      DOUBLE NOT NULL,
        fast          DOUBLE NOT NULL,
        slow          DOUBLE NOT NULL
        -- unique by (dynamic, bucket_width, bucket_start): the store keeps it so
    );
    """,
    # 7: measures kept by increments (issue 20), their sums of scores and novelty in whole nanounits. The derived
    # rows of a store from before are rebuilt when it is first opened for writing (Store.open); the row stays
    # until that rebuild has completed, so one cut short runs again.
    """
    CREATE TABLE pending_rebuild (reason VARCHAR NOT NULL);
    INSERT INTO pending_rebuild VALUES ('schema 7: measures kept by increments, sums in whole nanounits');
    """,
    # 8: entity kinds and roles (issue 21; docs/entities.md). Each article's entity row says what the entity is
    # (company, chip_or_product, person, country, government_body, fund) and the roles the article gives it
    # (buyer, displaced_vendor, party): still one row per article and entity, so nothing counted per entity
    # changes. Stored rows are re-matched from their articles' text by the rebuild this queues (Store.open).
    """
    ALTER TABLE article_entities ADD COLUMN IF NOT EXISTS kind VARCHAR DEFAULT 'company';
    ALTER TABLE article_entities ADD COLUMN IF NOT EXISTS roles VARCHAR[];  -- NULL as [] (a DEFAULT [] would need
    -- a function that replaying the WAL after a crash cannot load)
    INSERT INTO pending_rebuild VALUES ('schema 8: entity kinds and roles, re-matched from stored text');
    """,
    # 9: event clustering (issue 21). The int8 sentence embeddings of the last EVENT_WINDOW of articles
    # (signals/stories.py), so an article arriving after a restart meets the reports it would have met without
    # one; older rows are removed by each write (storage/clustering.py). ``space`` names the encoder (model and
    # adapter): only vectors of one space are compared.
    """
    CREATE TABLE article_embeddings (
        article_id    VARCHAR NOT NULL,
        space         VARCHAR NOT NULL,
        vector        BLOB NOT NULL,
        published_at  TIMESTAMPTZ NOT NULL  -- the article's
        -- unique by article_id: the store keeps it so
    );
    """,
    # 10: notification timers (issue 18), kept here because with the embedded broker only DuckDB survives a crash.
    # alert_groups is Alertmanager's aggregation group and its notification log in one row per webhook and group
    # key: when the group's next flush is due (group_wait after its first alert, then every group_interval), when
    # it last notified and which alerts that notification carried (so a restart neither repeats early nor forgets a
    # due send). alert_group_members holds the alerts a group holds now and whether a notification carried each
    # (a resolution is sent only for a firing that was). Both tables stay small: a group is deleted once empty.
    # notifications.repeat marks a notification that re-sent unchanged alerts (repeat_interval).
    """
    CREATE TABLE alert_groups (
        webhook           VARCHAR NOT NULL,
        group_key         VARCHAR NOT NULL,
        started_at        TIMESTAMPTZ NOT NULL,
        next_flush_at     TIMESTAMPTZ NOT NULL,
        last_sent_at      TIMESTAMPTZ,
        last_notification VARCHAR,
        sent_firing       VARCHAR[] NOT NULL,
        sent_resolved     VARCHAR[] NOT NULL,
        repeat_due_at     TIMESTAMPTZ,
        PRIMARY KEY (webhook, group_key)
    );
    CREATE TABLE alert_group_members (
        delivery_id   VARCHAR PRIMARY KEY,
        webhook       VARCHAR NOT NULL,
        group_key     VARCHAR NOT NULL,
        alert_id      VARCHAR NOT NULL,
        rule          VARCHAR NOT NULL,
        dedup_key     VARCHAR NOT NULL,
        status        VARCHAR NOT NULL,
        bucket_start  TIMESTAMPTZ NOT NULL,
        joined_at     TIMESTAMPTZ NOT NULL,
        notified_at   TIMESTAMPTZ
    );
    ALTER TABLE notifications ADD COLUMN repeat BOOLEAN NOT NULL DEFAULT false;
    """,
    # 11: analysts' corrections of labels (issue 17), one row per dynamic added or removed. Each keeps the text the
    # model read and the labels it gave, so a correction outlives its article's retention.
    """
    CREATE TABLE label_corrections (
        article_id    VARCHAR NOT NULL,
        dynamic       VARCHAR NOT NULL,
        action        VARCHAR NOT NULL,   -- 'add' or 'remove'
        content       VARCHAR NOT NULL,
        model_labels  VARCHAR[] NOT NULL,
        model_version VARCHAR NOT NULL,
        corrected_by  VARCHAR NOT NULL,
        corrected_at  TIMESTAMPTZ NOT NULL
    );
    """,
    # 12: stable story ids (issue 21). A story's id is its article fetched first, so a late report leaves it as it
    # is; when one article joins two stories, the merged story keeps one of their ids and the other is retired
    # here, mapped to the id it was merged into, so a link or a digest that named it still finds the story
    # (storage/story_aliases.py). The stories of a store from before (named by their earliest article) take their
    # ids by that rule now, once, the former ids kept as aliases; counts do not depend on ids, so nothing is
    # rebuilt.
    """
    CREATE TABLE story_aliases (
        alias         VARCHAR NOT NULL,   -- a retired story id
        story_id      VARCHAR NOT NULL,   -- the story it was merged into (rewritten when that one merges in turn)
        merged_at     TIMESTAMPTZ NOT NULL
        -- unique by alias: the store keeps it so
    );
    CREATE TEMP TABLE _story_roots AS
        SELECT former, root FROM (
            SELECT s.story_id AS former, arg_min(s.article_id, (a.fetched_at, s.article_id)) AS root
            FROM article_stories s JOIN articles a ON a.id = s.article_id GROUP BY s.story_id
        ) WHERE former <> root;
    INSERT INTO story_aliases SELECT former, root, now() FROM _story_roots;
    UPDATE article_stories SET story_id = r.root FROM _story_roots r WHERE article_stories.story_id = r.former;
    UPDATE stories SET story_id = r.root FROM _story_roots r WHERE stories.story_id = r.former;
    DROP TABLE _story_roots;
    """,
    # 13: label explanations (issue 17). For each label of an article, the sentence that added most to the
    # dynamic's logit and that share, in log-odds (signals/explanations.py); replaced with the article's labels
    # (storage/explanations.py).
    """
    CREATE TABLE article_explanations (
        article_id    VARCHAR NOT NULL,
        dynamic       VARCHAR NOT NULL,
        sentence      VARCHAR NOT NULL,
        score         DOUBLE NOT NULL,
        model_version VARCHAR NOT NULL,
        published_at  TIMESTAMPTZ NOT NULL  -- the article's
        -- unique by (article_id, dynamic): the store keeps it so
    );
    """,
    # 14: tag versions (issue 18). When an article is tagged again by another classifier version (``stackwatch
    # reclassify``, a new model meeting a re-read article), its former tags move here, with the span they were
    # the store's: from ``valid_from`` (when they were written) to ``superseded_at``. An article's current tags
    # hold from its newest ``superseded_at`` here (else from its ``stored_at``): docs/sql.md reads tags, and counts
    # of them, as they were known at a past time, or of one model version.
    """
    CREATE TABLE tag_history (
        article_id    VARCHAR NOT NULL,
        dynamic       VARCHAR NOT NULL,
        score         DOUBLE NOT NULL,
        label         BOOLEAN NOT NULL,
        model_version VARCHAR NOT NULL,
        published_at  TIMESTAMPTZ NOT NULL,  -- the article's
        valid_from    TIMESTAMPTZ NOT NULL,
        superseded_at TIMESTAMPTZ NOT NULL
    );
    """,
    # 15: the classifier versions behind each bucket's numbers (issue 18). Derived from the tags at query time, so
    # it is true of the current indicators whatever rewrote them: a write, a rebuild or a reclassify.
    """
    CREATE VIEW indicator_versions AS
        SELECT '1h' AS bucket_width, date_trunc('hour', published_at) AS bucket_start, dynamic, model_version,
               count(*) AS articles
        FROM article_dynamics WHERE label GROUP BY ALL
        UNION ALL
        SELECT '1d', date_trunc('day', published_at), dynamic, model_version, count(*)
        FROM article_dynamics WHERE label GROUP BY ALL
        UNION ALL
        SELECT '1h', date_trunc('hour', published_at), '*', model_version, count(*) FROM articles GROUP BY ALL
        UNION ALL
        SELECT '1d', date_trunc('day', published_at), '*', model_version, count(*) FROM articles GROUP BY ALL;
    """,
    # 16: a former tag keeps the explanation it had (issue 17): why the former version labelled the article.
    """
    ALTER TABLE tag_history ADD COLUMN sentence VARCHAR;
    ALTER TABLE tag_history ADD COLUMN sentence_score DOUBLE;
    """,
    # 17: former indicator values (issue 18). ``stackwatch reclassify`` keeps every indicator row its new tags
    # changed (counts, shares, signals, story counts, every scope), with the classifier versions that had tagged
    # the bucket, from ``valid_from`` (the row's last update) to ``superseded_at`` (the run); a NULL value marks a
    # row the run added. The former model's series stay readable, and so do the numbers as they were known before
    # (storage/indicator_history.py).
    """
    CREATE TABLE indicator_history (
        indicator      VARCHAR NOT NULL,
        dynamic        VARCHAR NOT NULL,
        entity         VARCHAR NOT NULL,
        source         VARCHAR NOT NULL,
        bucket_width   VARCHAR NOT NULL,
        bucket_start   TIMESTAMPTZ NOT NULL,
        value          DOUBLE,
        model_versions VARCHAR[] NOT NULL,
        valid_from     TIMESTAMPTZ,
        superseded_at  TIMESTAMPTZ NOT NULL
    );
    """,
)


def current_version(connection: duckdb.DuckDBPyConnection) -> int:
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
    )
    row = connection.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(connection: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration not applied yet, each in its own transaction. Returns the schema version."""
    version = current_version(connection)
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        connection.execute("BEGIN TRANSACTION")
        try:
            connection.execute(script)
            connection.execute("INSERT INTO schema_version VALUES (?, now())", [number])
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        version = number
    return version
