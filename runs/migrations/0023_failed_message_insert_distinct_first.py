"""The message trigger of 0019 takes each statement's distinct messages first, then their
digests (issue 20): ``SELECT DISTINCT md5(message)::uuid, message`` computed a digest for each
of a batch's ~3,300 records and de-duplicated and sorted (digest, message) pairs; the distinct
messages (~1,000 a batch, ~630 of them new) are found by a hash of the text alone, and only
they are digested and sorted. The same rows in the same (digest) order as before.
"""

from django.db import migrations

_BEFORE = "SELECT DISTINCT md5(message)::uuid, message FROM message_new ORDER BY 1"
_AFTER = (
    "SELECT md5(message)::uuid, message FROM (SELECT DISTINCT message FROM message_new) "
    "AS distinct_new ORDER BY 1"
)


def _body(select: str) -> str:
    return f"""
    CREATE OR REPLACE FUNCTION runs_failedmessage_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO runs_failedmessage (digest, message)
        {select}
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$
    """


def _replace(select: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(_body(select))

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0022_failed_record_json"),
    ]

    operations = [
        migrations.RunPython(_replace(_AFTER), _replace(_BEFORE), elidable=False),
    ]
