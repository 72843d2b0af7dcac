"""Tokens issued by DRF's authtoken (stored in plain text) keep working as personal access
tokens stored hashed; the plain-text rows are then deleted (the table itself is left)."""

import hashlib
import uuid

from django.db import migrations


def carry_over(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    token_model = apps.get_model("accounts", "PersonalAccessToken")
    with connection.cursor() as cur:
        cur.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cur.fetchall()
        for key, user_id, created in rows:
            token = token_model.objects.create(
                uuid=uuid.uuid4(), user_id=user_id, name="API token (carried over)",
                prefix=key[:8], digest=hashlib.sha256(key.encode("utf-8")).hexdigest())
            token_model.objects.filter(pk=token.pk).update(created_at=created)
        cur.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(carry_over, migrations.RunPython.noop)]
