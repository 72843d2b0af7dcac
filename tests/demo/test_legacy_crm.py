"""The dirty legacy-CRM source and the empty new-CRM target, on SQLite and PostgreSQL."""

import hashlib
import os
import re
import sqlite3
import uuid
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from mappings.demo import legacy_crm as lc
from tests.support import mysql

PG_ADMIN = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:54329/postgres")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _new_pg_database() -> tuple[str, str]:
    name = f"legacy_crm_test_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name, urlunsplit(urlsplit(PG_ADMIN)._replace(path="/" + name))


def _drop_pg_database(name: str) -> None:
    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def _make_url(backend, folder):
    if backend == "sqlite":
        return f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}", None
    name, url = _new_pg_database()
    return url, name


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path):
    """An empty database of each backend."""
    db_url, pg_name = _make_url(request.param, tmp_path)
    yield db_url
    if pg_name:
        _drop_pg_database(pg_name)


@pytest.fixture(scope="module", params=BACKENDS)
def small(request, tmp_path_factory):
    """A source built at rows=200, the smallest size that must still hold every kind of dirt."""
    db_url, pg_name = _make_url(request.param, tmp_path_factory.mktemp("small"))
    lc.build_source(db_url, rows=200, seed=7)
    yield db_url
    if pg_name:
        _drop_pg_database(pg_name)


def _connect(db_url):
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.split(":///", 1)[1])
        conn.execute("PRAGMA foreign_keys = ON")
        return conn
    return psycopg2.connect(db_url)


def _rows(db_url, query):
    conn = _connect(db_url)
    try:
        cur = conn.cursor()
        cur.execute(query)
        return cur.fetchall()
    finally:
        conn.close()


def _column(db_url, table, column):
    return [r[0] for r in _rows(db_url, f'SELECT "{column}" FROM "{table}"')]


def _content_hash(db_url):
    digest = hashlib.sha256()
    keys = {"customers": "Customer_ID", "contacts": "Contact_ID", "orders": "Order_ID"}
    for table, key in keys.items():
        for row in _rows(db_url, f'SELECT * FROM "{table}" ORDER BY "{key}"'):
            digest.update(repr([None if v is None else str(v) for v in row]).encode())
    return digest.hexdigest()


def _any(values, pattern):
    return any(v is not None and re.fullmatch(pattern, v) for v in values)


def _execute(db_url, query, params=()):
    conn = _connect(db_url)
    try:
        cur = conn.cursor()
        cur.execute(query, params)
        conn.commit()
    finally:
        conn.close()


# ------------------------------------------------------------------ building


def test_build_source_counts_rows_per_table(url):
    counts = lc.build_source(url, rows=500)

    expected = {"customers": 500, "contacts": 1000, "orders": 1500}
    assert counts == expected
    assert lc.source_exists(url) == expected


def test_source_exists_none_before_build(url):
    assert lc.source_exists(url) is None


def test_build_source_same_seed_same_content(tmp_path):
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"

    lc.build_source(first, rows=300, seed=11)
    lc.build_source(second, rows=300, seed=11)

    assert _content_hash(first) == _content_hash(second)


def test_build_source_other_seed_other_content(tmp_path):
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"

    lc.build_source(first, rows=300, seed=11)
    lc.build_source(second, rows=300, seed=12)

    assert _content_hash(first) != _content_hash(second)


@pytest.mark.postgres
def test_build_source_same_data_on_both_backends(tmp_path):
    sqlite_url = f"sqlite:///{tmp_path / 'a.db'}"
    name, pg_url = _new_pg_database()
    try:
        lc.build_source(sqlite_url, rows=300, seed=5)
        lc.build_source(pg_url, rows=300, seed=5)

        assert _content_hash(sqlite_url) == _content_hash(pg_url)
    finally:
        _drop_pg_database(name)


def test_build_source_twice_is_idempotent(url):
    first = lc.build_source(url, rows=200, seed=3)
    first_hash = _content_hash(url)

    second = lc.build_source(url, rows=200, seed=3, replace=True)

    assert second == first
    assert _content_hash(url) == first_hash


def test_build_source_without_replace_keeps_existing(url):
    lc.build_source(url, rows=200)

    counts = lc.build_source(url, rows=300, replace=False)

    assert counts["customers"] == 200


def test_build_source_rejects_too_few_rows(url):
    with pytest.raises(ValueError, match="at least"):
        lc.build_source(url, rows=10)


def test_build_source_rejects_unknown_url_scheme():
    with pytest.raises(ValueError, match="scheme"):
        lc.build_source("oracle://scott@localhost/crm", rows=100)


