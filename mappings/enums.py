"""Choices for the mappings app."""

from django.db import models


class SystemKind(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
    SQLITE = "sqlite", "SQLite"
    MYSQL = "mysql", "MySQL / MariaDB (source only)"
    FILE = "file", "File upload (CSV / JSON / XLSX / XML)"


class SystemEnvironment(models.TextChoices):
    DEV = "dev", "Development"
    UAT = "uat", "UAT"
    PROD = "prod", "Production"


class SystemRole(models.TextChoices):
    SOURCE = "source", "Source"
    TARGET = "target", "Target"
    BOTH = "both", "Source and target"


class PlanStrategy(models.TextChoices):
    BIG_BANG = "big_bang", "Big bang"
    PHASED = "phased", "Phased"
    HYBRID = "hybrid", "Hybrid (phased + delta)"


class PlanStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    SIGNED_OFF = "signed_off", "Signed off"


class DeletePolicy(models.TextChoices):
    IGNORE = "ignore", "Ignore (keep target rows)"
    DELETE = "delete", "Delete in target"
    MARK = "mark", "Mark (set a column)"


class LoadMode(models.TextChoices):
    INSERT = "insert", "Insert"
    UPSERT = "upsert", "Upsert on external id"


class UploadStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PARSING = "parsing", "Parsing"
    STAGED = "staged", "Staged"
    FAILED = "failed", "Failed"


# The plan's checks (validation rules) are part of the plan's content; validation runs them.
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
