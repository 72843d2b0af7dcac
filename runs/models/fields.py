"""Model fields of the runs app."""

from __future__ import annotations

from typing import Any

from django.db import models


class JsonTextField(models.JSONField):
    """A JSONField stored as PostgreSQL ``json`` (the text as written, only validated on
    input) instead of ``jsonb`` (a binary tree built, keys sorted and deduplicated): for
    values written in bulk and read whole, never compared, indexed or looked into by a query
    (the failed records' rows and errors; issue 20: jsonb's input was ~15 % of the
    failed-record COPY's backend CPU). A value reads back exactly as written, key order
    included. Elsewhere (SQLite) the same column as JSONField's."""

    def db_type(self, connection: Any) -> str | None:
        """``json`` on PostgreSQL, JSONField's type elsewhere."""
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        """On PostgreSQL the JSON text as a json parameter (JSONField's is cast to jsonb, which
        would sort the keys on the way in), JSONField's elsewhere."""
        if connection.vendor != "postgresql":
            return super().get_db_prep_value(value, connection, prepared)
        from django.db.backends.postgresql.operations import get_json_dumps
        from psycopg2.extras import Json  # the project's driver (pyproject: psycopg2 < 3)

        return Json(
            value if prepared else self.get_prep_value(value), dumps=get_json_dumps(self.encoder)
        )

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        """The Python value of the column: on PostgreSQL the driver has decoded ``json``
        already (Django has it hand over only ``jsonb`` as text), elsewhere JSONField's."""
        if connection.vendor == "postgresql":
            return value
        return super().from_db_value(value, expression, connection)
