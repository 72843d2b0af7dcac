"""Reads for the error queue: filters, keyset pages, counts and facets, top errors, selections.

Counts and facets on PostgreSQL come from ``runs_failedrecordtally``, a ledger of signed deltas
that statement-level triggers on ``runs_failedrecord`` append to (migration 0013): one grouped
sum over a few thousand rows instead of a count over millions of records. A text filter is
counted up to ``COUNT_CAP`` through the trigram indexes (migration 0018): one on the distinct
messages (``runs_failedmessage``, a record reaches its message by ``md5(message)::uuid``), one
on the source keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    BooleanField,
    F,
    Func,
    Q,
    QuerySet,
    Subquery,
    Sum,
    UUIDField,
)
from django.db.models.functions import MD5, Cast

from migration_planner.lib.errors import ApplicationError

from ..engine.rules import FAILURE_CATEGORIES
from ..enums import FailedRecordStatus
from ..models import CarriedBatch, FailedMessage, FailedRecord, FailedRecordTally, Run
from .carried import EFFECTIVE, carries_any, records_as_viewed, run_view
from .queue_top import failed_record_top_errors as failed_record_top_errors
from .queue_top import message_normalise as message_normalise

OPEN_STATUSES = (FailedRecordStatus.OPEN, FailedRecordStatus.FIXED)
# a run's tally counts the records it shows carried or superseded by reference apart
_BY_REFERENCE = {
    FailedRecordStatus.CARRIED: CarriedBatch.TALLY_CARRIED,
    FailedRecordStatus.SUPERSEDED: CarriedBatch.TALLY_SUPERSEDED,
}
QUEUE_FILTERS = ("run", "entity", "stage", "category", "field", "status", "q")
COUNT_CAP = 10_000
PAGE_SIZE = 50
TEXT_WINDOW = 20_000
DENSE_AT = PAGE_SIZE  # matches among the TEXT_WINDOW newest records that make a text frequent
# A record's message digest: the expression of the index failed_record_message_digest (0018).
_DIGEST = Cast(MD5("message"), UUIDField())


def failed_record_filter(
    *,
    run: Run | None = None,
    entity: str = "",
    stage: str = "",
    category: str = "",
    field: str = "",
    status: str = "",
    q: str = "",
) -> QuerySet[FailedRecord]:
    """Failed records matching every given filter (status "workable" means open or fixed).
    Read-only; raises ApplicationError for a category that is not a failure category."""
    failure_category_check(category)
    qs = FailedRecord.objects.all()
    viewed = run is not None and carries_any(run)
    if viewed:
        qs = run_view(qs, run, stored_status=bool(status) and status not in _BY_REFERENCE)
    elif run is not None:
        qs = qs.filter(run=run)
    state = EFFECTIVE if viewed else "status"
    if entity:
        qs = qs.filter(entity=entity)
    if stage:
        qs = qs.filter(stage=stage)
    if category:
        qs = qs.filter(category=category)
    if field:
        qs = qs.filter(field=field)
    # A view shows a record as its stored status unless it shows it carried or superseded:
    # for any other status the stored one must match too, a condition indexes can answer.
    if status == "workable":
        qs = qs.filter(**{f"{state}__in": OPEN_STATUSES})
        if viewed:
            qs = qs.filter(status__in=OPEN_STATUSES)
    elif status:
        qs = qs.filter(**{state: status})
        if viewed and status not in _BY_REFERENCE:
            qs = qs.filter(status=status)
    if q:
        qs = qs.filter(text_match(q))
    return qs


class _AnyOf(Func):
    """``expression = ANY(array)``: an index condition (unlike ``IN (subquery)``), so an OR of
    two indexed conditions becomes a BitmapOr."""

    arg_joiner = " = ANY("
    template = "(%(expressions)s))"
    output_field = BooleanField()


def text_match(q: str) -> Q:
    """The text filter: ``q`` is a case-insensitive substring of the message or of the source
    key. On PostgreSQL the message side is looked up among the distinct messages (trigram
    index) and reaches the records by digest, rechecked on the record's own message. Pure."""
    if connection.vendor != "postgresql":
        return Q(message__icontains=q) | Q(source_key__icontains=q)
    messages = FailedMessage.objects.filter(message__icontains=q).values("digest")
    digests = Func(Subquery(messages), function="ARRAY")
    by_message = Q(_AnyOf(_DIGEST, digests)) & Q(message__icontains=q)
    return by_message | Q(source_key__icontains=q)


