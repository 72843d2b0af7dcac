"""manage.py run_plan <plan> [--dry-run] [--delta] [--entity E] [--target T] [--wait] [--inline]."""

from __future__ import annotations

from celery import current_app
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mappings.models import Plan, System
from migration_planner.lib.errors import ApplicationError
from runs.enums import RunMode
from runs.services import run_create

from ._progress import OfflineChecks, follow


class Command(OfflineChecks, BaseCommand):
    help = "Launch a run of a plan (load by default) and optionally follow it to the end."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("plan", help="Plan slug.")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--dry-run", action="store_true", help="Transform only; write nothing.")
        mode.add_argument(
            "--delta",
            action="store_true",
            help="Only rows changed since the last successful run (watermark column).",
        )
        parser.add_argument("--entity", default="", help="Only this entity (reload one entity).")
        parser.add_argument("--target", default="", help="Target system name (default: plan's).")
        parser.add_argument("--user", default="", help="Launch as this user (roles apply).")
        parser.add_argument("--wait", action="store_true", help="Follow with a progress bar.")
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Execute in this process instead of on Celery workers.",
        )

    def handle(self, *args, **opts) -> None:
        plan = Plan.objects.filter(slug=opts["plan"]).first()
        if plan is None:
            raise CommandError(f"No plan with slug “{opts['plan']}”.")
        target = None
        if opts["target"]:
            target = System.objects.filter(name=opts["target"]).first()
            if target is None:
                raise CommandError(f"No system named “{opts['target']}”.")
        user = (
            get_user_model().objects.filter(username=opts["user"]).first() if opts["user"] else None
        )
        mode = (
            RunMode.DRY_RUN if opts["dry_run"] else RunMode.DELTA if opts["delta"] else RunMode.LOAD
        )
        conf = current_app.conf
        saved = conf.task_always_eager, conf.task_eager_propagates
        if opts["inline"]:
            conf.task_always_eager = conf.task_eager_propagates = True
        try:
            self._launch(plan, user, target, mode, opts)
        finally:  # the command may run inside a longer-lived process (tests, call_command)
            conf.task_always_eager, conf.task_eager_propagates = saved

    def _launch(self, plan: Plan, user, target: System | None, mode: str, opts: dict) -> None:
        try:
            run = run_create(
                plan=plan, user=user, target=target, mode=mode, scope_entity=opts["entity"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Run {run.uuid} queued ({run.get_mode_display()}, version "
            f"{run.version.number}, target {run.target.name})."
        )
        if opts["wait"] or opts["inline"]:
            run = follow(run, stdout=self.stdout)
            self.stdout.write(
                f"\n{run.get_status_display()}: extracted {run.extracted:,}, loaded {run.loaded:,}"
                f" (inserted {run.inserted:,}, updated {run.updated:,}), failed {run.failed:,}, "
                f"filtered {run.filtered:,}, duplicate {run.duplicates:,}, deleted {run.deleted:,}."
            )
            if run.error:
                self.stdout.write(run.error)
            if run.status != "succeeded":
                raise SystemExit(1)
