"""Generating the rows block by block, each block from its own seeded generator, with the
profile's dirt injected into an exact number of rows."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np

from .profile import (
    _CITY,
    _CITY_CODE,
    _COMPANY,
    _FIRST,
    _FSLUG,
    _KIND,
    _KSLUG,
    _LAST,
    _LONG_CITY,
    _LONG_LOCAL,
    _LONG_NOTES,
    _LONG_TAIL,
    _LONG_TITLE,
    _LSLUG,
    _MAIL_DOMAIN,
    _MAILBOX,
    _MONTHS,
    _NOTES,
    _ORDER_STATUS,
    _SLUG,
    _STREET,
    _STREET_KIND,
    _SUFFIX,
    _T2,
    _T3,
    _T4,
    _TITLE,
    _UNIT,
    BLOCK_ROWS,
    CHILD_FACTOR,
    DIRT_PROFILE,
    FIRST_ID,
    SOURCE_TABLES,
    Maker,
)


def _groups(
    rng: np.random.Generator, n: int, prefix: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Disjoint random row sets of exactly max(1, round(share*n)) rows per kind, and the rest."""
    shares = {
        k.rsplit(".", 1)[1]: v for k, v in DIRT_PROFILE.items() if k.rsplit(".", 1)[0] == prefix
    }
    counts = [max(1, round(share * n)) for share in shares.values()]
    if sum(counts) > n:
        raise ValueError(f"{n} rows are too few for the dirt of {prefix}")
    perm = rng.permutation(n)
    bounds = np.cumsum([0, *counts])
    groups = {k: perm[a:b] for k, a, b in zip(shares, bounds[:-1], bounds[1:], strict=True)}
    return groups, perm[bounds[-1] :]


def _dirty(
    rng: np.random.Generator, base: np.ndarray, prefix: str, makers: dict[str, Maker]
) -> np.ndarray:
    """Copy of base with each DIRT_PROFILE kind under prefix written by its maker."""
    groups, _ = _groups(rng, len(base), prefix)
    out = base.copy()
    for kind, idx in groups.items():
        out[idx] = makers[kind](idx)
    return out


def _cycle(*values: Any) -> Maker:
    choices = np.array(values, dtype=object)
    return lambda idx: choices[np.arange(len(idx)) % len(choices)]


def _const(value: Any) -> Maker:
    return lambda idx: value


def _num(values: np.ndarray) -> np.ndarray:
    return values.astype(str).astype(object)


def _ustr(fn: Callable[..., np.ndarray], values: np.ndarray, *args: Any) -> np.ndarray:
    """Apply a numpy.strings function to an object array of str."""
    return fn(values.astype(str), *args).astype(object)


def _pick(rng: np.random.Generator, table: np.ndarray, n: int) -> np.ndarray:
    return table[rng.integers(0, len(table), n)]


def _padded(values: np.ndarray) -> np.ndarray:
    """Leading, trailing or doubled inner spaces, in turn."""
    out = values.copy()
    out[0::3] = "  " + out[0::3]
    out[1::3] = out[1::3] + "  "
    out[2::3] = _ustr(np.strings.replace, out[2::3], " ", "  ", 1) + " "
    return out


def _over(values: np.ndarray, length: int) -> np.ndarray:
    return values + " " + _LONG_TAIL[:length]


def _timestamps(rng: np.random.Generator, n: int) -> np.ndarray:
    secs = rng.integers(0, 2 * 365 * 86400, n).astype("timedelta64[s]")
    text = np.datetime_as_string(np.datetime64("2024-01-01T00:00:00") + secs, unit="s")
    return np.strings.replace(text, "T", " ").astype(object)


