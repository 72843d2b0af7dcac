"""What the checks of one run share (``RunContext``), the run's accounting, its key-level
diffs and failed-record counts."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Sum

from runs.connections import connector_for
from runs.engine.reconcile import KeyDiff, RunAggregates, reconcile_in_memory, reconcile_pg
from runs.engine.reconcile_marks import MarkSpec
from runs.engine.snapshot import EntitySpec
from runs.models import COUNTERS, Batch, Run
from runs.selectors.carried import failed_records_of
from runs.services.state import run_entities, run_ledger_id, run_snapshot

if TYPE_CHECKING:
    from validation.report_cancel import ReportWatch

    from .expected import Expected

LISTED_KEYS = 50


@dataclass
class RunContext:
    """What the checks of one run share: connectors, snapshot, cached expected frames."""

    run: Run
    expected: dict[str, Expected | Exception] = field(default_factory=dict)
    pending: Future | None = None  # the prefetch thread's results, until first needed
    # entity -> the target side of its aggregate rules (checks._covered; None: ask per rule)
    covered: dict[str, RunAggregates | None] = field(default_factory=dict)
    # stops the report once its run is being rolled back (report_cancel); None: never stops
    watch: ReportWatch | None = None

    def __post_init__(self) -> None:
        self.snapshot = run_snapshot(self.run)
        self.source = connector_for(self.run.plan.source)
        self.target = connector_for(self.run.target)
        self.ledger_id = run_ledger_id(self.run)
        if self.watch is not None:
            self.watch.watch(self.source)
            self.watch.watch(self.target)

    def check(self, what: str = "") -> None:
        """A checkpoint of the report: raises ReportCancelled once its run is rolling back."""
        if self.watch is not None:
            self.watch.check(what)

    @property
    def sql_target(self) -> bool:
        return getattr(self.target, "kind", "") == "postgresql"

    def table(self, entity: EntitySpec) -> tuple[Any, Any]:
        """(quoted identifier, TableInfo) of the entity's target table, checked by introspection."""
        info = self.target._table(entity.target_table)  # noqa: SLF001 - see report: needs a public API
        return self.target.table_ident(info), info

    def close(self) -> None:
        """Drop what the expected side keeps on disk (its samples' files); idempotent."""
        for found in self.expected.values():
            if not isinstance(found, Exception):
                found.close()

    def cursor(self):  # noqa: ANN201 - a context manager yielding a psycopg2 cursor
        self.check("statements")  # before every statement of the key diffs and checks
        return self.target._tx()  # noqa: SLF001


def accounting(run: Run) -> list[dict[str, Any]]:
    """Per entity: source rows vs loaded + failed + filtered + duplicate (balanced or not)."""
    sums = {
        row["entity"]: row
        for row in Batch.objects.filter(run=run)
        .values("entity")
        .annotate(**{c: Sum(c) for c in COUNTERS})
    }
    lines = []
    for entity in run_entities(run):
        s = {c: (sums.get(entity.name, {}).get(c) or 0) for c in COUNTERS}
        accounted = s["loaded"] + s["failed"] + s["filtered"] + s["duplicates"]
        source = run.entity_totals.get(entity.name, 0)
        lines.append(
            {
                "entity": entity.name,
                "source": source,
                **s,
                "accounted": accounted,
                "balanced": accounted == source,
                "difference": source - accounted,
            }
        )
    return lines


def key_diff(ctx: RunContext, entity: EntitySpec) -> KeyDiff:
    """Ledger row hashes vs the target's rows now (range checksums, then narrowed)."""
    if not ctx.sql_target:
        info = ctx.target.introspect().table(entity.target_table)
        return reconcile_in_memory(
            ctx.target,
            table=entity.target_table,
            key=info.column(entity.target_key),
            columns=[f.target for f in entity.fields],
            run_id=ctx.ledger_id,
            entity=entity.name,
        )
    ident, info = ctx.table(entity)
    mark = None
    if entity.delete_policy == "mark" and entity.delete_mark_column:
        mark = MarkSpec(info.column(entity.delete_mark_column), entity.delete_mark_value)
    return reconcile_pg(
        ctx.cursor,
        table=ident,
        key=info.column(entity.target_key),
        columns=info.require([f.target for f in entity.fields]),
        run_id=ctx.ledger_id,
        entity=entity.name,
        mark=mark,
    )


def diff_summary(diff: KeyDiff, seconds: float) -> dict[str, Any]:
    """JSON form of a key diff for the report (key lists capped)."""
    return {
        "clean": diff.clean,
        "expected_rows": diff.expected_rows,
        "actual_rows": diff.actual_rows,
        "missing": len(diff.missing),
        "extra": len(diff.extra),
        "changed": len(diff.changed),
        "marked": diff.marked,
        "missing_keys": diff.missing[:LISTED_KEYS],
        "extra_keys": diff.extra[:LISTED_KEYS],
        "changed_keys": diff.changed[:LISTED_KEYS],
        "levels": diff.levels,
        "ranges_checked": diff.ranges_checked,
        "rows_fetched": diff.rows_fetched,
        "seconds": round(seconds, 3),
    }


def failures_by(run: Run, field_name: str) -> list[dict[str, Any]]:
    """Failed-record counts grouped by one field (category, rule...), largest first."""
    rows = (
        failed_records_of(run=run)  # those it carries by reference too
        .values(field_name)
        .annotate(n=Count("id"))
        .order_by("-n", field_name)
    )
    return [{"label": r[field_name] or "—", "value": r["n"]} for r in rows]
