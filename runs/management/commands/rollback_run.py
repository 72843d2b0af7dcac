"""manage.py rollback_run <run-uuid> [--wait] [--inline]: undo a run from its ledger."""

from __future__ import annotations

import time

from celery import current_app
from django.core.management.base import BaseCommand, CommandError, CommandParser

from migration_planner.lib.errors import ApplicationError
from runs.enums import RollbackStatus
from runs.models import Run
from runs.services import run_rollback_request, run_rollback_stack_request

from ._progress import OfflineChecks


class Command(OfflineChecks, BaseCommand):
    help = "Roll a run back (reverse batch order, from the target ledger) and verify checksums."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run", help="Run UUID.")
        parser.add_argument("--wait", action="store_true")
        parser.add_argument(
            "--with-later-runs",
            action="store_true",
            help="Also roll back the later runs that wrote the same tables, newest first "
            "(each verified; stops at the first mismatch).",
        )
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Execute in this process instead of on a Celery worker.",
        )

    def handle(self, *args, **opts) -> None:
        run = Run.objects.filter(uuid=opts["run"]).first()
        if run is None:
            raise CommandError(f"No run {opts['run']}.")
        conf = current_app.conf
        saved = conf.task_always_eager, conf.task_eager_propagates
        if opts["inline"]:  # for this command only (it used to stay on in the process)
            conf.task_always_eager = conf.task_eager_propagates = True
        try:
            service = (
                run_rollback_stack_request if opts["with_later_runs"] else run_rollback_request
            )
            rollback = service(run=run, user=None, reason="manage.py rollback_run")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        finally:
            conf.task_always_eager, conf.task_eager_propagates = saved
        self.stdout.write(f"Rollback of run {run.uuid} requested.")
        if not (opts["wait"] or opts["inline"]):
            return
        while rollback.status == RollbackStatus.RUNNING:
            time.sleep(0.5)
            rollback.refresh_from_db()
        self.stdout.write(
            f"{rollback.get_status_display()}: {rollback.batches_undone} batches undone, "
            f"{rollback.rows_deleted:,} rows deleted, {rollback.rows_restored:,} restored."
        )
        if rollback.error:
            self.stdout.write(rollback.error)
        if rollback.status != RollbackStatus.VERIFIED:
            raise SystemExit(1)
