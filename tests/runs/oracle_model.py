"""The independent oracle of the data path (tests/runs/test_oracle_data_path.py): what every
rule of the registry should produce (what a typed target column should accept and hold is
oracle_target.py).

Written from the rules' documented behaviour (labels, descriptions, null handling, parameter
help) and from PostgreSQL's documented input syntax — in plain Python (``str``, ``re``,
``datetime``, ``decimal``, ``hashlib``, ``uuid``), never calling the engine's rule functions,
its validation or its canonical forms. ``FAIL`` marks a failing row.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal


class Fail:
    """The row fails here: the field and the category the record must name."""

    def __init__(self, category: str) -> None:
        self.category = category

    def __repr__(self) -> str:
        return f"FAIL({self.category})"


@dataclass
class Context:
    """What a rule may read besides its value: lookup, parents' target ids, the row's key."""

    lookup: dict[str, str]
    lookup_default: str | None
    parents: dict[str, str]  # parent source key -> its target id (text)
    source_key: str
    namespace: str


def is_ws(c: str) -> bool:
    return c.isspace()


def strip(v: str) -> str:
    return v.strip()  # every character str.isspace() knows, at both ends


def blank(v: str | None) -> bool:
    return v is None or v == ""


# ----------------------------------------------------------------------------- rules


def o_copy(v, p, c):
    return v


def o_trim(v, p, c):
    if v is None:
        return None
    if p["collapse_inner"]:
        out, run = [], False
        for ch in v:
            if is_ws(ch):
                if not run:
                    out.append(" ")
                run = True
            else:
                out.append(ch)
                run = False
        v = "".join(out)
    v = strip(v)
    return None if v == "" and p["empty_to_null"] else v


def o_upper(v, p, c):
    return None if v is None else v.upper()


def o_lower(v, p, c):
    return None if v is None else v.lower()


# The title rule's documented exceptions (its description and docs/engine.md): legal-form and
# country tokens written as listed, contractions after an apostrophe kept lower; no other
# capitals are kept.
TITLE_TOKENS = [
    "LLC",
    "LLP",
    "LTD",
    "PLC",
    "GmbH",
    "AG",
    "KG",
    "NV",
    "BV",
    "SARL",
    "USA",
    "UK",
    "EU",
    "UAE",
    "IBM",
]
ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def _oracle_word(word: str) -> str:
    lead = 0
    while lead < len(word) and word[lead] in ASCII_PUNCT:
        lead += 1
    tail = len(word)
    while tail > lead and word[tail - 1] in ASCII_PUNCT:
        tail -= 1
    core = word[lead:tail]
    plain = core != "" and all(
        ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" for ch in core
    )
    if plain:
        for token in TITLE_TOKENS:
            if token.lower() == core.lower():
                return word[:lead] + token + word[tail:]
    titled = word.title()
    out = ""
    k = 0
    while k < len(titled):
        ch = titled[k]
        out += ch
        k += 1
        if ch in "'’" and k >= 2 and titled[k - 2].isalpha():
            run = ""
            while k < len(titled) and titled[k].isalpha():
                run += titled[k]
                k += 1
            out += run.lower() if run.lower() in ("s", "t", "d", "m", "ll", "re", "ve") else run
    return out


def o_title(v, p, c):
    if v is None:
        return None
    out, word = "", ""
    for ch in v:
        if ch.isspace():
            out += (_oracle_word(word) if word else "") + ch
            word = ""
        else:
            word += ch
    return out + (_oracle_word(word) if word else "")


def o_concat(vs, p, c):
    parts = [strip(v) if (v is not None and p["strip"]) else v for v in vs]
    parts = [v for v in parts if not blank(v)]
    return p["separator"].join(parts) if parts else None


def o_coalesce(vs, p, c):
    return next((v for v in vs if not blank(v)), None)


def o_split(v, p, c):
    if v is None:
        return None
    parts = v.split(p["separator"])
    i = p["index"]
    if not (-len(parts) <= i < len(parts)):
        return None
    out = parts[i]
    if p["strip"]:
        out = strip(out)
    return None if out == "" else out


def o_value_map(v, p, c):
    table = c.lookup
    probe = v
    if p["ignore_case"]:
        table = {}
        for k, val in c.lookup.items():
            table.setdefault(strip(k).lower(), val)
        probe = None if v is None else strip(v).lower()
    if probe is not None and probe in table:
        return table[probe]
    if blank(v):
        how = p["on_null"]
        return (
            Fail("lookup_miss")
            if how == "fail"
            else (c.lookup_default if how == "default" else None)
        )
    how = p["on_missing"]
    return Fail("lookup_miss") if how == "fail" else (v if how == "keep" else c.lookup_default)


def o_regex_replace(v, p, c):
    return None if v is None else re.sub(p["pattern"], p["replacement"], v)


def o_regex_validate(v, p, c):
    if blank(v):
        return v
    match = re.fullmatch if p["full_match"] else re.search
    return v if match(p["pattern"], v) else Fail("invalid_format")


def o_phone_format(v, p, c):
    if v is None or strip(v) == "":
        return None
    digits = "".join(ch for ch in v if ch in "0123456789")
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) != 10:
        return Fail("invalid_format")
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


_LOCAL = r"[a-z0-9\u00c0-\uffff!#%&'*+/=?^_`{|}~.-]+"
_LABEL = r"[a-z0-9\u00c0-\uffff-]+"


def o_email(v, p, c):
    if v is None:
        return None
    t = strip(v).lower()
    if t == "":
        return None
    pattern = _LOCAL + "@" + _LABEL + r"(\." + _LABEL + r")*\.[a-z\u00c0-\uffff]{2,}"
    if ".." in t or not re.fullmatch(pattern, t):
        return Fail("invalid_format")
    return t


def o_parse_date(v, p, c):
    if v is None or strip(v) == "":
        return None
    t = strip(v)
    for fmt in p["formats"]:
        try:
            parsed = datetime.strptime(t, fmt)  # noqa: DTZ007 - naive on purpose
        except ValueError:
            continue
        return parsed.strftime("%Y-%m-%d" if p["output"] == "date" else "%Y-%m-%d %H:%M:%S")
    return Fail("invalid_date")


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def o_cast(v, p, c):
    if v is None:
        return None
    if p["to"] == "text":
        return v
    t = strip(v)
    if p["thousands_separator"]:
        t = t.replace(p["thousands_separator"], "")
    if t == "":
        return None
    if p["to"] == "int":
        m = re.fullmatch(r"([+-]?)([0-9]+)(\.0*)?", t)
        if not m:
            return Fail("type_cast")
        return str(int(m.group(1) + m.group(2)))
    if p["to"] == "decimal":
        if not re.fullmatch(r"[+-]?([0-9]{1,28}(\.[0-9]*)?|\.[0-9]+)", t):
            return Fail("type_cast")
        q = Decimal(t).quantize(Decimal(1).scaleb(-p["scale"]), rounding=ROUND_HALF_UP)
        return format(q, "f")
    word = t.lower()
    if word in _TRUE:
        return "true"
    if word in _FALSE:
        return "false"
    return Fail("type_cast")


def o_truncate(v, p, c):
    if v is None or len(v) <= p["length"]:
        return v
    return Fail("too_long") if p["on_overflow"] == "fail" else v[: p["length"]]


def o_default_if_null(v, p, c):
    missing = v is None or (p["blank_is_null"] and v == "")
    return p["value"] if missing else v


def o_constant(v, p, c):
    return p["value"]


def _namespace(c: Context, scope: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"migration-planner:{c.namespace}/{scope}")


def o_uuid_from_key(v, p, c):
    name = c.source_key if p["from"] == "source_key" else v
    return None if name is None else str(uuid.uuid5(_namespace(c, p["scope"]), name))


def o_hash(v, p, c):
    if v is None or v == "":
        return v
    return hashlib.sha256((p["salt"] + v).encode()).hexdigest()


def o_mask(v, p, c):
    if v is None:
        return None
    char, keep = (p["mask_char"] or "*")[0], p["keep_last"]
    if len(v) <= keep:
        return char * len(v)
    return char * (len(v) - keep) + (v[len(v) - keep :] if keep else "")


def o_reference_lookup(v, p, c):
    if v is None or strip(v) == "":
        return None
    return c.parents.get(strip(v), Fail("reference_missing"))


ORACLE = {
    "copy": o_copy,
    "trim": o_trim,
    "upper": o_upper,
    "lower": o_lower,
    "title": o_title,
    "concat": o_concat,
    "coalesce": o_coalesce,
    "split": o_split,
    "value_map": o_value_map,
    "regex_replace": o_regex_replace,
    "regex_validate": o_regex_validate,
    "phone_format": o_phone_format,
    "email": o_email,
    "parse_date": o_parse_date,
    "cast": o_cast,
    "truncate": o_truncate,
    "default_if_null": o_default_if_null,
    "constant": o_constant,
    "uuid_from_key": o_uuid_from_key,
    "hash": o_hash,
    "mask": o_mask,
    "reference_lookup": o_reference_lookup,
}
FRAME_RULES = {"concat", "coalesce"}  # take every source column of the field


# ----------------------------------------------------------------------------- a field's result


def field_result(steps, values: list[str | None], ctx: Context) -> str | None | Fail:
    """The value a field's chain produces from its source values, or the first Fail."""
    first = steps[0][0]
    value: object = values if first in FRAME_RULES else values[0]
    for name, params in steps:
        value = ORACLE[name](value, params, ctx)
        if isinstance(value, Fail):
            return value
    return value  # type: ignore[return-value]
