"""The bench's machine observer (bench.observe.MachineObserver): its CPU by process counts the
bench's own processes; another program's — even one with the same label, another bench's
server — is foreign."""

from __future__ import annotations

from bench.measure import Dsn
from bench.observe import TICK, MachineObserver


def test_cpu_by_process_counts_only_the_bench_s_own_processes():
    seen = MachineObserver(Dsn(host="127.0.0.1", port=1, user="u", dbname="d"))
    label = "postgres: postgres mp_bench_target"
    seen.labels = {1: label, 2: label, 3: "pytest"}
    seen.first = {1: 0, 2: 0, 3: 0}
    seen.last = {1: 5 * TICK, 2: 3 * TICK, 3: 2 * TICK}
    seen.ours = {1}
    seen.steal, seen.counters = 0.0, {}
    summary = seen.summary()
    assert summary["cpu_by_process"] == {label: 5.0}
    assert summary["foreign_cpu_seconds"] == 5.0
    assert summary["foreign_top"] == {label: 3.0, "pytest": 2.0}