@dataclass(frozen=True)
class QueuePage:
    """One page of the error queue, the next page's cursor and the filter's total (a floor
    when ``capped``)."""

    records: list[FailedRecord]
    next_cursor: int | None
    total: int
    capped: bool
    position: PagePosition | None = None


def failed_record_search(
    *, run: Run | None = None, filters: dict, after: int | None = None, size: int = PAGE_SIZE
) -> QueuePage:
    """A keyset page (newest first, never OFFSET) of the records matching the filters, with
    their total. Read-only.

    The text filter (``q``, in the message or the source key) has two plans on PostgreSQL,
    chosen by how many of the TEXT_WINDOW newest otherwise-matching records it matches, not by
    the planner's guess of the pattern's frequency: a frequent text walks the records newest
    first (a page is found at once); a rare one is looked up in the trigram index and sorted.
    """
    q = filters.get("q") or ""
    if q and _tallied():
        others = failed_record_filter(run=run, **{**filters, "q": ""})
        frequent = _frequent(others, q)
        if frequent:
            ids = _walk_matches(others, q, after=after, limit=size + 1)
            total, capped = _text_total(run, filters, others, frequent=frequent)
        else:
            hits = failed_record_filter(run=run, **filters)
            ids, total = _rare_matches(hits, after=after, size=size)
            capped = False
        chosen = FailedRecord.objects.filter(id__in=ids[:size])
        if EFFECTIVE in others.query.annotations:  # the run's view: shown as it sees them
            chosen = others.filter(id__in=ids[:size])
        records = records_as_viewed(
            list(chosen.select_related("run__plan", "run__target", "handled_by").order_by("-id")),
            run,
        )
        cursor = records[-1].id if len(ids) > size else None
    else:
        plain = failed_record_filter(run=run, **filters)
        records, cursor = failed_record_page(plain, after=after, size=size)
        records = records_as_viewed(records, run)
        total, capped = failed_record_total(run=run, filters=filters)
    first = (records[0].id if records else after) if after else None
    qs = None
    if first:  # without a text the filter just built (no second look at the references)
        qs = failed_record_filter_planned(run=run, filters=filters) if q else plain
    position = failed_record_position(
        qs, first_id=first, total=total, total_capped=capped, size=size
    )
    return QueuePage(records, cursor, total, capped, position)


def failed_record_filter_planned(
    *, run: Run | None = None, filters: dict
) -> QuerySet[FailedRecord]:
    """failed_record_filter for callers that page it themselves (the API's cursor pages): a
    rare text (see failed_record_search) is resolved through the trigram index first, and the
    queryset names the ids it matched (at most COUNT_CAP, newest first)."""
    qs = failed_record_filter(run=run, **filters)
    q = filters.get("q") or ""
    if not (q and _tallied()):
        return qs
    others = failed_record_filter(run=run, **{**filters, "q": ""})
    if _frequent(others, q):
        return qs
    ordered = qs.order_by((F("id") + 0).desc()).values_list("id", flat=True)
    if EFFECTIVE in qs.query.annotations:  # the run's view keeps its statuses
        return others.filter(id__in=list(ordered[:COUNT_CAP]))
    return FailedRecord.objects.filter(id__in=list(ordered[:COUNT_CAP]))


def _text_total(
    run: Run | None, filters: dict, others: QuerySet[FailedRecord], *, frequent: bool
) -> tuple[int, bool]:
    """The text filter's total: a frequent text counted up to COUNT_CAP by the newest-first
    walk, a rare one exactly through the trigram index."""
    if frequent:
        matched = len(_walk_matches(others, filters["q"], after=None, limit=COUNT_CAP + 1))
        return min(matched, COUNT_CAP), matched > COUNT_CAP
    return failed_record_filter(run=run, **filters).count(), False


