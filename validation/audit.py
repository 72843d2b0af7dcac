"""The audit log moved to the base app ``migration_planner.audit``; kept for old imports."""

from migration_planner.audit.services import SECRET_KEYS, audit_record

__all__ = ["SECRET_KEYS", "audit_record"]
