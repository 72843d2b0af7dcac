"""Which sign-offs had their run rolled back since: a note beside the verdict they froze.

A sign-off is an approver's decision on the evidence of its time: a later rollback of its run
does not void it and the production gate is unchanged. But its frozen "pass" must never be read
without seeing that the run it was bound to has been rolled back (or is being rolled back, or
had its report superseded by a later run's rollback chain) since. Read-only; one query for any
number of sign-offs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from runs.enums import RollbackStatus, RunStatus
from runs.models import Rollback

from .models import SignOff


@dataclass(frozen=True)
class RolledBackSince:
    """The newest rollback, started after the sign-off, that has the sign-off's run."""

    run_id: int
    rollback_id: int
    rollback_run_id: int  # the rollback's own run (another one when it came by a chain)
    rollback_status: str
    state: str  # rolled_back | rolling_back | rollback_failed | superseded (a chain stopped)
    requested_by: str
    at: datetime

    @property
    def text(self) -> str:
        """ "run #N rolled back since (rollback #M by U at T)", or its variants."""
        when = f"by {self.requested_by} at {self.at:%Y-%m-%d %H:%M}"
        via = "" if self.rollback_run_id == self.run_id else f" of run #{self.rollback_run_id}"
        words = {
            "rolled_back": "rolled back since",
            "rolling_back": "being rolled back since",
            "rollback_failed": "had a rollback started since",
            "superseded": "superseded since by a rollback chain",
        }[self.state]
        ended = (
            ""
            if self.rollback_status in (RollbackStatus.VERIFIED, RollbackStatus.RUNNING)
            else f", {RollbackStatus(self.rollback_status).label.lower()}"
        )
        return f"run #{self.run_id} {words} (rollback #{self.rollback_id}{via} {when}{ended})"

    def as_dict(self) -> dict:
        """The API's fields (the same words as the pages)."""
        return {
            "run_id": self.run_id,
            "rollback_id": self.rollback_id,
            "rollback_run_id": self.rollback_run_id,
            "rollback_status": self.rollback_status,
            "state": self.state,
            "requested_by": self.requested_by,
            "at": self.at.isoformat(),
            "text": self.text,
        }


def _state(run_status: str, rollback: Rollback, run_id: int) -> str:
    if run_status == RunStatus.ROLLED_BACK:
        return "rolled_back"
    if run_status == RunStatus.ROLLING_BACK or rollback.status == RollbackStatus.RUNNING:
        return "rolling_back"
    # the rollback ended without undoing the run: its own failed, or a chain stopped before it
    return "rollback_failed" if rollback.run_id == run_id else "superseded"


def signoffs_rolled_back_since(signoffs: Iterable[SignOff]) -> dict[int, RolledBackSince]:
    """Sign-off id → its run's newest rollback started after the sign-off (none: absent).
    Needs ``run`` loaded (select_related); one query whatever the number. Read-only."""
    bound = [s for s in signoffs if s.run_id is not None]
    if not bound:
        return {}
    # the chains are read here: SQLite (the default app database) has no JSON containment,
    # and the rollbacks started since the oldest of these sign-offs are few
    rollbacks = list(
        Rollback.objects.filter(started_at__gte=min(s.created_at for s in bound))
        .select_related("requested_by")
        .order_by("-started_at", "-id")
    )
    notes: dict[int, RolledBackSince] = {}
    for s in bound:
        for rb in rollbacks:  # newest first
            if rb.started_at < s.created_at or s.run_id not in [rb.run_id, *rb.chain]:
                continue
            notes[s.pk] = RolledBackSince(
                run_id=s.run_id,
                rollback_id=rb.pk,
                rollback_run_id=rb.run_id,
                rollback_status=rb.status,
                state=_state(s.run.status, rb, s.run_id),
                requested_by=rb.requested_by.get_username() if rb.requested_by else "the system",
                at=rb.started_at,
            )
            break
    return notes


def signoffs_with_rollbacks(signoffs: Iterable[SignOff]) -> list[SignOff]:
    """The sign-offs as a list, each with ``rolled_back_since`` (a RolledBackSince or None)."""
    rows = list(signoffs)
    notes = signoffs_rolled_back_since(rows)
    for s in rows:
        s.rolled_back_since = notes.get(s.pk)
    return rows
