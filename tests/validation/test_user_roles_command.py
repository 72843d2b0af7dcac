"""manage.py user_roles: create users, give and take roles, each change in the audit log."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from migration_planner.lib.roles import can
from validation.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_create_user_with_a_role_and_password_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("MP_NEW_PASSWORD", "s3cret-enough-2026")
    call_command(
        "user_roles",
        "alice",
        "--create",
        "--email",
        "a@example.com",
        "--role",
        "analyst",
        "--password-env",
        "MP_NEW_PASSWORD",
    )
    user = get_user_model().objects.get(username="alice")
    assert user.check_password("s3cret-enough-2026")
    assert can(user, "mp.edit_plan") and not can(user, "mp.sign_off")
    assert capsys.readouterr().out.strip() == "alice: analyst"
    events = AuditEvent.objects.filter(object_repr="user alice").order_by("id")
    assert [e.action for e in events] == ["create", "update"]
    assert events[1].after["roles"] == ["analyst"]
    assert "s3cret" not in str(events[0].after)


def test_roles_are_given_and_taken_and_admin_gets_the_django_admin():
    call_command("user_roles", "bob", "--create", "--role", "viewer")
    call_command("user_roles", "bob", "--role", "admin", "--remove-role", "viewer")
    user = get_user_model().objects.get(username="bob")
    assert list(user.groups.values_list("name", flat=True)) == ["admin"]
    assert user.is_staff and user.is_superuser and not user.has_usable_password()


def test_unknown_user_without_create_is_refused():
    with pytest.raises(CommandError, match="No user “nobody”: add --create"):
        call_command("user_roles", "nobody", "--role", "viewer")
