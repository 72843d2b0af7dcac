"""Celery application: broker from REDIS_URL, tasks autodiscovered from the apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "migration_planner.settings")
# The worker's Django fixup would run the system checks, which import every URLconf and view
# (and so pandas and pyarrow) into the worker's parent process: ~100 MB more in a process
# that never executes a task. `manage.py check` runs them in CI and at web start instead.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

app = Celery("migration_planner")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
