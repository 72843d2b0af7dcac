"""Shared fixtures: personas (one user per role and an outsider) and logged-in clients."""

from __future__ import annotations

import contextlib
import gc
import os
import sys

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import TransactionTestCase
from hypothesis import Phase, settings

from mappings.demo import legacy_crm
from tests.factories import UserFactory
from tests.support import pg
from tests.support.db_baseline import baseline_capture, baseline_restore

# The explain phase traces every line (slow when shrinking a failure); CI wants a bounded suite.
settings.register_profile(
    "suite",
    deadline=None,
    max_examples=60,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

os.environ.setdefault("TEST_PG_URL", "postgresql://postgres@127.0.0.1:54329/postgres")


def _transactional(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    if marker is not None and marker.kwargs.get("transaction"):
        return True
    names = getattr(item, "fixturenames", ())
    return "transactional_db" in names or "live_server" in names


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every transactional test restores the migrated rows (roles, content types) it flushed.

    A transactional test empties the database when it ends; without serialized rollback Django
    then re-creates content types through post_migrate, and the next test that restores the
    serialized state collides with them ("duplicate key ... django_content_type"). So each
    transactional test asks for serialized rollback, whatever order the tests run in; on
    PostgreSQL that rollback is done in SQL after the flush (_fixture_teardown below)."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        if (
            names is not None
            and _transactional(item)
            and ("django_db_serialized_rollback" not in names)
        ):
            names.append("django_db_serialized_rollback")


@pytest.fixture(scope="session", autouse=True)
def _startup_frozen() -> None:
    """What a worker child does as it starts (runs.tasks.load_engine): import the engine, then
    freeze the objects made so far out of the garbage collector's sight. Eager Celery runs
    the same task_postrun hook here as in a worker (a full gc.collect() after every task):
    over pytest's unfrozen heap that cost ~0.2-0.6 s per task; over what a test made, ms."""
    import runs.engine.batch  # noqa: F401

    gc.collect()
    gc.freeze()


def pytest_runtest_logfinish(nodeid: str, location: tuple) -> None:
    """Every 100 tests, what is still alive (modules imported since, caches) frozen too."""
    global _tests_run
    _tests_run += 1
    if _tests_run % 100 == 0:
        gc.collect()
        gc.freeze()


_tests_run = 0


# alias -> the tables copied by baseline_capture, for the databases restored in SQL
_BASELINE: dict[str, list[str]] = {}


def _baseline_covers(test_case: type[TransactionTestCase]) -> bool:
    names = test_case._databases_names(include_mirrors=False)
    return test_case.serialized_rollback and all(name in _BASELINE for name in names)


@classmethod
def _fixture_setup(cls) -> None:
    """Serialized rollback without the deserialization: the database is already in its
    migrated state (the previous transactional test restored it, TestCase tests roll back)."""
    if not _baseline_covers(cls):
        _django_fixture_setup.__func__(cls)
        return
    for db_name in cls._databases_names(include_mirrors=False):
        if cls.reset_sequences:
            cls._reset_sequences(db_name)
        if cls.fixtures:
            call_command("loaddata", *cls.fixtures, verbosity=0, database=db_name)


def _fixture_teardown(self) -> None:
    """The flush (TRUNCATE of every model table), then the migrated rows back, in SQL."""
    if not _baseline_covers(type(self)):
        _django_fixture_teardown(self)
        return
    for db_name in self._databases_names(include_mirrors=False):
        baseline_restore(connections[db_name], _BASELINE[db_name])


_django_fixture_setup = TransactionTestCase.__dict__["_fixture_setup"]
_django_fixture_teardown = TransactionTestCase._fixture_teardown
TransactionTestCase._fixture_setup = _fixture_setup
TransactionTestCase._fixture_teardown = _fixture_teardown


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database with its migrated rows copied aside (restored after each
    transactional test), plus a report of sessions still on it at the end.

    Dropping the test database fails ("being accessed by other users") while any other session
    is connected; name them (they are a fixture's leak to fix) and end them so the drop works."""
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            _BASELINE[connection.alias] = baseline_capture(connection)
    yield

    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pid, application_name, state, left(query, 120) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            stray = cur.fetchall()
            for pid, app, state, query in stray:
                sys.__stderr__.write(
                    f"\nstray session on the test database: pid {pid} {app!r} {state}: {query}\n"
                )
                cur.execute("SELECT pg_terminate_backend(%s)", [pid])


FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# persona fixture -> (username, roles); admin_user is also staff and superuser
PERSONAS = {
    "analyst": ("ana", ["analyst"]),
    "approver": ("abe", ["approver"]),
    "operator": ("opal", ["operator"]),
    "viewer": ("vic", ["viewer"]),
    "admin_user": ("root", ["admin"]),
}


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Test users get MD5 hashes: PBKDF2 costs ~0.3 s per user, and the role-matrix test
    creates five users per operation (production keeps Django's default hashers)."""
    settings.PASSWORD_HASHERS = FAST_HASHERS


def persona_create(fixture: str):
    """The user of one persona fixture (PERSONAS), created with its roles."""
    username, roles = PERSONAS[fixture]
    user = UserFactory(username=username, roles=roles)
    if fixture == "admin_user":
        user.is_staff = user.is_superuser = True
        user.save()
    return user


@pytest.fixture
def analyst(db):
    return persona_create("analyst")


@pytest.fixture
def approver(db):
    return persona_create("approver")


@pytest.fixture
def operator(db):
    return persona_create("operator")


@pytest.fixture
def viewer(db):
    return persona_create("viewer")


@pytest.fixture
def admin_user(db):
    return persona_create("admin_user")


@pytest.fixture
def outsider(db):
    """Logged in, but holding no role at all."""
    return UserFactory(username="olly")


@pytest.fixture
def client_for(client):
    """Log the given user in on the test client and return the client."""

    def login(user):
        client.force_login(user)
        return client

    return login


# Template databases live here, not in tests/runs/conftest.py: modules elsewhere import
# demo_target_db from there, and pytest resolves its session fixtures only from conftest files
# on the test's own path.
@pytest.fixture(scope="session")
def source_template():
    """legacy_crm.build_source once per (rows, seed): returns the name of a database nobody
    connects to, for pg.throwaway_database(prefix, template=name) to copy (a writable source
    per test, the same rows as building it again)."""
    built: dict[tuple[int, int], str] = {}
    with contextlib.ExitStack() as stack:

        def template(rows: int, seed: int) -> str:
            if (rows, seed) not in built:
                name = stack.enter_context(pg.throwaway_database("tpl_src"))
                legacy_crm.build_source(pg.url_for(name), rows=rows, seed=seed)
                built[rows, seed] = name
            return built[rows, seed]

        yield template


@pytest.fixture(scope="session")
def target_template():
    """The empty new CRM (legacy_crm.build_target), built once, never connected to after:
    each demo_target_db is a copy of it."""
    with pg.throwaway_database("tpl_tgt") as name:
        legacy_crm.build_target(pg.url_for(name))
        yield name
