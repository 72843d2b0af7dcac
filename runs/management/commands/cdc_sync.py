"""manage.py cdc_sync <run-uuid>: drive a sync run (full load + CDC) in this process until it
drains — what the runs.cdc_sync task does on a worker. Stop it with the run page's Stop
(or ``--stop``), which drains first."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from migration_planner.lib.errors import ApplicationError
from runs.enums import RunStatus
from runs.models import Run
from runs.services import sync_drive, sync_stop


class Command(BaseCommand):
    help = "Run (or resume) a sync run in the foreground; --stop asks a running one to drain."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run", help="Run UUID of a sync run.")
        parser.add_argument("--stop", action="store_true", help="Request drain-and-finish.")

    def handle(self, *args, **opts) -> None:
        run = Run.objects.filter(uuid=opts["run"]).first()
        if run is None:
            raise CommandError(f"No run {opts['run']}.")
        if opts["stop"]:
            try:
                sync_stop(run=run, user=None)
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"Stop requested for sync {run.uuid}.")
            return
        # waits while another live process drives it (a crashed one's lease runs out first)
        run = sync_drive(run_id=run.pk, wait=True)
        self.stdout.write(f"Sync {run.uuid}: {run.get_status_display()}.")
        if run.status == RunStatus.FAILED:
            raise CommandError(run.error)