def _rare_matches(
    hits: QuerySet[FailedRecord], *, after: int | None, size: int
) -> tuple[list[int], int]:
    """Up to ``size + 1`` ids of a rare text's matches (newest first, below ``after``) and
    their exact total, from ONE trigram lookup when there are at most COUNT_CAP of them (past
    it a second query counts them; a later page reads its ids again). Read-only."""
    ordered = hits.order_by((F("id") + 0).desc()).values_list("id", flat=True)
    matched = list(ordered[: COUNT_CAP + 1])
    if len(matched) <= COUNT_CAP:
        return [i for i in matched if not after or i < after][: size + 1], len(matched)
    if after or len(matched) < size + 1:
        matched = list((ordered.filter(id__lt=after) if after else ordered)[: size + 1])
    return matched[: size + 1], hits.count()


def _frequent(others: QuerySet[FailedRecord], q: str) -> bool:
    """Whether ``q`` matches at least DENSE_AT of the TEXT_WINDOW newest of ``others``."""
    found = _walk_matches(others, q, after=None, limit=DENSE_AT, window=TEXT_WINDOW)
    return len(found) >= DENSE_AT


def _walk_matches(
    qs: QuerySet[FailedRecord], q: str, *, after: int | None, limit: int, window: int = 0
) -> list[int]:
    """Ids of the records of ``qs`` (newest first; only the ``window`` newest if given) whose
    message or key contains ``q``, at most ``limit``. The records are read through a
    materialised CTE, which PostgreSQL reads only as far as the LIMIT needs, so the pattern's
    guessed frequency cannot steer the plan."""
    if after:
        qs = qs.filter(id__lt=after)
    inner = qs.order_by("-id").values_list("id", "message", "source_key")
    if window:
        inner = inner[:window]
    sql, params = inner.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH w AS MATERIALIZED ({sql}) SELECT w.id FROM w "  # noqa: S608 - ORM-built SQL
            "WHERE (upper(w.message) LIKE upper(%s) OR upper(w.source_key) LIKE upper(%s)) "
            "LIMIT %s",
            [*params, _like(q), _like(q), limit],
        )
        return [row[0] for row in cursor.fetchall()]


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class PagePosition:
    """Where a keyset page lies: its number (a floor when ``number_capped``), how many pages
    the filter's total makes (a floor when ``pages_capped``) and the previous page's cursor."""

    number: int
    number_capped: bool
    pages: int
    pages_capped: bool
    has_previous: bool
    previous_cursor: int | None  # the previous page's ``after``; None: the first page


