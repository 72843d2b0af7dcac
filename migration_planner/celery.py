"""Celery application: broker from REDIS_URL, tasks autodiscovered from the apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "migration_planner.settings")

app = Celery("migration_planner")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
