"""The bench's memory poller (bench.measure.RssPoller): the judged figure, peak tree RSS, read
every sample from a cheap counter; PSS (a page-table walk) read rarely."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.measure import RssPoller, process_tree

_HOLD = (
    "import os, sys, time\n"
    "b = bytearray(40 << 20)\n"
    "for i in range(0, len(b), 4096): b[i] = 1\n"
    "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def holder():
    """A process holding 40 MB, stopped by PID after."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    yield proc.pid
    proc.kill()
    proc.wait()


def _status_rss_kb(pid: int) -> int:
    line = next(
        x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:")
    )
    return int(line.split()[1])


def test_rss_poller_reads_the_rss_that_status_reports(holder):
    poller = RssPoller({"w": holder})
    poller.sample()
    assert poller.peaks["w"].rss_kb == sum(_status_rss_kb(p) for p in process_tree(holder))
    assert poller.peaks["w"].rss_kb > 40 << 10


def test_rss_poller_reads_pss_every_25th_sample_of_a_steady_tree(holder):
    poller = RssPoller({"w": holder})
    for _ in range(30):
        poller.sample()
    assert poller.peaks["w"].samples == 30
    assert poller.pss_reads == 2  # samples 0 and 25
    assert 0 < poller.peaks["w"].pss_kb <= poller.peaks["w"].rss_kb
