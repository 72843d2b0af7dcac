from django.db import migrations, models


class Migration(migrations.Migration):
    """The failed records of one batch, by index: a re-run that finds a key range unchanged as
    a whole carries all the failed records of the earlier batch that answered for it."""

    dependencies = [
        ("runs", "0016_failed_record_earlier_failures"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="failedrecord",
            index=models.Index(fields=["batch"], name="failed_record_batch"),
        ),
    ]
