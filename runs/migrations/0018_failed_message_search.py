"""The text filter's index moves off the failed records (PostgreSQL only; nothing on SQLite).

Run M (1 M rows): the failed-record COPY took 24.4 s, about half of it the trigram GIN index on
``upper(message || ' ' || source_key)`` (165,878 records, only 31,451 distinct messages), and
every status-only UPDATE of a rollback (non-HOT: ``status`` is indexed) added each record's
trigrams to that index again (42 + 47.6 s). Now:

- ``runs_failedmessage``: each distinct message once, keyed by ``md5(message)::uuid``, with the
  trigram index on ``upper(message)``; a statement-level AFTER INSERT trigger on
  ``runs_failedrecord`` adds the new distinct messages of each statement (every writer: COPY,
  carry, ORM), a row-level AFTER UPDATE OF message trigger those a re-process rewrote, and
  deleting runs forgets the messages no record holds any more;
- on ``runs_failedrecord``: a btree on ``md5(message)::uuid`` (the records of the matching
  messages) and a trigram index on ``upper(source_key)`` alone (short keys: a few trigrams).

The filter is "a substring of the message or of the source key" (runs.selectors.queue).
"""

from django.db import migrations, models

_DIGEST = "md5(message)::uuid"

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """
    CREATE FUNCTION runs_failedmessage_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO runs_failedmessage (digest, message)
        SELECT DISTINCT md5(message)::uuid, message FROM message_new
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION runs_failedmessage_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO runs_failedmessage (digest, message)
        VALUES (md5(NEW.message)::uuid, NEW.message) ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION runs_failedmessage_forget() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM runs_failedmessage m WHERE NOT EXISTS (
            SELECT 1 FROM runs_failedrecord f WHERE md5(f.message)::uuid = m.digest);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER failed_message_insert AFTER INSERT ON runs_failedrecord
    REFERENCING NEW TABLE AS message_new
    FOR EACH STATEMENT EXECUTE FUNCTION runs_failedmessage_insert()
    """,
    """
    CREATE TRIGGER failed_message_update AFTER UPDATE OF message ON runs_failedrecord
    FOR EACH ROW WHEN (OLD.message IS DISTINCT FROM NEW.message)
    EXECUTE FUNCTION runs_failedmessage_update()
    """,
    """
    CREATE TRIGGER failed_message_forget AFTER DELETE ON runs_run
    FOR EACH STATEMENT EXECUTE FUNCTION runs_failedmessage_forget()
    """,
    f"CREATE INDEX failed_record_message_digest ON runs_failedrecord (({_DIGEST}))",
    """
    CREATE INDEX failed_record_key_trgm ON runs_failedrecord
    USING gin ((upper(source_key)) gin_trgm_ops)
    """,
    f"""
    INSERT INTO runs_failedmessage (digest, message)
    SELECT DISTINCT {_DIGEST}, message FROM runs_failedrecord ON CONFLICT DO NOTHING
    """,
    """
    CREATE INDEX failed_message_trgm ON runs_failedmessage
    USING gin ((upper(message)) gin_trgm_ops)
    """,
    "DROP INDEX IF EXISTS failed_record_search_trgm",
]

BACKWARD = [
    """
    CREATE INDEX IF NOT EXISTS failed_record_search_trgm ON runs_failedrecord
    USING gin ((upper(message || ' ' || source_key)) gin_trgm_ops)
    """,
    "DROP INDEX IF EXISTS failed_message_trgm",
    "DROP INDEX IF EXISTS failed_record_key_trgm",
    "DROP INDEX IF EXISTS failed_record_message_digest",
    "DROP TRIGGER IF EXISTS failed_message_forget ON runs_run",
    "DROP TRIGGER IF EXISTS failed_message_update ON runs_failedrecord",
    "DROP TRIGGER IF EXISTS failed_message_insert ON runs_failedrecord",
    "DROP FUNCTION IF EXISTS runs_failedmessage_forget()",
    "DROP FUNCTION IF EXISTS runs_failedmessage_update()",
    "DROP FUNCTION IF EXISTS runs_failedmessage_insert()",
]


def _on_postgresql(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0017_failed_record_batch_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="FailedMessage",
            fields=[
                ("digest", models.UUIDField(primary_key=True, serialize=False)),
                ("message", models.TextField()),
            ],
        ),
        migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD), elidable=False),
    ]
