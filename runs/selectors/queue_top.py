"""The error queue's most frequent errors: like messages grouped by their quoted values."""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import Count, Func, QuerySet, TextField, Value

from ..models import FailedRecord

_QUOTED = re.compile(r"'[^']*'|“[^”]*”|\"[^\"]*\"")
_PG_QUOTED = "'[^']*'|“[^”]*”|\"[^\"]*\""


def message_normalise(message: str) -> str:
    """The message with quoted values replaced by '…', so that like errors group together."""
    return _QUOTED.sub("'…'", message)


def failed_record_top_errors(qs: QuerySet[FailedRecord], *, limit: int = 10) -> list[dict]:
    """The most frequent (entity, field, normalised message) groups with their counts."""
    if connection.vendor == "postgresql":
        pattern = Func(
            "message",
            Value(_PG_QUOTED),
            Value("'…'"),
            Value("g"),
            function="regexp_replace",
            output_field=TextField(),
        )
        rows = (
            qs.order_by()
            .annotate(pattern=pattern)
            .values("entity", "field", "category", "pattern")
            .annotate(n=Count("id"))
            .order_by("-n", "entity", "field")[:limit]
        )
        return list(rows)
    groups: dict[tuple, int] = {}
    for entity, fld, category, message, n in (
        qs.order_by().values_list("entity", "field", "category", "message").annotate(n=Count("id"))
    ):
        key = (entity, fld, category, message_normalise(message))
        groups[key] = groups.get(key, 0) + n
    top = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    keys = ("entity", "field", "category", "pattern")
    return [dict(zip(keys, k, strict=True), n=n) for k, n in top]
