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


# What each capability lets one do, in words (refusals name it and the roles that may).
CAPABILITY_ACTIONS: dict[str, str] = {
    "mp.view": "see this",
    "mp.edit_plan": "edit plans, mappings, rules and lookups",
    "mp.manage_systems": "add or edit systems",
    "mp.launch_run": "launch runs",
    "mp.launch_production_run": "launch or re-process runs on a production target",
    "mp.control_run": "pause, resume or cancel runs",
    "mp.rollback_run": "roll back runs or freeze and decide a cutover",
    "mp.work_queue": "work the error queue",
    "mp.record_uat": "record UAT results",
    "mp.sign_off": "sign off a plan version",
    "mp.view_audit": "read the audit log",
}
_ARTICLE = {ADMIN: "an admin", ANALYST: "an analyst", APPROVER: "an approver",
            OPERATOR: "an operator", VIEWER: "a viewer"}


class _RoleHolder:
    """A stand-in user holding exactly one role (to ask a predicate which roles it grants)."""

    is_authenticated = True
    is_superuser = False

    def __init__(self, role: str) -> None:
        self._mp_roles = frozenset({role})


def capability_roles(capability: str) -> list[str]:
    """The roles that grant ``capability`` (from the predicates themselves, so never stale)."""
    predicate = CAPABILITIES[capability]
    return [r for r in ROLES if predicate.test(_RoleHolder(r))]


def refusal(capability: str, action: str | None = None) -> str:
    """The words of a role refusal: the action (``action`` overrides the capability's words)
    and the roles that may do it; the page and the API say the same."""
    names = [_ARTICLE[r] for r in capability_roles(capability)]
    who = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    action = action or CAPABILITY_ACTIONS.get(capability, "do this")
    if capability == "mp.view":
        return "You need a role to see this; ask an admin to give you one."
    return f"Only {who} may {action}; ask an admin if you need it."
