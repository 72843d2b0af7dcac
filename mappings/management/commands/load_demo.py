"""manage.py load_demo [--rows N] [--reset]: the dirty legacy CRM, empty new CRM and demo plan."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from mappings.demo_setup import DEMO_USERS, demo_install


class Command(BaseCommand):
    help = "Install the demo: users per role, a dirty legacy-CRM source, empty targets, a plan."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=10_000, help="Customers to generate.")
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Rebuild source and empty the targets even if present.",
        )

    def handle(self, *args, rows: int, seed: int, reset: bool, **options) -> None:
        if rows < 1:
            self.stderr.write("--rows must be at least 1")
            raise SystemExit(2)
        started = time.monotonic()
        report = demo_install(rows=rows, seed=seed, reset=reset)
        counts = ", ".join(f"{k} {v:,}" for k, v in report.source_counts.items())
        state = "built" if report.source_rebuilt else "already present"
        self.stdout.write(f"Source data {state}: {counts}")
        plan_state = "created" if report.plan_created else "already present"
        self.stdout.write(f"Plan “{report.plan.name}” {plan_state}.")
        self.stdout.write(
            f"Demo users ({', '.join(DEMO_USERS)}), password: {settings.DEMO_PASSWORD}"
        )
        self.stdout.write(self.style.SUCCESS(f"Demo ready in {time.monotonic() - started:.1f} s."))