def test_build_source_into_mysql_and_target_refused_there():
    """MySQL holds a legacy source; it is never a target."""
    with mysql.throwaway_database("demo_my") as name:
        url = mysql.url_for(name)
        assert lc.build_source(url, rows=100, seed=3) == {
            "customers": 100,
            "contacts": 200,
            "orders": 300,
        }
        assert lc.source_exists(url) == {"customers": 100, "contacts": 200, "orders": 300}
        with pytest.raises(ValueError, match="sources only"):
            lc.build_target(url)


# ------------------------------------------------------------------ dirt (rows=200)


def test_dirt_names_spaces_case_length_null(small):
    names = _column(small, "customers", "Cust_Name")
    present = [n for n in names if n is not None]

    assert any(n != n.strip() for n in present)
    assert any("  " in n.strip() for n in present)
    assert any(n.isupper() for n in present)
    assert any(n.islower() and n.endswith(".") for n in present)
    assert any(len(n) > 80 for n in present)
    assert None in names


def test_dirt_phones_every_format(small):
    phones = _column(small, "customers", "Phone_Number")

    for pattern in [
        r"\d{3}-\d{3}-\d{4}",
        r"\(\d{3}\) \d{3}-\d{4}",
        r"\d{3}\.\d{3}\.\d{4}",
        r"\d{10}",
        r"\+1 \d{3} \d{3} \d{4}",
        r"1-\d{3}-\d{3}-\d{4}",
        r"\d{3}-\d{3}-\d{4} x\d+",
    ]:
        assert _any(phones, pattern), pattern
    assert "12345" in phones
    assert None in phones


def test_dirt_emails_messy_invalid_duplicate(small):
    rows = _rows(small, 'SELECT "Cust_Name", "Email_Address" FROM customers')
    emails = [e for _, e in rows]

    assert _any(emails, r"[A-Z0-9.]+@[A-Z0-9.]+")
    assert _any(emails, r" .+@.+ ")
    assert {"john@", "no-at-sign.com", "a@b"} <= set(emails)
    assert any(e and len(e) > 80 for e in emails)
    assert None in emails
    names_per_email = Counter(e for _, e in set(rows) if e)
    assert any(count > 1 for count in names_per_email.values())


def test_dirt_duplicate_customer_rows(small):
    rows = _rows(
        small, 'SELECT "Cust_Name", "Email_Address", "Phone_Number", "Customer_ID" FROM customers'
    )

    same = Counter(row[:3] for row in rows)

    assert any(count > 1 for count in same.values())


def test_dirt_creation_dates_formats_and_impossible(small):
    dates = _column(small, "customers", "Creation_Date")

    for pattern in [
        r"\d{4}-\d\d-\d\d \d\d:\d\d",
        r"\d\d/\d\d/\d{4}",
        r"\d\d\.\d\d\.\d{4}",
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d",
        r"[A-Z][a-z]{2} \d\d \d{4}",
    ]:
        assert _any(dates, pattern), pattern
    assert {"2021-02-30", "13/45/2019", ""} <= set(dates)
    assert None in dates


def test_dirt_status_codes(small):
    statuses = set(_column(small, "customers", "Status"))

    assert statuses == {"1", "0", "2", "A", "I", None}


def test_dirt_states_valid_lowercase_invalid(small):
    states = _column(small, "customers", "State_Code")

    assert any(s in lc.US_STATES for s in states)
    assert any(s and s.islower() and s.upper() in lc.US_STATES for s in states)
    assert {"XX", "C", "ZZ"} <= set(states)
    assert None in states


def test_dirt_address_city_zip(small):
    rows = _rows(small, 'SELECT "Address_Line2", "City", "Zip_Code" FROM customers')
    line2, cities, zips = zip(*rows, strict=True)

    assert None in line2 and "" in line2 and any(line2)
    assert None in cities and any(c and len(c) > 40 for c in cities)
    assert _any(zips, r"\d{5}") and _any(zips, r"\d{5}-\d{4}")
    assert any(z and not re.fullmatch(r"\d{5}(-\d{4})?", z) for z in zips)


def test_dirt_notes_long_short_null(small):
    lengths = [r[0] for r in _rows(small, 'SELECT length("Legacy_Notes") FROM customers')]

    assert max(v for v in lengths if v is not None) > 32000
    assert None in lengths
    assert any(v is not None and v < 100 for v in lengths)


