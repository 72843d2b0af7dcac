"""Django side of the benchmark: systems and a plan holding only the demo's accounts entity.

Run as ``python -m bench.app_setup --source-db D --target-db D --host H --port P --user U
--batch-size N`` with DATABASE_URL pointing at the (migrated) app database. Idempotent: an
existing plan only gets its batch size updated. Prints one JSON line: the plan slug, its
entities and the lookup entries (run_bench compares them with the SQL reference's).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--source-db", "--target-db", "--host", "--user"):
        parser.add_argument(name, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "migration_planner.settings")
    import django

    django.setup()
    print(json.dumps(_install(args)))


def _system(name: str, role: str, env: str, dbname: str, args: argparse.Namespace):
    from mappings.models import System

    system, _ = System.objects.update_or_create(
        name=name,
        defaults={
            "kind": "postgresql",
            "role": role,
            "environment": env,
            "host": args.host,
            "port": args.port,
            "database": dbname,
            "username": args.user,
        },
    )
    return system


def _install(args: argparse.Namespace) -> dict:
    from django.contrib.auth import get_user_model

    from mappings.demo import legacy_crm
    from mappings.demo_plan import demo_plan_install
    from mappings.models import LookupEntry

    source = _system("Bench legacy CRM", "source", "dev", args.source_db, args)
    target = _system("Bench new CRM", "target", "uat", args.target_db, args)
    owner, _ = get_user_model().objects.get_or_create(username="bench")
    plan, _ = demo_plan_install(
        source=source,
        target=target,
        owner=owner,
        us_states=legacy_crm.US_STATES,
        today=dt.date.today(),
    )
    plan.entities.exclude(name="accounts").delete()
    # the demo expects at most 5,000,000 customers (a blocking pre-validation rule): the bench's
    # larger sizes would be refused before writing anything; the check still counts the rows
    plan.validation_rules.filter(kind="row_count_range", entity="accounts").update(
        params={"min": 1, "max": 1_000_000_000}
    )
    plan.batch_size = args.batch_size
    plan.parallelism = 2
    plan.save()
    lookups: dict[str, dict[str, str]] = {}
    for e in LookupEntry.objects.filter(table__plan=plan).select_related("table"):
        lookups.setdefault(e.table.name, {})[e.key] = e.value
    return {
        "plan": plan.slug,
        "entities": list(plan.entities.values_list("name", flat=True)),
        "batch_size": plan.batch_size,
        "failure_threshold_pct": str(plan.failure_threshold_pct),
        "lookups": lookups,
    }


if __name__ == "__main__":
    main()
