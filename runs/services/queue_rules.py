"""Which rules a re-process of the error queue uses: into a production target, only signed-off
ones, and only an operator may re-process there (runs.services.queue re-exports it)."""

from __future__ import annotations

from mappings.services import plan_snapshot_build
from migration_planner.lib.errors import ApplicationError, PermissionDeniedError
from runs.enums import RunMode
from runs.models import Run

from .hooks import approved_versions


def _signed_content(run: Run) -> set[str]:
    return {v.snapshot.get("_content") for v in approved_versions(plan=run.plan)}


def reprocess_rules_choose(*, run: Run, user, current_rules: bool | None) -> bool:
    """Whether re-processing uses the plan's current rules (True) or the run's version (False).

    Into a production target only an operator may re-process, and only with rules that were
    signed off: the run's (signed-off) version by default; the current rules only while they
    are exactly a validly signed-off version. Read-only; raises PermissionDeniedError or
    ApplicationError."""
    if run.mode == RunMode.DRY_RUN or not run.target.is_production:
        return True if current_rules is None else current_rules
    if user is not None and not user.has_perm("mp.launch_production_run"):
        raise PermissionDeniedError(
            f"“{run.target.name}” is a production target: only an operator may re-process "
            "records into it."
        )
    if current_rules:
        current = plan_snapshot_build(plan=run.plan).content_hash()
        if current not in _signed_content(run):
            raise ApplicationError(
                f"“{run.target.name}” is a production target and the plan's current rules "
                "are not signed off: re-process with the run's signed-off version, or have "
                "the current version signed off first.",
                field="current_rules",
            )
        return True
    if not approved_versions(plan=run.plan, valid=False).filter(pk=run.version_id).exists():
        raise ApplicationError(
            f"Version {run.version.number} of this run was never signed off; nothing may be "
            f"re-processed into the production target “{run.target.name}”."
        )
    return False