def _phones(rng: np.random.Generator, n: int, prefix: str) -> np.ndarray:
    a, e = _T3[rng.integers(201, 990, n)], _T3[rng.integers(200, 1000, n)]
    line = _T4[rng.integers(0, 10000, n)]
    base = a + "-" + e + "-" + line
    return _dirty(
        rng,
        base,
        prefix,
        {
            "paren": lambda i: "(" + a[i] + ") " + e[i] + "-" + line[i],
            "dotted": lambda i: a[i] + "." + e[i] + "." + line[i],
            "digits": lambda i: a[i] + e[i] + line[i],
            "plus1": lambda i: "+1 " + a[i] + " " + e[i] + " " + line[i],
            "one_dash": lambda i: "1-" + base[i],
            "extension": lambda i: base[i] + " x" + _T3[rng.integers(100, 1000, len(i))],
            "invalid": _cycle("12345", "555-1234", "N/A", "0000000000", "call office"),
            "null": _const(None),
        },
    )


def _emails(rng: np.random.Generator, base: np.ndarray, prefix: str) -> np.ndarray:
    groups, rest = _groups(rng, len(base), prefix)
    out = base.copy()
    messy = _ustr(np.strings.upper, base[groups["messy"]])
    messy[1::2] = " " + messy[1::2] + " "
    out[groups["messy"]] = messy
    out[groups["invalid"]] = _cycle(
        "john@", "no-at-sign.com", "a@b", "info@@acme.com", "sales at acme.com", "@example.com"
    )(groups["invalid"])
    out[groups["duplicate"]] = base[rng.choice(rest, len(groups["duplicate"]))]
    out[groups["over_80"]] = _LONG_LOCAL + base[groups["over_80"]]
    out[groups["null"]] = None
    return out


