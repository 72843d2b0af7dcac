"""CPU of the bench plan's transform per batch, by field and by rule step (no servers).

    SECRET_KEY=… .venv/bin/python -m bench.rule_profile [--rows 20000] [--repeat 15] [--block 3]
    SECRET_KEY=… .venv/bin/python -m bench.rule_profile --against DIR [--rounds 60]

Builds one batch of the bench's source in process (the legacy CRM's generated customers, the
rows ``--block`` × rows on, as the PostgreSQL extract gives them: Arrow-backed text), then
times ``transform_frame`` on it with the bench's plan (the demo's accounts entity and its two
lookups) and each step of each field's chain on that step's own input, by
``time.process_time`` with the collector paused (as in a worker): medians of ``--repeat``.

``--against DIR`` compares two engines on a shared machine: DIR holds another ``runs/``
package (e.g. ``git archive main runs | tar -x -C DIR``); one process per engine, the same
batch, ``transform_frame`` run in each in turn (``--rounds`` times, the order flipped every
round), so both meet the same load; prints each one's median and the paired difference.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time

import pandas as pd


def _plan():
    """The bench's accounts entity and lookups as the engine's snapshot (Django only to read
    the demo plan's module: no database)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "migration_planner.settings")
    os.environ.setdefault("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
    import django

    django.setup()
    from mappings.demo.legacy_crm import US_STATES
    from mappings.demo_plan import ENTITIES, STATUS_MAP
    from runs.engine.snapshot import EntitySpec, FieldSpec, LookupSpec, RuleStepSpec

    spec = next(e for e in ENTITIES if e["name"] == "accounts")
    fields = tuple(
        FieldSpec(
            target=f["target"],
            sources=tuple(f["sources"]),
            steps=tuple(RuleStepSpec(s["rule"], dict(s["params"])) for s in f["steps"]),
            default=f["default"],
            required=f["required"],
        )
        for f in spec["fields"]
    )
    entity = EntitySpec(
        name="accounts",
        source_table="customers",
        target_table="accounts",
        source_key=("Customer_ID",),
        target_key="id",
        external_id="account_number",
        load_mode="upsert",
        fields=fields,
    )
    lookups = {
        "us-states": LookupSpec("us-states", dict(US_STATES)),
        "account-status": LookupSpec("account-status", dict(STATUS_MAP)),
    }
    return entity, lookups


def source_batch(rows: int, block: int = 3, seed: int = 2026) -> pd.DataFrame:
    """``rows`` generated customers from the ``block``-th batch on, as Arrow-backed text."""
    from mappings.demo.legacy_crm.generate import _blocks
    from runs.engine.rules import TEXT

    first = next(_blocks("customers", max(rows * (block + 1), 10_000), seed))
    start = rows * block
    frame = {}
    for name, values in first.items():
        part = values[start : start + rows]
        texts = [None if v is None else str(v) for v in part.tolist()]
        frame[name] = pd.Series(texts, dtype=object).astype(TEXT)
    return pd.DataFrame(frame)


def _cpu(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--block", type=int, default=3)
    parser.add_argument("--against", help="a directory holding another runs/ package")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return _serve(args.rows, args.block)
    if args.against:
        return _against(args.against, args.rounds, args.rows, args.block)
    entity, lookups = _plan()
    frame = source_batch(args.rows, args.block)
    from runs.engine import transform
    from runs.engine.rules import REGISTRY, RuleContext, validate_params

    gc.collect()
    gc.freeze()
    gc.disable()

    def run():
        return transform.transform_frame(
            entity=entity, frame=frame, lookups=lookups, namespace="bench"
        )

    result = run()
    print(
        f"{args.rows:,} rows: {len(result.text_rows):,} good, {len(result.failures):,} failed; "
        f"transform_frame {_cpu(run, args.repeat):.1f} ms"
    )
    keys = transform.source_key_text(frame, entity.source_key)
    ctx = RuleContext(lookups=lookups, keymaps={}, source_keys=keys, namespace="bench")
    total = 0.0
    for spec in entity.fields:
        current = transform._chain_input(frame, spec)
        for step in spec.steps:
            rule = REGISTRY[step.rule]
            params = validate_params(step.rule, step.params)
            given = current
            ms = _cpu(lambda r=rule, g=given, p=params: r.fn(g, p, ctx), args.repeat)
            total += ms
            print(f"  {spec.target:22} {step.rule:16} {ms:7.2f} ms")
            current = rule.fn(given, params, ctx).values
        ms = _cpu(lambda s=spec: transform._run_chain(frame, s, ctx), args.repeat)
        print(f"  {spec.target:22} {'(whole chain)':16} {ms:7.2f} ms")
    print(f"steps alone: {total:.1f} ms; load {_load()}")


def _load() -> list[str]:
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def _serve(rows: int, block: int) -> None:
    """One engine's side of ``--against``: a transform per line read, its CPU written back."""
    from runs.engine import transform  # before Django puts this checkout first on sys.path

    entity, lookups = _plan()
    frame = source_batch(rows, block)

    def run():
        transform.transform_frame(entity=entity, frame=frame, lookups=lookups, namespace="bench")

    run()
    gc.collect()
    gc.freeze()
    gc.disable()
    print("ready", transform.__file__, flush=True)
    for _ in sys.stdin:
        started = time.process_time()
        run()
        print(time.process_time() - started, flush=True)


def _against(other: str, rounds: int, rows: int, block: int) -> None:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # (-m puts the working directory first on sys.path: the side's own runs/ package)
    sides = {"other": (other, f"{other}{os.pathsep}{here}"), "this": (here, here)}
    kids = {
        name: subprocess.Popen(  # noqa: S603 - this interpreter, this module
            [sys.executable, "-m", "bench.rule_profile", "--serve", f"--rows={rows}",
             f"--block={block}"],
            cwd=cwd, env=dict(os.environ, PYTHONPATH=path), text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        for name, (cwd, path) in sides.items()
    }  # fmt: skip
    for name, kid in kids.items():
        ready, engine = kid.stdout.readline().split()
        print(f"{name}: {engine}")
    cpu: dict[str, list[float]] = {name: [] for name in kids}
    for i in range(rounds):
        for name in sorted(kids, reverse=bool(i % 2)):
            kids[name].stdin.write("go\n")
            kids[name].stdin.flush()
            cpu[name].append(float(kids[name].stdout.readline()) * 1000)
    for kid in kids.values():
        kid.stdin.close()
        kid.wait()
    for name, ms in cpu.items():
        print(f"{name}: median {statistics.median(ms):.1f} ms, min {min(ms):.1f} ms ({rounds})")
    paired = statistics.median(a - b for a, b in zip(cpu["other"], cpu["this"], strict=True))
    print(f"other - this, paired median: {paired:.1f} ms; load {_load()}")


if __name__ == "__main__":
    main()
