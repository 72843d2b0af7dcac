"""Load validation's encoding check, pure: a character the table's codec cannot encode fails
its row's column (named with the character and where), ASCII and missing values never do, and
a table without a codec (UTF8, SQL_ASCII, an encoding without an exact codec) checks nothing."""

from __future__ import annotations

import pandas as pd

from runs.engine.connectors.base import text_frame, validate_frame
from runs.engine.connectors.base.schema import ColumnInfo, TableInfo


def _table(codec: str | None, encoding: str = "LATIN1") -> TableInfo:
    cols = (
        ColumnInfo("id", "integer", primary_key=True),
        ColumnInfo("name", "varchar(4)", max_length=4),
    )
    return TableInfo("accounts", cols, encoding=encoding, codec=codec)


def test_arrow_and_object_columns_alike():
    values = ["ab", None, "€", "é", "€€日", "ééééé"]
    arrow = text_frame(["name"], {"name": values})
    plain = pd.DataFrame({"name": pd.Series(values, dtype=object)})
    for frame in (arrow, plain):
        errors = validate_frame(_table("latin_1"), frame)
        assert sorted(errors) == [2, 4, 5]
        assert [(e.field, e.category, e.rule) for e in errors[2]] == [
            ("name", "unencodable", "load")
        ]
        assert errors[2][0].message == (
            "character '€' (U+20AC) cannot be stored in the target database's encoding LATIN1 "
            "(accounts.name)"
        )
        assert errors[4][0].message.startswith("characters '€' (U+20AC), '日' (U+65E5) cannot")
        assert errors[4][0].value == "€€日"
        assert errors[5][0].category == "too_long"  # one error a column: the first found


def test_no_codec_no_check():
    frame = text_frame(["name"], {"name": ["€", "日本", "😀"]})
    assert validate_frame(_table(None, "UTF8"), frame) == {}
    assert validate_frame(_table(None, "SQL_ASCII"), frame) == {}
