"""Choices for the validation app."""

from django.db import models


class ValidationPhase(models.TextChoices):
    PRE = "pre", "Pre-migration"
    POST = "post", "Post-migration"


class ValidationKind(models.TextChoices):
    ROW_COUNT_RANGE = "row_count_range", "Row count in range"
    UNIQUE = "unique", "Unique"
    COMPLETENESS = "completeness", "Completeness %"
    FORMAT = "format", "Format (regex / named pattern)"
    ROW_COUNT_MATCH = "row_count_match", "Row count match"
    SUM_MATCH = "sum_match", "Sum / aggregate match"
    CATEGORY_COUNT_MATCH = "category_count_match", "Counts per category match"
    SAMPLE_COMPARE = "sample_compare", "Random sample field-by-field"
    REFERENTIAL_INTEGRITY = "referential_integrity", "Referential integrity"
    CHECKSUM = "checksum", "Checksum reconciliation"


PRE_KINDS = {"row_count_range", "unique", "completeness", "format"}


class Severity(models.TextChoices):
    BLOCKING = "blocking", "Blocking"
    WARNING = "warning", "Warning"


class ResultStatus(models.TextChoices):
    PASSED = "passed", "Passed"
    WARNING = "warning", "Warning"
    FAILED = "failed", "Failed"
    ERROR = "error", "Error"


class UATOutcome(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    BLOCKED = "blocked", "Blocked"


class SignOffDecision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


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


class CutoverStatus(models.TextChoices):
    OPEN = "open", "Open (checklist in progress)"
    GO = "go", "Go: live on the target"
    NO_GO = "no_go", "No-go"
    ROLLED_BACK = "rolled_back", "Rolled back"


class Verdict(models.TextChoices):
    PASS = "pass", "Pass"
    WARN = "warn", "Pass with warnings"
    FAIL = "fail", "Fail"
