"""Demo installation: users per role, demo systems and databases, the demo plan."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection
from psycopg2 import sql

from mappings.demo import legacy_crm

from .demo_plan import demo_plan_install
from .models import Plan, System

DEMO_USERS = ("analyst", "approver", "operator", "viewer", "admin")
PG_DATABASES = {
    "source": "mp_demo_legacy_crm",
    "uat": "mp_demo_new_crm_uat",
    "prod": "mp_demo_new_crm_prod",
}
SQLITE_FILES = {
    "source": "legacy_crm.sqlite3",
    "uat": "new_crm_uat.sqlite3",
    "prod": "new_crm_prod.sqlite3",
}


@dataclass
class DemoReport:
    plan: Plan
    plan_created: bool
    source_counts: dict[str, int]
    source_rebuilt: bool
    users_created: list[str]


def demo_users_ensure(password: str) -> list[str]:
    """One user per role (admin is also staff/superuser); idempotent, returns new names."""
    created = []
    for name in DEMO_USERS:
        user, was_created = User.objects.get_or_create(
            username=name, defaults={"email": f"{name}@example.com"}
        )
        if was_created:
            user.set_password(password)
            user.is_staff = user.is_superuser = name == "admin"
            user.first_name = name.title()
            user.save()
            created.append(name)
        user.groups.add(Group.objects.get(name=name))
    return created


def _pg_params() -> dict:
    db = settings.DATABASES["default"]
    return {
        "host": db.get("HOST") or "127.0.0.1",
        "port": int(db.get("PORT") or 5432),
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or "",
    }


def _pg_url(params: dict, dbname: str) -> str:
    auth = params["user"] + (f":{params['password']}" if params["password"] else "")
    return f"postgresql://{auth}@{params['host']}:{params['port']}/{dbname}"


def _pg_create_database(params: dict, dbname: str) -> None:
    conn = psycopg2.connect(dbname="postgres", **params)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname])
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    finally:
        conn.close()


def _system(name: str, env: str, role: str, **fields) -> System:
    secret = fields.pop("secret", "")
    system, created = System.objects.get_or_create(
        name=name, defaults={"environment": env, "role": role, **fields}
    )
    if created and secret:
        system.set_secret(secret)
        system.save()
    return system


def demo_systems_ensure() -> tuple[dict[str, System], dict[str, str]]:
    """Demo source and targets on the app's own database engine; returns systems and URLs."""
    labels = {
        "source": ("Legacy CRM", "dev", "source"),
        "uat": ("New CRM (UAT)", "uat", "target"),
        "prod": ("New CRM (Production)", "prod", "target"),
    }
    systems, urls = {}, {}
    if connection.vendor == "postgresql":
        params = _pg_params()
        for key, dbname in PG_DATABASES.items():
            _pg_create_database(params, dbname)
            name, env, role = labels[key]
            systems[key] = _system(
                name,
                env,
                role,
                kind="postgresql",
                host=params["host"],
                port=params["port"],
                database=dbname,
                username=params["user"],
                secret=params["password"],
            )
            urls[key] = _pg_url(params, dbname)
        return systems, urls
    folder = Path(settings.DEMO_DATA_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    for key, filename in SQLITE_FILES.items():
        path = str((folder / filename).resolve())
        name, env, role = labels[key]
        systems[key] = _system(name, env, role, kind="sqlite", path=path)
        urls[key] = f"sqlite:///{path}"
    return systems, urls


def _ledger_drop(url: str) -> None:
    """Forget the ledger of an emptied demo target (its key maps point at deleted rows)."""
    if url.startswith("postgresql://"):
        conn = psycopg2.connect(url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("DROP SCHEMA IF EXISTS mp_ledger CASCADE")
        finally:
            conn.close()
        return
    import sqlite3

    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'mp_ledger_%'"
            )
        ]
        for name in names:
            conn.execute(f'DROP TABLE "{name}"')  # names come from sqlite_master, not users
        conn.commit()
    finally:
        conn.close()


def demo_install(*, rows: int, seed: int = 2026, reset: bool = False) -> DemoReport:
    """Install the whole demo; idempotent (data rebuilt only when missing, resized or reset)."""
    users = demo_users_ensure(settings.DEMO_PASSWORD)
    systems, urls = demo_systems_ensure()
    counts = legacy_crm.source_exists(urls["source"])
    rebuilt = reset or counts is None or counts.get("customers") != rows
    if rebuilt:
        counts = legacy_crm.build_source(urls["source"], rows=rows, seed=seed, replace=True)
    for key in ("uat", "prod"):
        if rebuilt or not legacy_crm.target_exists(urls[key]):
            legacy_crm.build_target(urls[key], replace=True)
            _ledger_drop(urls[key])
    plan, created = demo_plan_install(
        source=systems["source"],
        target=systems["uat"],
        owner=User.objects.get(username="analyst"),
        us_states=legacy_crm.US_STATES,
        today=dt.date.today(),
    )
    return DemoReport(plan, created, counts, rebuilt, users)