def _dates(
    rng: np.random.Generator, n: int, prefix: str, span: tuple[str, str], with_time: bool
) -> np.ndarray:
    lo, hi = (np.datetime64(d, "D").astype(np.int64) for d in span)
    days = rng.integers(lo, hi, n).astype("datetime64[D]")
    secs = rng.integers(0, 86400, n)
    month_no = days.astype("datetime64[M]").astype(np.int64) % 12
    y = _T4[days.astype("datetime64[Y]").astype(np.int64) + 1970]
    m, d = _T2[month_no + 1], _T2[(days - days.astype("datetime64[M]")).astype(np.int64) + 1]
    hh, mm, ss = _T2[secs // 3600], _T2[secs // 60 % 60], _T2[secs % 60]
    iso = y + "-" + m + "-" + d
    base = iso + " " + hh + ":" + mm if with_time else iso
    return _dirty(
        rng,
        base,
        prefix,
        {
            "us": lambda i: m[i] + "/" + d[i] + "/" + y[i],
            "eu": lambda i: d[i] + "." + m[i] + "." + y[i],
            "iso_t": lambda i: iso[i] + "T" + hh[i] + ":" + mm[i] + ":" + ss[i],
            "month_name": lambda i: _MONTHS[month_no[i]] + " " + d[i] + " " + y[i],
            "impossible": _cycle(
                "2021-02-30", "13/45/2019", "2019-04-31 08:00", "31.02.2020", "2020-13-01"
            ),
            "empty": _const(""),
            "null": _const(None),
        },
    )


def _parents(rng: np.random.Generator, n: int, prefix: str, parent_rows: int) -> np.ndarray:
    """Parent ids (object ints); orphans point past the last parent id."""
    last = FIRST_ID + parent_rows - 1
    base = rng.integers(FIRST_ID, last + 1, n).astype(object)
    return _dirty(
        rng,
        base,
        prefix,
        {
            "orphan": lambda i: (last + rng.integers(1, 100_000, len(i))).astype(object),
            "parent_null": _const(None),
        },
    )


# ---------------------------------------------------------------- tables


def _blocks(table: str, rows: int, seed: int) -> Iterator[dict[str, np.ndarray]]:
    """Deterministic blocks of generated rows for one source table."""
    total = rows * CHILD_FACTOR[table]
    make = {
        "customers": _customers,
        "contacts": partial(_contacts, parents=rows),
        "orders": partial(_orders, parents=2 * rows),
    }[table]
    sizes = [len(b) for b in np.array_split(np.arange(total), math.ceil(total / BLOCK_ROWS))]
    start = 0
    for number, size in enumerate(sizes):
        rng = np.random.default_rng([seed, SOURCE_TABLES.index(table), number])
        yield make(rng, size, FIRST_ID + start)
        start += size


def _customers(rng: np.random.Generator, n: int, first_id: int) -> dict[str, np.ndarray]:
    dups = max(1, round(DIRT_PROFILE["customers.duplicate_row"] * n))
    originals = _customer_originals(rng, n - dups, first_id)
    order = rng.permutation(np.concatenate([np.arange(n - dups), rng.integers(0, n - dups, dups)]))
    cols = {name: values[order] for name, values in originals.items()}
    cols["Customer_ID"] = np.arange(first_id, first_id + n, dtype=np.int64)
    cols["Last_Modified"] = _timestamps(rng, n)
    return cols


def _customer_originals(rng: np.random.Generator, m: int, first_id: int) -> dict[str, Any]:
    word, kind = rng.integers(0, len(_COMPANY), m), rng.integers(0, len(_KIND), m)
    name = _COMPANY[word] + " " + _KIND[kind] + _pick(rng, _SUFFIX, m)
    city = rng.integers(0, len(_CITY), m)
    zip5 = rng.integers(501, 99951, m)
    zip5 = _T3[zip5 // 100] + _T2[zip5 % 100]
    mail = (
        _pick(rng, _MAILBOX, m)
        + "@"
        + _SLUG[word]
        + _KSLUG[kind]
        + _num(np.arange(first_id, first_id + m))
        + ".com"
    )
    return {
        "Cust_Name": _dirty(
            rng,
            name,
            "customers.Cust_Name",
            {
                "padded": lambda i: _padded(name[i]),
                "upper": lambda i: _ustr(np.strings.upper, name[i]),
                "lower_dot": lambda i: (
                    _ustr(np.strings.rstrip, _ustr(np.strings.lower, name[i]), ".") + "."
                ),
                "over_80": lambda i: _over(name[i], 80),
                "null": _const(None),
            },
        ),
        "Address_Line1": (
            _num(rng.integers(1, 9999, m))
            + " "
            + _pick(rng, _STREET, m)
            + _pick(rng, _STREET_KIND, m)
        ),
        "Address_Line2": _dirty(
            rng,
            _pick(rng, _UNIT, m) + _num(rng.integers(1, 999, m)),
            "customers.Address_Line2",
            {"null": _const(None), "empty": _const("")},
        ),
        "City": _dirty(
            rng,
            _CITY[city],
            "customers.City",
            {"null": _const(None), "over_40": _cycle(*_LONG_CITY)},
        ),
        "State_Code": _dirty(
            rng,
            _CITY_CODE[city],
            "customers.State_Code",
            {
                "lowercase": lambda i: _ustr(np.strings.lower, _CITY_CODE[city[i]]),
                "invalid": _cycle("XX", "C", "ZZ", "CAL", "N/A"),
                "null": _const(None),
            },
        ),
        "Zip_Code": _dirty(
            rng,
            zip5,
            "customers.Zip_Code",
            {
                "zip4": lambda i: zip5[i] + "-" + _T4[rng.integers(0, 10000, len(i))],
                "bad": _cycle("1234", "ABCDE", "90210-", "00000", "9021O"),
                "null": _const(None),
            },
        ),
        "Phone_Number": _phones(rng, m, "customers.Phone_Number"),
        "Email_Address": _emails(rng, mail, "customers.Email_Address"),
        "Creation_Date": _dates(
            rng, m, "customers.Creation_Date", ("2005-01-01", "2024-01-01"), with_time=True
        ),
        "Status": _dirty(
            rng,
            np.full(m, "1", dtype=object),
            "customers.Status",
            {
                "inactive_0": _const("0"),
                "active_A": _const("A"),
                "inactive_I": _const("I"),
                "unmapped_2": _const("2"),
                "null": _const(None),
            },
        ),
        "Legacy_Notes": _dirty(
            rng,
            _pick(rng, _NOTES, m),
            "customers.Legacy_Notes",
            {"null": _const(None), "over_32000": _cycle(*_LONG_NOTES)},
        ),
    }


def _contacts(
    rng: np.random.Generator, n: int, first_id: int, *, parents: int
) -> dict[str, np.ndarray]:
    fi, li = rng.integers(0, len(_FIRST), n), rng.integers(0, len(_LAST), n)
    first, last = _FIRST[fi], _LAST[li]
    mail = (
        _FSLUG[fi]
        + "."
        + _LSLUG[li]
        + _num(np.arange(first_id, first_id + n))
        + "@"
        + _pick(rng, _MAIL_DOMAIN, n)
    )
    return {
        "Contact_ID": np.arange(first_id, first_id + n, dtype=np.int64),
        "Customer_ID": _parents(rng, n, "contacts", parents),
        "First_Name": _dirty(
            rng,
            first,
            "contacts.First_Name",
            {
                "padded": lambda i: _padded(first[i]),
                "upper": lambda i: _ustr(np.strings.upper, first[i]),
                "over_40": lambda i: _over(first[i], 40),
                "null": _const(None),
            },
        ),
        "Last_Name": _dirty(
            rng,
            last,
            "contacts.Last_Name",
            {"null": _const(None), "over_80": lambda i: _over(last[i], 80)},
        ),
        "Email": _emails(rng, mail, "contacts.Email"),
        "Phone": _phones(rng, n, "contacts.Phone"),
        "Title": _dirty(
            rng,
            _pick(rng, _TITLE, n),
            "contacts.Title",
            {"null": _const(None), "over_128": _const(_LONG_TITLE)},
        ),
        "Last_Modified": _timestamps(rng, n),
    }


def _orders(
    rng: np.random.Generator, n: int, first_id: int, *, parents: int
) -> dict[str, np.ndarray]:
    cents = np.clip(rng.lognormal(10.5, 1.2, n), 100, 25_000_000).astype(np.int64)
    dollars, cent = cents // 100, _T2[cents % 100]
    plain = _num(dollars)
    grouped = np.where(dollars >= 1000, _num(dollars // 1000) + "," + _T3[dollars % 1000], plain)
    status = _pick(rng, _ORDER_STATUS, n)
    return {
        "Order_ID": np.arange(first_id, first_id + n, dtype=np.int64),
        "Contact_ID": _parents(rng, n, "orders", parents),
        "Order_Date": _dates(
            rng, n, "orders.Order_Date", ("2022-01-01", "2026-01-01"), with_time=False
        ),
        "Total_Amount": _dirty(
            rng,
            plain + "." + cent,
            "orders.Total_Amount",
            {
                "dollar_sign": lambda i: "$" + grouped[i] + "." + cent[i],
                "thousands": lambda i: grouped[i] + "." + cent[i],
                "one_decimal": lambda i: plain[i] + "." + _ustr(np.strings.slice, cent[i], 1),
                "negative": lambda i: "-" + plain[i] + "." + cent[i],
                "invalid": _cycle("N/A", "", "TBD", "12.34.56"),
                "overflow": _cycle("99999999999.99", "123456789012.00"),
                "null": _const(None),
            },
        ),
        "Currency": _dirty(
            rng,
            np.full(n, "USD", dtype=object),
            "orders.Currency",
            {
                "lowercase": _const("usd"),
                "other": _cycle("EUR", "GBP", "CAD"),
                "invalid": _cycle("US$", "DOLLARS", "$"),
                "null": _const(None),
            },
        ),
        "Status": _dirty(
            rng,
            status,
            "orders.Status",
            {
                "lowercase": lambda i: _ustr(np.strings.lower, status[i]),
                "unknown": _cycle("X", "??", "PENDNG"),
                "null": _const(None),
            },
        ),
        "Last_Modified": _timestamps(rng, n),
    }
