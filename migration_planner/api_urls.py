"""The REST API router; each app registers its viewsets here."""

from rest_framework.routers import DefaultRouter

from accounts.api import AccessTokenViewSet
from mappings.api import (
    EntityViewSet,
    FieldMappingViewSet,
    LookupTableViewSet,
    MilestoneViewSet,
    RuleStepViewSet,
    RuleTypeViewSet,
    SystemViewSet,
)
from mappings.api_uploads import FileUploadViewSet
from runs.api import FailedRecordViewSet, RunViewSet
from runs.api_extra import NotificationViewSet
from validation.api import CutoverViewSet, RunReportViewSet, ValidationRuleViewSet
from validation.api_uat import AuditEventViewSet, SignOffViewSet, UATCaseViewSet

from .plan_api import PlanViewSet

router = DefaultRouter()
router.register("systems", SystemViewSet, basename="system")
router.register("plans", PlanViewSet, basename="plan")
router.register("milestones", MilestoneViewSet, basename="milestone")
router.register("entities", EntityViewSet, basename="entity")
router.register("field-mappings", FieldMappingViewSet, basename="field-mapping")
router.register("rule-steps", RuleStepViewSet, basename="rule-step")
router.register("rule-types", RuleTypeViewSet, basename="rule-type")
router.register("lookups", LookupTableViewSet, basename="lookup")
router.register("runs", RunViewSet, basename="run")
router.register("validation-rules", ValidationRuleViewSet, basename="validation-rule")
router.register("run-reports", RunReportViewSet, basename="run-report")
router.register("cutovers", CutoverViewSet, basename="cutover")
router.register("failed-records", FailedRecordViewSet, basename="failed-record")
router.register("file-uploads", FileUploadViewSet, basename="file-upload")
router.register("uat-cases", UATCaseViewSet, basename="uat-case")
router.register("signoffs", SignOffViewSet, basename="signoff")
router.register("audit-events", AuditEventViewSet, basename="audit-event")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("tokens", AccessTokenViewSet, basename="access-token")

urlpatterns = router.urls
