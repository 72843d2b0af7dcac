"""Writes for lookup (value-map) tables and their entries, CSV import/export."""

from __future__ import annotations

import csv
import io

from django.db import IntegrityError, transaction
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.csv_safe import csv_cell_restore, csv_writer
from migration_planner.lib.errors import ApplicationError
from runs.engine.errors import StagingError
from runs.engine.files import decode_text

from .models import LookupEntry, LookupTable, Plan
from .services_edit import EDIT, _delete, _save, plan_touch, require_capability
from .signals import plan_content_changed


@transaction.atomic
def lookup_save(*, plan: Plan, user, data: dict, lookup: LookupTable | None = None) -> LookupTable:
    """Create (``lookup`` None) or rename/describe a lookup table of ``plan``."""
    require_capability(user, EDIT)
    plan_touch(plan=plan, user=user)
    lookup = lookup or LookupTable(plan=plan)
    for key in ("name", "description", "default_value"):
        if key in data:
            setattr(lookup, key, data[key])
    lookup.default_value = lookup.default_value or None
    try:
        with transaction.atomic():
            _save(lookup, user)
    except IntegrityError as exc:
        raise ApplicationError(
            f"A lookup table called “{lookup.name}” already exists.", field="name"
        ) from exc
    return lookup


@transaction.atomic
def lookup_delete(*, lookup: LookupTable, user) -> None:
    """Delete a lookup table; refused while a value_map step uses it."""
    require_capability(user, EDIT)
    from .models import RuleStep

    users = RuleStep.objects.filter(
        field__entity__plan=lookup.plan, rule="value_map", params__lookup=lookup.name
    )
    if users.exists():
        cols = sorted({s.field.target_column for s in users.select_related("field")})
        raise ApplicationError(
            f"Lookup “{lookup.name}” is used by: {', '.join(cols)}.", field="lookup"
        )
    plan_touch(plan=lookup.plan, user=user)
    for entry in lookup.entries.all():
        _delete(entry, user)
    _delete(lookup, user)


@transaction.atomic
def lookup_entry_save(
    *, lookup: LookupTable, user, key: str, value: str, entry: LookupEntry | None = None
) -> LookupEntry:
    """Add or change one key → value row; keys are unique within the table."""
    require_capability(user, EDIT)
    if key == "":
        raise ApplicationError("The key must not be empty.", field="key")
    plan_touch(plan=lookup.plan, user=user)
    clash = lookup.entries.filter(key=key).exclude(pk=getattr(entry, "pk", None)).exists()
    if clash:
        raise ApplicationError(f"Key “{key}” already exists in “{lookup.name}”.", field="key")
    entry = entry or LookupEntry(table=lookup)
    entry.key, entry.value = key, value
    _save(entry, user)
    return entry


@transaction.atomic
def lookup_entry_delete(*, entry: LookupEntry, user) -> None:
    """Remove one row of a lookup table."""
    require_capability(user, EDIT)
    plan_touch(plan=entry.table.plan, user=user)
    _delete(entry, user)


KEY_NAMES = ("key", "code", "source", "source value", "from", "old", "legacy")
VALUE_NAMES = ("value", "target", "target value", "to", "new", "label", "name")


def lookup_csv_decode(*, raw: bytes) -> str:
    """CSV bytes as text, decoded as file staging does (UTF-8, BOM, cp1252/Latin-1...).
    Pure; raises ApplicationError naming the byte and line that cannot be decoded."""
    try:
        return decode_text(raw)[0]
    except StagingError as exc:
        raise ApplicationError(f"The file cannot be read as text: {exc}.", field="file") from exc


def _columns(header: list[str]) -> tuple[int, int]:
    names = [h.strip().lower() for h in header]
    key = next((names.index(n) for n in KEY_NAMES if n in names), None)
    value = next((names.index(n) for n in VALUE_NAMES if n in names), None)
    if key is None and value is None and len(names) == 2:
        raise ApplicationError(
            f"Line 1: the header “{','.join(header)}” names no key and value column: call them "
            f"key,value (or one of {', '.join(KEY_NAMES)} / {', '.join(VALUE_NAMES)}).",
            field="file",
        )
    if key is None or value is None or key == value:
        raise ApplicationError(
            f"Line 1: the header “{','.join(header)}” needs a key column (one of "
            f"{', '.join(KEY_NAMES)}) and a value column (one of {', '.join(VALUE_NAMES)}).",
            field="file",
        )
    return key, value


def _parse_csv(text: str) -> dict[str, str]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if header is None:
        raise ApplicationError(
            "Line 1: the file is empty; expected a key,value header.", field="file"
        )
    key_at, value_at = _columns(header)
    width = len(header)
    rows: dict[str, str] = {}
    line = reader.line_num
    for row in reader:
        number, line = line + 1, reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != width:
            raise ApplicationError(
                f"Line {number}: expected {width} columns ({','.join(header)}), got {len(row)}.",
                field="file",
            )
        key, value = csv_cell_restore(row[key_at]), csv_cell_restore(row[value_at])
        if key == "":
            raise ApplicationError(f"Line {number}: the key is empty.", field="file")
        if key in rows:
            raise ApplicationError(f"Line {number}: key “{key}” appears twice.", field="file")
        rows[key] = value
    return rows


def lookup_import_csv(*, lookup: LookupTable, user, text: str) -> int:
    """Replace the table's rows with a CSV (header ``key,value`` or common names such as
    ``code,label``); all-or-nothing; errors name the line.

    Parsed before the transaction; new and changed rows are written in bulk (with their
    history), so the write transaction stays short however long the file. One audit event
    and one sign-off void for the whole upload. Transactional."""
    require_capability(user, EDIT)
    rows = _parse_csv(text)
    who = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        plan_touch(plan=lookup.plan, user=user)
        existing = {e.key: e for e in lookup.entries.all()}
        for key, entry in existing.items():
            if key not in rows:
                _delete(entry, user)
        created = [
            LookupEntry(table=lookup, key=k, value=v) for k, v in rows.items() if k not in existing
        ]
        changed = []
        for key, entry in existing.items():
            if key in rows and entry.value != rows[key]:
                entry.value = rows[key]
                changed.append(entry)
        bulk_create_with_history(created, LookupEntry, batch_size=2000, default_user=who)
        bulk_update_with_history(changed, LookupEntry, ["value"], batch_size=2000, default_user=who)
        audit_record(
            action=AuditAction.UPDATE,
            actor=user,
            obj=lookup,
            after={
                "csv_rows": len(rows),
                "created": len(created),
                "changed": len(changed),
                "deleted": len(existing) - (len(rows) - len(created)),
            },
        )
        plan_content_changed.send(
            sender=LookupTable,
            plan_id=lookup.plan_id,
            reason=f"lookup “{lookup.name}” uploaded by {getattr(user, 'username', '')}",
        )
    return len(rows)


def lookup_export_csv(*, lookup: LookupTable) -> str:
    """The table as ``key,value`` CSV text, formula cells neutralised (read-only)."""
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow(["key", "value"])
    for entry in lookup.entries.order_by("key"):
        writer.writerow([entry.key, entry.value])
    return out.getvalue()
