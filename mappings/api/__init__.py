"""REST endpoints of the mapping workbench: systems, plans and everything beneath them.

Every write goes through the same service the HTML views call (history, audit, back-to-draft
and validation happen there); ApplicationError becomes a 400 ``{"detail", "field"}`` in
``migration_planner.lib.api``. ``write_capability`` is checked by ``RolePermission`` first;
read-only POST actions (preview, test connection, status) lower it to ``mp.view`` and leave
the decision to the service.
"""

from .entities import EntityViewSet, FieldMappingViewSet
from .lookups import LookupTableViewSet
from .plans import MilestoneViewSet, PlanViewSet
from .steps import RuleStepViewSet, RuleTypeViewSet
from .systems import SystemViewSet

__all__ = [
    "EntityViewSet",
    "FieldMappingViewSet",
    "LookupTableViewSet",
    "MilestoneViewSet",
    "PlanViewSet",
    "RuleStepViewSet",
    "RuleTypeViewSet",
    "SystemViewSet",
]
