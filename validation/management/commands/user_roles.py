"""Create users and give or take roles from the command line; every change is audited.

manage.py user_roles alice --create --email alice@example.com --role analyst
manage.py user_roles bob --role approver --remove-role viewer
MP_PASSWORD=... manage.py user_roles carol --create --role operator --password-env MP_PASSWORD
"""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from migration_planner.audit.enums import AuditAction
from migration_planner.audit.services import audit_record
from migration_planner.lib.roles import ADMIN, ROLES


class Command(BaseCommand):
    help = "Create a user and/or give and take roles (analyst, approver, operator, viewer, admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--create", action="store_true", help="Create the user if missing.")
        parser.add_argument("--email", default="")
        parser.add_argument("--role", action="append", default=[], choices=ROLES)
        parser.add_argument("--remove-role", action="append", default=[], choices=ROLES)
        parser.add_argument(
            "--password-env",
            default="",
            help="Environment variable holding "
            "the new user's password (never a command-line argument); "
            "without it the password is unusable until reset.",
        )

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        user_model = get_user_model()
        name = options["username"]
        user = user_model.objects.filter(username=name).first()
        if user is None and not options["create"]:
            raise CommandError(f"No user “{name}”: add --create to create it.")
        if user is None:
            user = self._create(user_model, name, options)
        before = sorted(user.groups.values_list("name", flat=True))
        for role in options["role"]:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        for role in options["remove_role"]:
            user.groups.remove(*Group.objects.filter(name=role))
        after = sorted(user.groups.values_list("name", flat=True))
        if ADMIN in options["role"] or ADMIN in options["remove_role"]:
            user.is_staff = user.is_superuser = ADMIN in after
            user.save(update_fields=["is_staff", "is_superuser"])
        if after != before:
            audit_record(
                action=AuditAction.UPDATE,
                obj=user,
                object_repr=f"user {name}",
                before={"roles": before},
                after={"roles": after, "by": "user_roles"},
            )
        self.stdout.write(f"{name}: {', '.join(after) or 'no role'}")

    def _create(self, user_model, name: str, options: dict):
        env = options["password_env"]
        if env and not os.environ.get(env):
            raise CommandError(f"Environment variable {env} is empty.")
        user = user_model(username=name, email=options["email"])
        if env:
            user.set_password(os.environ[env])
        else:
            user.set_unusable_password()
        user.save()
        audit_record(
            action=AuditAction.CREATE,
            obj=user,
            object_repr=f"user {name}",
            after={"email": options["email"], "by": "user_roles"},
        )
        return user
