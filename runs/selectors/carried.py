"""Reads of failures carried by reference (runs.services.carry_refs): which records a run
shows and as what. A run's view is its own records and the records of the batches it carries
by reference, less those it holds a copy of; a referred record shows as its status in the
newest live reference's view, ``carried`` in an earlier reference's and in the holding run's,
``superseded`` in a rolled-back reference's. Across runs each record is listed once, under the
run answering for it. Nothing changes where no batch is carried by reference (SQLite always)."""

from __future__ import annotations

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    UUIDField,
    Value,
    When,
)

from ..enums import FailedRecordStatus
from ..models import CarriedBatch, FailedRecord, Run

EFFECTIVE = "eff_status"  # the annotation of a run's view that filters and shows the status


def carries_any(run: Run | None = None) -> bool:
    """Whether ``run`` (None: any run) refers to or holds a batch carried by reference: one
    query on PostgreSQL, none elsewhere."""
    if connection.vendor != "postgresql":
        return False
    refs = CarriedBatch.objects.all()
    if run is not None:
        refs = refs.filter(Q(run_id=run.pk) | Q(source_run_id=run.pk))
    return refs.exists()


def _refs(**kwargs) -> QuerySet[CarriedBatch]:
    return CarriedBatch.objects.filter(source_batch_id=OuterRef("batch_id"), **kwargs)


def _own_key(run: Run) -> Exists:
    return Exists(
        FailedRecord.objects.filter(
            run_id=run.pk, entity=OuterRef("entity"), source_key=OuterRef("source_key")
        )
    )


def _own_shown_as_stored(run: Run) -> Q:
    """``run``'s own records that its view can show as their stored status: all of them but
    those of its batches a live later run carries by reference (shown carried). Names the
    other batches (the batch index answers it), so a run whose batches are all carried reads
    none of their records."""
    held = CarriedBatch.objects.filter(source_run_id=run.pk, rolled_back=False)
    held_ids = set(held.values_list("source_batch_id", flat=True))
    if not held_ids:
        return Q(run_id=run.pk)
    others = [b for b in run.batches.values_list("id", flat=True) if b not in held_ids]
    return Q(run_id=run.pk) & (Q(batch_id__isnull=True) | Q(batch_id__in=others))


def run_view(
    qs: QuerySet[FailedRecord], run: Run, *, stored_status: bool = False
) -> QuerySet[FailedRecord]:
    """``qs`` narrowed to what ``run`` shows (its records and those it carries by reference,
    less the ones it holds a copy of), annotated with the status it shows them as.
    ``stored_status``: the caller keeps only records shown as their stored status (not
    carried or superseded), so the records the view shows carried are left out up front."""
    refs = CarriedBatch.objects.filter(run_id=run.pk)
    own = _own_shown_as_stored(run) if stored_status else Q(run_id=run.pk)
    member = own
    if not stored_status or refs.exists():
        referred = refs.values("source_batch_id")
        member = own | (Q(batch_id__in=Subquery(referred)) & ~_own_key(run))
    status = Case(
        When(Q(run_id=run.pk) & Exists(_refs(rolled_back=False)), then=Value("carried")),
        When(
            ~Q(run_id=run.pk) & Exists(_refs(run_id=run.pk, rolled_back=True)),
            then=Value(FailedRecordStatus.SUPERSEDED),
        ),
        When(
            ~Q(run_id=run.pk) & Exists(_refs(run_id__gt=run.pk, rolled_back=False)),
            then=Value(FailedRecordStatus.CARRIED),
        ),
        default=F("status"),
        output_field=CharField(),
    )
    view_run = Value(run.uuid, output_field=UUIDField())
    return qs.filter(member).annotate(**{EFFECTIVE: status, "view_run_uuid": view_run})


def failed_records_of(*, run: Run, entity: str = "") -> QuerySet[FailedRecord]:
    """Every failed record ``run`` accounts for, whatever their status: its own and those it
    carries by reference (not copied into it). Read-only."""
    qs = FailedRecord.objects.all()
    if entity:
        qs = qs.filter(entity=entity)
    if not carries_any(run):
        return qs.filter(run=run)
    return run_view(qs, run)


def records_as_viewed(records: list[FailedRecord], run: Run | None) -> list[FailedRecord]:
    """The page's records as the view shows them (in memory only, never saved): in a run's
    view its status there and the run itself; across runs, a referred record under the run
    answering for it. One query across runs when some batch is carried by reference."""
    if run is not None:
        for r in records:
            if hasattr(r, EFFECTIVE):
                r.status = getattr(r, EFFECTIVE)
            if r.run_id != run.pk:
                r.run = run
        return records
    batches = {r.batch_id for r in records if r.status != FailedRecordStatus.CARRIED}
    if not batches or not carries_any():
        return records
    owners = dict(
        CarriedBatch.objects.filter(source_batch_id__in=batches, rolled_back=False)
        .values("source_batch_id")
        .annotate(owner=Max("run_id"))
        .values_list("source_batch_id", "owner")
    )
    runs = Run.objects.select_related("plan", "target").in_bulk(set(owners.values()))
    for r in records:
        owner = owners.get(r.batch_id)
        if owner and r.status != FailedRecordStatus.CARRIED:
            r.run = runs[owner]
    return records
