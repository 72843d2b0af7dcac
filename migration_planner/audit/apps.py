from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "migration_planner.audit"
    label = "audit"
    verbose_name = "Audit log"
