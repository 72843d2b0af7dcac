"""Roles are Django groups; capabilities are `rules` permissions derived from them.

Every view and API endpoint asks for a capability (e.g. ``mp.edit_plan``) on the server side.
"""

from __future__ import annotations

import rules
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

ANALYST = "analyst"
APPROVER = "approver"
OPERATOR = "operator"
VIEWER = "viewer"
ADMIN = "admin"
ROLES = (ANALYST, APPROVER, OPERATOR, VIEWER, ADMIN)


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The user's role names (cached on the user object for the request)."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_mp_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached |= {ADMIN}
        user._mp_roles = cached
    return cached


def _role(name: str) -> rules.Predicate:
    @rules.predicate(name=f"is_{name}")
    def check(user) -> bool:
        return name in user_roles(user)

    return check


is_analyst, is_approver, is_operator, is_viewer, is_admin = (_role(r) for r in ROLES)
has_any_role = is_analyst | is_approver | is_operator | is_viewer | is_admin

CAPABILITIES: dict[str, rules.Predicate] = {
    "mp.view": has_any_role,
    "mp.edit_plan": is_analyst | is_admin,
    "mp.manage_systems": is_analyst | is_admin,
    "mp.launch_run": is_analyst | is_operator | is_admin,
    "mp.launch_production_run": is_operator | is_admin,
    "mp.control_run": is_analyst | is_operator | is_admin,
    "mp.rollback_run": is_operator | is_admin,
    "mp.work_queue": is_analyst | is_operator | is_admin,
    "mp.record_uat": is_approver | is_admin,
    "mp.sign_off": is_approver,
    "mp.view_audit": has_any_role,
}
for _name, _predicate in CAPABILITIES.items():
    rules.add_perm(_name, _predicate)


def can(user, capability: str) -> bool:
    """True when the user's roles grant the capability."""
    return user.has_perm(capability)


_WHO_MAY = {
    "mp.view": "only a user with a role may see this",
    "mp.edit_plan": "only an analyst (or an admin) may edit plans",
    "mp.manage_systems": "only an analyst (or an admin) may add or edit systems",
    "mp.launch_run": "only an analyst or an operator may launch runs",
    "mp.launch_production_run": "only an operator may launch or re-process into production",
    "mp.control_run": "only an analyst or an operator may pause, resume or cancel runs",
    "mp.rollback_run": "only an operator may roll runs back or drive a cutover",
    "mp.work_queue": "only an analyst or an operator may work the error queue",
    "mp.record_uat": "only an approver may record UAT results",
    "mp.sign_off": "only an approver may sign a plan version off",
    "mp.view_audit": "only a user with a role may read the audit log",
}


def refusal_text(capability: str) -> str:
    """The refusal for a missing capability in words, naming who may (page, API and services
    say the same). Pure."""
    who = _WHO_MAY.get(capability, "ask an admin for the role that may do this")
    return f"Your role does not allow this: {who}."
