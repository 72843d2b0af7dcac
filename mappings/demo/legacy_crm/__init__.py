"""A deliberately dirty legacy-CRM source and an empty "new CRM" target (plain Python, no Django).

Used by the ``load_demo`` management command and the 1,000,000-row benchmark.

URLs are ``sqlite:////abs/path.db`` or ``postgresql://user@host:port/dbname`` (an existing
database; tables go into its current schema). Source and target must be different databases:
both have ``contacts`` and ``orders`` tables.

Dirt: every kind in ``DIRT_PROFILE`` (key ``table.column.kind`` or ``table.kind``) is injected
into exactly ``max(1, round(share * n))`` rows of each generation block of ``n`` rows, so each
kind appears at least once even at ``rows=200``. Duplicate customer rows are copies of other
rows and repeat whatever dirt their original carries. Blocks hold at most ``BLOCK_ROWS`` rows
and have their own generator seeded from ``(seed, table, block)``: same seed, same data, on
either backend. Amounts, dates and codes are text in the source because the legacy system
stored them as text (``Total_Amount`` holds ``1234.50`` as well as ``$1,234.50``).

Layout: ``profile`` (the dirt and word tables), ``schema`` (tables and DDL), ``db``
(connections, loading), ``generate`` (rows), ``build`` (the public API re-exported here).
"""

from .build import build_source, build_target, source_exists, target_exists
from .profile import (
    BLOCK_ROWS,
    CHILD_FACTOR,
    DIRT_PROFILE,
    FIRST_ID,
    MIN_ROWS,
    SOURCE_TABLES,
    TARGET_TABLES,
    US_STATES,
)
from .schema import SOURCE_SCHEMA, TARGET_SCHEMA, Col

__all__ = [
    "BLOCK_ROWS",
    "CHILD_FACTOR",
    "Col",
    "DIRT_PROFILE",
    "FIRST_ID",
    "MIN_ROWS",
    "SOURCE_SCHEMA",
    "SOURCE_TABLES",
    "TARGET_SCHEMA",
    "TARGET_TABLES",
    "US_STATES",
    "build_source",
    "build_target",
    "source_exists",
    "target_exists",
]
