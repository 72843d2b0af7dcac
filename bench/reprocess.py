"""Re-process N failed records of a finished run (issue 20's line "re-process of 5,000 failed
records ≤ 10 s"), as a user fixing the error queue would.

Run as ``python -m bench.reprocess --run UUID [--records 5000]`` with DATABASE_URL pointing at
the bench's app database (run_bench calls it after the rehearsal re-run was rolled back, before
the run's own rollback, which then undoes the re-processed rows too). Corrects the e-mail of the
run's first N failed records whose only failing field is the e-mail (status "fixed"), times one
``failed_record_reprocess`` call (reconcile=False: the reconciliation again is the report's) and
prints one JSON line. Not a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def measure(run_uuid: str, records: int) -> dict:
    """Correct ``records`` e-mail failures of the run, re-process them, return the figures."""
    from django.db import transaction

    from runs.models import FailedRecord, Run
    from runs.services import failed_record_reprocess

    run = Run.objects.get(uuid=run_uuid)
    ids = list(
        FailedRecord.objects.filter(run=run, field="email", status="open")
        .order_by("pk")
        .values_list("pk", flat=True)[:records]
    )
    started = time.perf_counter()
    with transaction.atomic():
        for record in FailedRecord.objects.filter(pk__in=ids):
            record.corrected_values = {"Email_Address": f"fixed{record.source_key}@example.com"}
            record.status = "fixed"
            record.save(update_fields=["corrected_values", "status"])
    correct_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = failed_record_reprocess(
        records=FailedRecord.objects.filter(pk__in=ids), user=None, reconcile=False
    )
    seconds = time.perf_counter() - started
    return {
        "records": len(ids),
        "fixed": result.fixed,
        "still_failing": result.still_failing,
        "seconds": seconds,
        "correct_seconds": correct_seconds,
        "method": "failed_record_reprocess(records=<N corrected e-mail failures>, "
        "reconcile=False), one call, timed alone",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", required=True)
    parser.add_argument("--records", type=int, default=5_000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "migration_planner.settings")
    import django

    django.setup()
    print(json.dumps(measure(args.run, args.records)))


if __name__ == "__main__":
    main()
