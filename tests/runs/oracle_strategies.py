"""Hypothesis strategies of the oracle data-path test (test_oracle_data_path.py): hostile and
friendly values, one field per registered rule type, typed copy fields, the whole plan."""

from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from runs.engine.rules import validate_params

LOOKUP = {"A": "alpha", "b": "beta", "": "blank", "\\N": "escaped", " c ": "padded"}
PARENTS = 4  # parent rows 1..4, loaded before the children that reference them
WS = " \t\n\r\x0b\x0c\x85\u00a0\u1680\u2003\u2028\u3000"
ALPHABET = "aAbz09 \t\n\r\\\"',|;N\x85\u00a0\u2003\u200büǅ✓日٣"
HOSTILE = [
    None,
    "",
    " ",
    "\\N",
    "\\",
    "\\\\N",
    "a\tb",
    "line\nbreak\r\n",
    "nel\x85next\x85",
    '"quoted"',
    "it's",
    "x,y;z|w",
    "ünïcödé ✓ 日本 ǅ",
    "  padded  inside ",
    "NULL",
    "\t",
    "\u3000wide\u3000space\u2028",
    "zero\u200bwidth",
    "A",
    "b",
    "x" * 5000,
    "ab\u00a0\u2003cd",
    "ACME LLC",
    "IBM consulting (usa)",
    "MCDONALD'S gmbh",
]
hostile = st.one_of(st.sampled_from(HOSTILE), st.text(alphabet=ALPHABET + WS, max_size=12))


def pool(*values):
    return st.sampled_from(values)


# Values a failable field gets by default ("friendly": mostly passing, including nulls and
# blanks); one field of about half the rows gets a hostile value instead.
PHONES = pool("2125550100", "(212) 555-0100", "1-212-555-0100", "+1 212 555 0100", " ", None, "")
EMAILS = pool("a@b.co", " A.B@Example.COM ", "ü@bücher.de", "x+y@a-b.example.org", None, "  ")
DATES = st.builds(
    lambda d, h, m, fmt, pad: (
        pad + d.strftime(fmt).replace("HH", f"{h:02d}").replace("MM", f"{m:02d}") + pad
    ),
    st.dates(min_value=date(1950, 1, 1), max_value=date(2090, 12, 31)),
    st.integers(0, 23),
    st.integers(0, 59),
    pool("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y HH:MM"),
    pool("", " ", "\t"),
)
NUMBERS = pool(
    "12", "+7", "-0", "007", "1,234", "1.0", " 42 ", "0.125", "-2.5", ".5", "19.995", None, ""
)
BOOLS = pool("yes", "No", "T", "0", " y ", "TRUE", "f", None, "")
REFS = pool("1", "2", " 3 ", "4", "", None)
MAPPED = pool("A", "b", "", "\\N", " c ", "a ", None)
MATCHING = pool("abc", "Hello World", "12345", "x", None, "")
STAMPS = pool(
    "2024-02-29T10:11:12+02:00",
    "2024-03-01 00:00:00Z",
    "2023-12-31T23:59:59.999999-05:30",
    "1999-01-01T00:00:00+00:00",
    None,
)
JSONS = pool(
    '{"a": 1}', "[1, 2]", '"s"', "1", "null", '{"b":1,"a":[true, null]}', '{"x":"ü\\n"}', None
)
UUIDS = pool(
    "6F9619FF-8B86-D011-B42D-00C04FC964FF",
    "{0f8fad5b-d9cb-469f-a165-70867728950e}",
    "0f8fad5bd9cb469fa16570867728950e",
    "00000000-0000-0000-0000-000000000000",
    None,
)
NUMERIC_EDGES = pool(
    "999999.99", "-999999.99", "1.5", "1.50", "1.2300", "0", "-0.00", "1e3", "NaN", None, "١٢"
)
CHARS = pool("USD", "EU", "abc", "ab ", "ü✓日", None, "")
BAD = {  # hostile values that should fail each typed copy field (mixed with the generic ones)
    "timestamptz": pool("2024-02-30T00:00:00Z", "yesterday", "", "2024-01-01 25:00:00+00"),
    "json": pool("{a:1}", "", "[1,", "nul"),
    "uuid": pool(
        "not-a-uuid",
        "6F9619FF-8B86-D011-B42D-00C04FC964F",
        "",
        " 6f9619ff-8b86-d011-b42d-00c04fc964ff",
    ),
    "boolean": pool("maybe", "", "2", "yess"),
    "numeric(8,2)": pool("1000000", "1.235", "١٢", "abc", "", "1e9", "Infinity"),
    "char(3)": pool("EURO", "abcd", "日本語x"),
    "varchar(5)": pool("abcdef", "ü" * 6),
}


def _p(name: str, **params) -> tuple[str, dict]:
    return (name, validate_params(name, params))


def rule_field(name, params, *, sources=1, col="text", values="hostile", failable=False):
    """One field: its steps, source count, target column type, value pool (a name in
    VALUES, so that a failing example prints short) and whether it may fail rows."""
    return {
        "steps": [_p(name, **params)],
        "sources": sources,
        "col": col,
        "values": values,
        "failable": failable,
    }


