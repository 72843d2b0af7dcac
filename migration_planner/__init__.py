"""Migration Planner project package; exposes the Celery app so `shared_task` binds to it."""

import os

# Arrow allocates through glibc malloc instead of its own mimalloc pool, which kept freed
# batch memory: a worker child's peak at 20,000-row batches fell from 308 to 230 MB, and
# malloc_trim (migration_planner.lib.memory) can hand it back. Must precede pyarrow's import.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

from .celery import app as celery_app  # noqa: E402 - after the environment it depends on

__all__ = ("celery_app",)