def test_dirt_orphan_contacts_and_orders(small):
    orphan_contacts = _rows(
        small,
        'SELECT count(*) FROM contacts c WHERE c."Customer_ID" IS '
        "NOT NULL AND NOT EXISTS (SELECT 1 FROM customers p WHERE "
        'p."Customer_ID" = c."Customer_ID")',
    )[0][0]
    orphan_orders = _rows(
        small,
        'SELECT count(*) FROM orders o WHERE o."Contact_ID" IS NOT '
        "NULL AND NOT EXISTS (SELECT 1 FROM contacts p WHERE "
        'p."Contact_ID" = o."Contact_ID")',
    )[0][0]

    assert orphan_contacts >= 1
    assert orphan_orders >= 1


def test_dirt_contacts_names_and_titles(small):
    rows = _rows(small, 'SELECT "First_Name", "Last_Name", "Title" FROM contacts')
    first, last, titles = zip(*rows, strict=True)

    assert None in last and any(v and len(v) > 80 for v in last)
    assert any(v and len(v) > 40 for v in first)
    assert any(v and v != v.strip() for v in first)
    assert any(v and len(v) > 128 for v in titles)


def test_dirt_order_amounts_and_dates(small):
    amounts = _column(small, "orders", "Total_Amount")
    dates = _column(small, "orders", "Order_Date")

    assert _any(amounts, r"\d+\.\d\d") and _any(amounts, r"\$\d{1,3}(,\d{3})*\.\d\d")
    assert _any(amounts, r"\d{1,3},\d{3}\.\d\d") and _any(amounts, r"\d+\.\d")
    assert {"N/A", "99999999999.99", None} <= set(amounts)
    assert _any(dates, r"\d{4}-\d\d-\d\d") and "2021-02-30" in dates


def test_dirt_profile_covers_every_injected_column():
    columns = {k.rsplit(".", 1)[0] for k in lc.DIRT_PROFILE}

    assert {
        "customers.Cust_Name",
        "customers.Phone_Number",
        "contacts.Email",
        "orders.Total_Amount",
        "customers",
        "contacts",
        "orders",
    } <= columns
    assert all(0 < share < 1 for share in lc.DIRT_PROFILE.values())
    assert len(lc.US_STATES) == 51 and lc.US_STATES["DC"] == "District of Columbia"


# ------------------------------------------------------------------ target


def _target_columns(db_url, table):
    if db_url.startswith("sqlite"):
        return {r[1] for r in _rows(db_url, f'PRAGMA table_info("{table}")')}
    return {
        r[0]
        for r in _rows(
            db_url,
            f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'",
        )
    }


def _insert_account(db_url, number, name="Acme Corp."):
    _execute(
        db_url,
        "INSERT INTO accounts (account_number, name, account_status) "
        f"VALUES ('{number}', '{name}', 'Active')",
    )


def _integrity_errors():
    return (sqlite3.IntegrityError, psycopg2.IntegrityError, psycopg2.DataError)


def test_build_target_creates_empty_tables_with_columns(url):
    lc.build_target(url)

    assert lc.target_exists(url) == {"accounts": 0, "contacts": 0, "orders": 0}
    assert _target_columns(url, "accounts") == {c.name for c in lc.TARGET_SCHEMA["accounts"]}
    assert {"legacy_contact_id", "account_id", "last_name"} <= _target_columns(url, "contacts")
    assert {"legacy_order_id", "contact_id", "total_amount"} <= _target_columns(url, "orders")


def test_build_target_duplicate_account_number_fails(url):
    lc.build_target(url)
    _insert_account(url, "1001")

    with pytest.raises(_integrity_errors()):
        _insert_account(url, "1001")


def test_build_target_name_over_80_fails(url):
    lc.build_target(url)

    with pytest.raises(_integrity_errors()):
        _insert_account(url, "1002", name="x" * 81)


def test_build_target_contact_needs_existing_account(url):
    lc.build_target(url)

    with pytest.raises(_integrity_errors()):
        _execute(
            url,
            "INSERT INTO contacts (legacy_contact_id, account_id, last_name) "
            "VALUES ('1', 999, 'Smith')",
        )


def test_build_target_replace_empties_tables(url):
    lc.build_target(url)
    _insert_account(url, "1001")

    lc.build_target(url, replace=True)

    assert lc.target_exists(url)["accounts"] == 0


def test_build_target_without_replace_keeps_rows(url):
    lc.build_target(url)
    _insert_account(url, "1001")

    lc.build_target(url, replace=False)

    assert lc.target_exists(url)["accounts"] == 1


def test_source_exists_missing_sqlite_file_creates_nothing(tmp_path):
    path = tmp_path / "missing.db"

    assert lc.source_exists(f"sqlite:///{path}") is None
    assert not path.exists()
