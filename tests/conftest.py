"""Shared fixtures: personas (one user per role and an outsider) and logged-in clients."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import Phase, settings

from tests.factories import UserFactory

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
    transactional test asks for serialized rollback, whatever order the tests run in."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is not None and _transactional(item) and (
            "django_db_serialized_rollback" not in names
        ):
            names.append("django_db_serialized_rollback")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, plus a report of sessions still on it at the end.

    Dropping the test database fails ("being accessed by other users") while any other session
    is connected; name them (they are a fixture's leak to fix) and end them so the drop works."""
    yield
    from django.db import connection

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


@pytest.fixture
def analyst(db):
    return UserFactory(username="ana", roles=["analyst"])


@pytest.fixture
def approver(db):
    return UserFactory(username="abe", roles=["approver"])


@pytest.fixture
def operator(db):
    return UserFactory(username="opal", roles=["operator"])


@pytest.fixture
def viewer(db):
    return UserFactory(username="vic", roles=["viewer"])


@pytest.fixture
def admin_user(db):
    user = UserFactory(username="root", roles=["admin"])
    user.is_staff = user.is_superuser = True
    user.save()
    return user


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