def failed_record_position(
    qs: QuerySet[FailedRecord] | None,
    *,
    first_id: int | None,
    total: int,
    total_capped: bool,
    size: int = PAGE_SIZE,
) -> PagePosition:
    """The position of the page (newest first) whose first record is ``first_id`` in ``qs``:
    page number from the records newer than it (counted up to COUNT_CAP, like the total), page
    count from ``total``, and the previous page's cursor. Read-only; no query on the first
    page, one (ids of at most size + 1 newer records, by index) or two (plus a capped count)
    on the others."""
    pages = max(1, -(-total // size))
    if first_id is None:
        return PagePosition(1, False, pages, total_capped, False, None)
    newer = qs.filter(id__gt=first_id).order_by()
    ids = list(newer.order_by("id").values_list("id", flat=True)[: size + 1])
    # up to one page newer: the previous page is the first one, and nothing more to count
    counted = len(ids) if len(ids) <= size else newer.values("id")[: COUNT_CAP + 1].count()
    capped = counted > COUNT_CAP
    number = -(-min(counted, COUNT_CAP) // size) + 1
    previous = ids[size] if len(ids) > size else None
    return PagePosition(
        number, capped, max(pages, number), total_capped or capped, bool(ids), previous
    )


def failed_record_page(
    qs: QuerySet[FailedRecord], *, after: int | None = None, size: int = PAGE_SIZE
) -> tuple[list[FailedRecord], int | None]:
    """One keyset page (newest first by id, never OFFSET) and the cursor of the next page."""
    page_qs = qs.select_related("run__plan", "run__target", "handled_by").order_by("-id")
    if after:
        page_qs = page_qs.filter(id__lt=after)
    records = list(page_qs[: size + 1])
    more = len(records) > size
    records = records[:size]
    return records, (records[-1].id if more and records else None)


def _tallied() -> bool:
    """Whether counts come from the tally (PostgreSQL, where the triggers keep it)."""
    return connection.vendor == "postgresql"


def _tally(run: Run | None, filters: dict) -> QuerySet[FailedRecordTally]:
    """The tally rows matching the filters that the tally has dimensions for."""
    qs = FailedRecordTally.objects.all()
    # across runs a record carried by reference counts once, where it answers
    by_reference = _BY_REFERENCE.values()
    qs = qs.filter(run=run) if run is not None else qs.exclude(status__in=by_reference)
    for name in ("entity", "stage", "category", "field"):
        if filters.get(name):
            qs = qs.filter(**{name: filters[name]})
    status = filters.get("status") or ""
    if status == "workable":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif status:
        qs = qs.filter(
            status__in=[status, *([_BY_REFERENCE[status]] if status in _BY_REFERENCE else [])]
        )
    return qs


def failed_record_total(*, run: Run | None = None, filters: dict) -> tuple[int, bool]:
    """How many records match the filters, and whether that number is a floor: a text filter
    (``q``) is counted up to COUNT_CAP + 1 records only."""
    if filters.get("q"):
        if _tallied():
            others = failed_record_filter(run=run, **{**filters, "q": ""})
            return _text_total(run, filters, others, frequent=_frequent(others, filters["q"]))
        qs = failed_record_filter(run=run, **filters).order_by()
        matched = qs.values("id")[: COUNT_CAP + 1].count()
        return min(matched, COUNT_CAP), matched > COUNT_CAP
    if not _tallied():
        return failed_record_filter(run=run, **filters).count(), False
    return int(_tally(run, filters).aggregate(n=Sum("n"))["n"] or 0), False


def failed_record_open_count(*, run: Run | None = None) -> int:
    """The records of the run (or of every run) that are open or fixed."""
    return failed_record_total(run=run, filters={"status": "workable"})[0]


def failed_record_facets(*, run: Run | None = None) -> dict[str, list[str]]:
    """Distinct entities, categories and fields of the run's records (or every run's), for
    the filter dropdowns (one grouped query); categories in ``FAILURE_CATEGORIES`` order,
    unknown ones last."""
    if _tallied():
        groups = _tally(run, {}).values_list("entity", "category", "field")
        combos = list(groups.annotate(total=Sum("n")).filter(total__gt=0).order_by())
    else:
        qs = failed_record_filter(run=run).order_by()
        combos = list(qs.values_list("entity", "category", "field").distinct())
    facets = {
        name: sorted({combo[i] for combo in combos if combo[i]})
        for i, name in enumerate(("entity", "category", "field"))
    }
    order = {c: i for i, c in enumerate(FAILURE_CATEGORIES)}
    facets["category"].sort(key=lambda c: (order.get(c, len(order)), c))
    return facets


def failure_category_check(category: str) -> str:
    """The category when it is a known failure category (or empty); raises ApplicationError
    naming the known ones. Pure."""
    if category and category not in FAILURE_CATEGORIES:
        raise ApplicationError(
            f"“{category}” is not a failure category; the categories are "
            f"{', '.join(FAILURE_CATEGORIES)}.",
            field="category",
        )
    return category


def failed_record_get(*, uuid) -> FailedRecord:
    """One failed record with its run; raises FailedRecord.DoesNotExist."""
    related = ("run__plan", "run__target", "batch", "handled_by")
    return FailedRecord.objects.select_related(*related).get(uuid=uuid)


def failed_record_selection(
    *,
    ids: list | None = None,
    run: Run | None = None,
    filters: dict | None = None,
    cap: int | None = None,
) -> tuple[QuerySet[FailedRecord], bool]:
    """The open/fixed records a bulk action covers — the given uuids, else all matching the
    filters — at most ``cap`` of them (oldest first); and whether more matched."""
    if filters is not None:
        qs = failed_record_filter(run=run, **{k: v for k, v in filters.items() if v})
    else:
        qs = FailedRecord.objects.filter(uuid__in=ids or [])
    state = EFFECTIVE if EFFECTIVE in qs.query.annotations else "status"
    qs = qs.filter(**{f"{state}__in": OPEN_STATUSES})
    if cap is None:
        return qs, False
    chosen = list(qs.order_by("id").values_list("id", flat=True)[: cap + 1])
    return FailedRecord.objects.filter(id__in=chosen[:cap]), len(chosen) > cap
