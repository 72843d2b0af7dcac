"""Connector contract: Source/Target protocols and the dataclasses they exchange.

Also holds the dialect-neutral pieces both database connectors share: identifier checks
against the introspected schema and ``validate_frame`` (load-stage row validation).

Laid out by role: ``protocols`` (Source, Target), ``schema`` and ``results`` (the values
they exchange), ``cache`` (shared plumbing), ``validation`` (load-stage checks), ``coerced``,
``frames``; every name of those is re-exported here. ``dialect`` (the SQL dialect object)
and the roles written once for every SQL database (``source``, ``target``, ``ledger``,
``deletes``, ``checks``) are imported from their modules.
"""

from .cache import ArrowTextSource, SchemaCache
from .coerced import (
    COERCED,
    CoercedFailure,
    Coercion,
    _isna,
    coerced_errors,
    compare_detail,
    with_coerced,
)
from .frames import arrow_frame, chunks, load_columns, text_frame
from .protocols import Checks, Connector, Introspection, Ledger, Loader, Source, Target
from .results import LoadResult, RollbackResult, TableChecksum
from .schema import (
    ChangedSince,
    ColumnInfo,
    KeyRange,
    SchemaInfo,
    TableInfo,
    _listify,
    ranges_from_bounds,
)
from .validation import (
    _BOOL_WORDS,
    _CANONICAL,
    _INT_BOUNDS,
    _INT_RE,
    _NUM_RE,
    _SP,
    _UUID_RE,
    _bad_values,
    _column_problems,
    _decimals,
    _json_problems,
    _json_refused,
    _text_length_problems,
    arrow_text,
    bad_message,
    max_length_of,
    numeric_limit,
    type_family,
    validate_frame,
)

__all__ = [
    "ArrowTextSource",
    "COERCED",
    "ChangedSince",
    "CoercedFailure",
    "Coercion",
    "ColumnInfo",
    "Checks",
    "Connector",
    "Introspection",
    "Ledger",
    "Loader",
    "KeyRange",
    "LoadResult",
    "RollbackResult",
    "SchemaCache",
    "SchemaInfo",
    "Source",
    "TableChecksum",
    "TableInfo",
    "Target",
    "_BOOL_WORDS",
    "_CANONICAL",
    "_INT_BOUNDS",
    "_INT_RE",
    "_NUM_RE",
    "_SP",
    "_UUID_RE",
    "_bad_values",
    "_column_problems",
    "_decimals",
    "_isna",
    "_json_problems",
    "_json_refused",
    "_listify",
    "_text_length_problems",
    "arrow_frame",
    "arrow_text",
    "bad_message",
    "chunks",
    "coerced_errors",
    "compare_detail",
    "load_columns",
    "max_length_of",
    "numeric_limit",
    "ranges_from_bounds",
    "text_frame",
    "type_family",
    "validate_frame",
    "with_coerced",
]
