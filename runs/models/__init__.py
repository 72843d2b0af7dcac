"""Runs, their batches, the ledger index, the error queue and rollbacks.

One module per subject; imported here in the order the models were always registered in."""

# The models register in the order they always did (runs first): not sorted.
# isort: off
from .runs import COUNTERS, Batch, Counters, LedgerEntry, Run
from .failures import CarriedBatch, FailedMessage, FailedRecord, FailedRecordTally
from .events import Notification, Rollback, RunLog
from .workers import TableLease, Worker
# isort: on

__all__ = [
    "COUNTERS",
    "Batch",
    "CarriedBatch",
    "Counters",
    "FailedMessage",
    "FailedRecord",
    "FailedRecordTally",
    "LedgerEntry",
    "Notification",
    "Rollback",
    "Run",
    "RunLog",
    "TableLease",
    "Worker",
]
