"""The message trigger of 0018 inserts each statement's new messages in digest order.

Two workers' batches commit their failed records concurrently and often share messages: an
``INSERT … ON CONFLICT DO NOTHING`` that meets another transaction's uncommitted row waits for
it, so two statements inserting the same two new messages in opposite orders (a hash
aggregate's order) could deadlock, failing a batch attempt. In one order, the second waits.
"""

from django.db import migrations


def _body(order: str) -> str:
    return f"""
    CREATE OR REPLACE FUNCTION runs_failedmessage_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO runs_failedmessage (digest, message)
        SELECT DISTINCT md5(message)::uuid, message FROM message_new{order}
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$
    """


def _replace(order: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(_body(order))

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0018_failed_message_search"),
    ]

    operations = [
        migrations.RunPython(_replace(" ORDER BY 1"), _replace(""), elidable=False),
    ]