b = st.booleans()
# rule type -> strategy of one field exercising it (params, target column type, values)
FIELDS = {
    # the target's trigger rewrites this field's 'NULL' (coerced_by_target, see _coercing)
    "copy": st.just(rule_field("copy", {}, values="COPY")),
    "trim": st.builds(
        lambda e, c: rule_field("trim", {"empty_to_null": e, "collapse_inner": c}), b, b
    ),
    "upper": st.just(rule_field("upper", {})),
    "lower": st.just(rule_field("lower", {})),
    "title": st.just(rule_field("title", {})),
    "concat": st.builds(
        lambda sep, s: rule_field("concat", {"separator": sep, "strip": s}, sources=2),
        pool(" ", "-", "", "\t"),
        b,
    ),
    "coalesce": st.just(rule_field("coalesce", {}, sources=2)),
    "split": st.builds(
        lambda sep, i, s: rule_field("split", {"separator": sep, "index": i, "strip": s}),
        pool(",", " ", "ab", "\\N"),
        st.integers(-2, 2),
        b,
    ),
    "value_map": st.builds(
        lambda m, n, i: rule_field(
            "value_map",
            {"lookup": "codes", "on_missing": m, "on_null": n, "ignore_case": i},
            values="MAPPED",
            failable=True,
        ),
        pool("default", "keep", "fail"),
        pool("default", "null", "fail"),
        b,
    ),
    "regex_replace": st.builds(
        lambda pr: rule_field("regex_replace", {"pattern": pr[0], "replacement": pr[1]}),
        pool(("[0-9]+", "#"), (" +", ""), ("a|b", "\\\\"), ("(x)(y)?", "<\\1\\2>")),
    ),
    "regex_validate": st.builds(
        lambda pat, f: rule_field(
            "regex_validate", {"pattern": pat, "full_match": f}, values="MATCHING", failable=True
        ),
        pool("[a-zA-Z ]+", "[0-9a-z]+", "x|abc|[0-9]{5}"),
        b,
    ),
    "phone_format": st.just(rule_field("phone_format", {}, values="PHONES", failable=True)),
    "email": st.just(rule_field("email", {}, values="EMAILS", failable=True)),
    "parse_date": st.builds(
        lambda out: rule_field(
            "parse_date",
            {"formats": ["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y %H:%M"], "output": out},
            col="date" if out == "date" else "timestamp",
            values="DATES",
            failable=True,
        ),
        pool("date", "datetime"),
    ),
    "cast": st.one_of(
        st.builds(
            lambda col, sep: rule_field(
                "cast",
                {"to": "int", "thousands_separator": sep},
                col=col,
                values="NUMBERS",
                failable=True,
            ),
            pool("integer", "bigint", "numeric(12,2)", "text"),
            pool("", ","),
        ),
        st.builds(
            lambda scale, col: rule_field(
                "cast",
                {"to": "decimal", "scale": scale, "thousands_separator": ","},
                col=col.format(s=scale, s1=max(scale - 1, 0), p=scale + 2),
                values="NUMBERS",
                failable=True,
            ),
            st.integers(0, 10),
            pool("numeric(20,{s})", "numeric(20,{s1})", "numeric({p},{s})"),
        ),
        st.just(rule_field("cast", {"to": "bool"}, col="boolean", values="BOOLS", failable=True)),
        st.just(rule_field("cast", {"to": "text"})),
    ),
    "truncate": st.builds(
        lambda n, o, col: rule_field(
            "truncate",
            {"length": n, "on_overflow": o},
            col=col.format(n=n),
            failable=o == "fail",
        ),
        st.integers(1, 6),
        pool("truncate", "truncate", "fail"),
        pool("text", "varchar({n})", "char({n})"),
    ),
    "default_if_null": st.builds(
        lambda bl: rule_field("default_if_null", {"value": "D\\N", "blank_is_null": bl}), b
    ),
    "constant": st.builds(
        lambda v: rule_field("constant", {"value": v}), pool("const\t'\"\\N", "ü ", "0")
    ),
    "uuid_from_key": st.builds(
        lambda scope, frm, col: rule_field("uuid_from_key", {"scope": scope, "from": frm}, col=col),
        pool("", "things"),
        pool("source_key", "value"),
        pool("uuid", "text"),
    ),
    "hash": st.builds(
        lambda salt, col: rule_field("hash", {"salt": salt}, col=col),
        pool("", "pepper\t"),
        pool("text", "char(64)"),
    ),
    "mask": st.builds(
        lambda k, c: rule_field("mask", {"keep_last": k, "mask_char": c}),
        st.integers(0, 4),
        pool("*", "#", ""),
    ),
    "reference_lookup": st.builds(
        lambda col: rule_field(
            "reference_lookup", {"entity": "parents"}, col=col, values="REFS", failable=True
        ),
        pool("integer", "text"),
    ),
}
TYPED = {  # typed copy fields: column type -> friendly values
    "timestamptz": STAMPS,
    "json": JSONS,
    "uuid": UUIDS,
    "boolean": BOOLS,
    "numeric(8,2)": NUMERIC_EDGES,
    "char(3)": CHARS,
    "varchar(5)": CHARS,
}
VALUES = {
    "hostile": hostile,
    "COPY": st.one_of(hostile, hostile, st.just("NULL")),
    "MAPPED": MAPPED,
    "MATCHING": MATCHING,
    "PHONES": PHONES,
    "EMAILS": EMAILS,
    "NUMBERS": NUMBERS,
    "BOOLS": BOOLS,
    "REFS": REFS,
    "DATES": st.one_of(DATES, pool(None, "")),
    **TYPED,
}


def plan_strategy():
    """Every rule type once (order drawn), then the typed copy fields."""
    rules = st.permutations(sorted(FIELDS)).flatmap(
        lambda names: st.tuples(*[FIELDS[n] for n in names])
    )
    typed = [st.just(rule_field("copy", {}, col=t, values=t, failable=True)) for t in TYPED]
    return st.builds(
        lambda fields, extra, default: {"fields": [*fields, *extra], "lookup_default": default},
        rules,
        st.tuples(*typed),
        pool(None, "dflt", ""),
    )
