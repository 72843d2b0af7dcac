"""The benchmark's output: the printed table (figures, then every judged line with its verdict)
and the JSON files under bench/results/."""

from __future__ import annotations

import json
from pathlib import Path

from .judgement import queue_p95s


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def print_table(result: dict) -> None:
    rows = result["rows"]
    lines = [
        f"\n{rows:,} legacy customers, PostgreSQL → PostgreSQL "
        f"({result['machine']['nproc']} CPUs, {result['machine']['ram_gb']} GB RAM)\n",
        f"{'system':<44} {'seconds':>9} {'rows/s':>11} {'ours ÷ it':>10} {'peak RSS MB':>12}",
    ]
    ours = result["pipeline"]["configs"] if result.get("pipeline") else {}
    head = next(iter(ours.values()), None)
    for ref in result["references"].values():
        ratio = head["seconds"] / ref["seconds"] if head and head["seconds"] else None
        rps = rows / ref["seconds"] if ref["seconds"] else None
        lines.append(
            f"{ref['name']:<44} {_fmt(ref['seconds']):>9} {_fmt(rps, ',.0f'):>11} "
            f"{_fmt(ratio):>10} {_fmt(ref['peak_rss_mb'], '.0f'):>12}"
        )
    busy = [
        f"{k} {ref['machine_busy_seconds']:.1f}"
        for k, ref in result["references"].items()
        if ref.get("machine_busy_seconds") is not None
    ]
    if busy:
        lines.append(f"{'  references, machine busy core-s':<44} {', '.join(busy)}")
    for size, cfg in ours.items():
        rps = rows / cfg["seconds"] if cfg["seconds"] else None
        lines.append(
            f"{'ours, batch ' + format(int(size), ',') + ' (2 workers)':<44} "
            f"{_fmt(cfg['seconds']):>9} {_fmt(rps, ',.0f'):>11} {'1.00':>10} "
            f"{_fmt(cfg['peak_worker_rss_mb'], '.0f'):>12}"
        )
        lines.append(
            f"{'  worker peak: tree RSS / tree PSS / process RSS':<44} "
            f"{_fmt(cfg['peak_worker_rss_mb'], '.0f')} / "
            f"{_fmt(cfg['peak_worker_pss_mb'], '.0f')} / "
            f"{_fmt(cfg['peak_worker_process_rss_mb'], '.0f')} MB"
        )
        cpu = cfg["cpu_seconds"]
        lines.append(
            f"{'  CPU s: workers / PostgreSQL / machine busy':<44} "
            f"{_fmt(cpu['workers'], '.1f')} / {_fmt(cpu['postgresql'], '.1f')} / "
            f"{_fmt(cpu['machine_busy'], '.1f')}"
        )
        lines.append(
            f"{'  app report (reconciliation + post checks)':<44} "
            f"{_fmt(cfg['report_seconds'])} s; run-only peak tree RSS "
            f"{_fmt(cfg['run_peak_worker_rss_mb'], '.0f')} MB"
        )
        lines.append(
            f"{'  rehearsal re-run (unchanged source)':<44} "
            f"{_fmt(cfg.get('rerun_seconds'))} s = {_fmt(cfg.get('rerun_ratio'))} of the run"
        )
        lines.append(
            f"{'  reconciliation / table checksum / rollback':<44} "
            f"{_fmt(cfg['reconcile_seconds'])} / {_fmt(cfg['table_checksum_seconds'])}"
            f" / {_fmt(cfg['rollback_seconds'])} s"
        )
    for n, cfg in result.get("by_size", {}).items():
        lines.append(
            f"{'ours at ' + format(int(n), ',') + ' rows':<44} {_fmt(cfg.get('seconds'))} s; "
            f"report {_fmt(cfg.get('report_seconds'))} s; reconciliation "
            f"{_fmt(cfg.get('reconcile_seconds'))} s; rollback "
            f"{_fmt(cfg.get('rollback_seconds'))} s; re-process "
            f"{_fmt(cfg.get('reprocess_seconds'))} s ({cfg.get('reprocess_records')} records); "
            f"tree RSS {_fmt(cfg.get('peak_worker_rss_mb'), '.0f')} MB"
        )
    queue = result.get("queue_pages") or {}
    if queue:
        lines.append(
            f"{'error-queue pages, p95 ms':<44} {queue.get('records', 0):,} records: "
            + ", ".join(f"{k} {v:.0f}" for k, v in queue_p95s(queue).items())
        )
    lines.append("\ntargets (issue 20; ratios at the first batch size):")
    for key, check in result["judgement"]["checks"].items():
        shown = check.get("ratio", check.get("value"))
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[check["pass"]]
        if check["limit"] is None:
            verdict = "reported"
        lines.append(
            f"  {key:<22} {_fmt(shown):>9}  limit {str(check['limit']):<6} {verdict:<8} "
            f"{check.get('what', '')}"
        )
    checks = result["judgement"]["checks"]
    speed = checks.get("machine_speed", {}).get("value")
    if speed is not None and not 0.9 <= speed <= 1.1:
        lines.append(
            f"  WARNING: the CPU probe during our run was {speed:.2f} × its value during the "
            "SQL pipe: the machine ran at another speed, the wall ratios misjudge; run again"
        )
    foreign = checks.get("foreign_cpu_s", {}).get("value")
    if foreign is not None and foreign > 2.0:
        lines.append(
            f"  WARNING: other programs used {foreign:.1f} CPU-s during our run (see "
            "observed.foreign_top in the JSON): the machine was shared; run again"
        )
    print("\n".join(lines))


def write_results(result: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str)
    path = folder / f"bench-{result['started']}.json"
    path.write_text(text)
    (folder / "latest.json").write_text(text)
    return path
