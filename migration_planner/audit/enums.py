"""The actions an audit event records."""

from django.db import models


class AuditAction(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    LOGIN = "login", "Log in"
    LOGOUT = "logout", "Log out"
    LOGIN_FAILED = "login_failed", "Failed log-in"
    RUN_START = "run_start", "Run started"
    RUN_CONTROL = "run_control", "Run paused / resumed / cancelled"
    ROLLBACK = "rollback", "Rollback"
    REPROCESS = "reprocess", "Re-process"
    IGNORE = "ignore", "Ignore failed record"
    VERSION = "version", "Version created"
    SIGN_OFF = "sign_off", "Sign-off"
    IMPORT = "import", "Import"
    CUTOVER = "cutover", "Cutover (freeze, go / no-go, rollback)"
