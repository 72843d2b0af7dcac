"""A batch runs with the cycle collector paused (migration_planner.lib.memory): its ~10^5
long-lived containers are not walked again and again; the collector is back on after it."""

from __future__ import annotations

import gc
import sys

import pytest

from migration_planner.lib.memory import collection_paused
from runs.enums import BatchStatus
from runs.models import Batch
from runs.services import batch_execute, run_prepare
from tests.runs.inline_runs import launch


class _Collections:
    """Automatic collections seen while installed, and how many began inside ``frame`` (but
    not inside one of the ``outside`` frames called from it)."""

    def __init__(self, frame: str, outside: tuple[str, ...] = ()) -> None:
        self.frame, self.outside, self.total, self.inside = frame, outside, 0, 0

    def __call__(self, phase: str, info: dict) -> None:
        if phase != "start":
            return
        self.total += 1
        at = sys._getframe(1)
        while at is not None:
            if at.f_code.co_name in self.outside:
                return
            if at.f_code.co_name == self.frame:
                self.inside += 1
                return
            at = at.f_back

    def __enter__(self) -> _Collections:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def _cycles(n: int) -> None:
    for _ in range(n):
        a: list = []
        a.append(a)


def test_collection_paused_stops_automatic_collection_and_restores_it():
    assert gc.isenabled()
    with _Collections("_cycles") as seen, collection_paused():
        assert not gc.isenabled()
        _cycles(20_000)
    assert seen.inside == 0 and gc.isenabled()
    with _Collections("_cycles") as seen:
        _cycles(20_000)  # the same work with the collector on is collected many times
    assert seen.inside > 0


def test_collection_paused_restores_on_error_and_keeps_a_disabled_collector_off():
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("batch failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_batch_engine_runs_without_automatic_collection(demo_plan):
    run = launch(demo_plan, scope_entity="accounts")
    run_prepare(run_id=run.pk)
    batch = Batch.objects.filter(run=run).order_by("seq").first()
    with _Collections("execute_batch") as seen:
        assert batch_execute(batch_id=batch.pk) == "done"
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.DONE
    assert seen.inside == 0
    assert gc.isenabled()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_batch_and_its_recording_run_without_automatic_collection(demo_plan):
    """From the engine to the failed records' COPY the collector stays paused: turned on
    between them, its first collection walked the whole outcome (~10^5 containers) once more
    for nothing (the task collects after the batch). The run's advance after the recording
    (it may finish the run and start its report) runs with the collector on."""
    run = launch(demo_plan, scope_entity="accounts")
    run_prepare(run_id=run.pk)
    batch = Batch.objects.filter(run=run).order_by("seq").first()
    with _Collections("_work", outside=("_check_threshold", "_advance")) as seen:
        assert batch_execute(batch_id=batch.pk) == "done"
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.DONE
    assert seen.inside == 0
    assert gc.isenabled()
