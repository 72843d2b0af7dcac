"""Validation fixtures: reuse the run fixtures (demo plan on throwaway PostgreSQL, eager Celery)."""

from tests.runs.conftest import *  # noqa: F403 - the demo source/target/plan and eager_celery
