#!/usr/bin/env bash
# The benchmark: private PostgreSQL + Redis on loopback, then bench/run_bench.py.
# Usage: bash scripts/bench.sh [--rows N] [--repeat N] [--batch-size 20000,50000] ...
# Ports: BENCH_PG_PORT (default 55533), BENCH_REDIS_PORT (default 56480); data under the
# git-ignored .data/bench/. Results: bench/results/bench-<timestamp>.json and latest.json.
# shellcheck disable=SC2317  # functions invoked from traps look unreachable
set -euo pipefail

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

BENCH_DIR="$MP_DATA/bench"
MP_BENCH_PG_PID=""
MP_BENCH_PG_DIR=""
MP_BENCH_CHILD=""

# start_bench_pg port: a PostgreSQL cluster we own under .data/bench/pg. Durable settings
# (fsync on) with room for bulk loads; the same server runs every system measured.
start_bench_pg() {
    local port="$1" bindir opts
    bindir=$(pg_bindir)
    [[ -n "$bindir" ]] || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin"
    MP_BENCH_PG_DIR="$BENCH_DIR"
    if [[ -f "$BENCH_DIR/pg/postmaster.pid" ]]; then
        as_postgres "$bindir/pg_ctl" -D "$BENCH_DIR/pg" -m fast -w stop >/dev/null 2>&1 \
            && log "stopped a bench PostgreSQL left over from an earlier run"
    fi
    port_busy "$port" && die "port $port is already in use; set BENCH_PG_PORT to a free port"
    mkdir -p "$BENCH_DIR/pgrun"
    [[ $EUID -eq 0 ]] && chown postgres: "$BENCH_DIR/pgrun"
    if [[ ! -f "$BENCH_DIR/pg/PG_VERSION" ]]; then
        rm -rf "$BENCH_DIR/pg"
        mkdir -p "$BENCH_DIR/pg"
        [[ $EUID -eq 0 ]] && chown postgres: "$BENCH_DIR/pg"
        chmod 700 "$BENCH_DIR/pg"
        as_postgres "$bindir/initdb" -D "$BENCH_DIR/pg" -U postgres --auth=trust -E UTF8 \
            --no-locale >"$BENCH_DIR/pgrun/initdb.log" 2>&1 \
            || { cat "$BENCH_DIR/pgrun/initdb.log" >&2; die "initdb failed"; }
    fi
    opts="-h 127.0.0.1 -p $port -k $BENCH_DIR/pgrun -c max_connections=100"
    opts+=" -c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=30min"
    opts+=" -c work_mem=64MB -c maintenance_work_mem=512MB"
    # server statements by time per phase of our pipeline (bench/statements.py)
    opts+=" -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
    # BENCH_PG_OPTS: more server settings, e.g. "-c pg_stat_statements.track_planning=on"
    opts+=" ${BENCH_PG_OPTS:-}"
    as_postgres "$bindir/pg_ctl" -D "$BENCH_DIR/pg" -l "$BENCH_DIR/pgrun/postgres.log" \
        -o "$opts" -w -t 60 start >/dev/null \
        || { tail -20 "$BENCH_DIR/pgrun/postgres.log" >&2; die "PostgreSQL did not start"; }
    MP_BENCH_PG_PID=$(head -1 "$BENCH_DIR/pg/postmaster.pid")
    log "PostgreSQL listening on 127.0.0.1:$port (pid $MP_BENCH_PG_PID, data $BENCH_DIR/pg)"
}

stop_bench_pg() {
    local pid="$MP_BENCH_PG_PID"
    [[ -n "$MP_BENCH_PG_DIR" ]] || return 0
    [[ -z "$pid" && -f "$BENCH_DIR/pg/postmaster.pid" ]] && pid=$(head -1 "$BENCH_DIR/pg/postmaster.pid")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        as_postgres "$(pg_bindir)/pg_ctl" -D "$BENCH_DIR/pg" -m fast -w -t 60 stop >/dev/null 2>&1 \
            || stop_pid "$pid" "bench PostgreSQL"
        log "stopped bench PostgreSQL (pid $pid)"
    fi
    MP_BENCH_PG_DIR=""
    MP_BENCH_PG_PID=""
}

cleanup() {
    local rc=$?
    trap - INT TERM HUP EXIT
    trap '' PIPE
    set +e
    # a signal stops the bench itself first (it stops its Celery workers), then our servers
    if [[ -n "$MP_BENCH_CHILD" ]] && kill -0 "$MP_BENCH_CHILD" 2>/dev/null; then
        kill -TERM "$MP_BENCH_CHILD"
        wait "$MP_BENCH_CHILD"
    fi
    stop_redis
    stop_bench_pg
    log "finished with exit code $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# compile_bytecode: the project's own modules compiled once before anything is measured, as an
# installation does (ensure_venv installs the requirements with --compile-bytecode; the Dockerfile
# compiles the app). With PYTHONDONTWRITEBYTECODE set, as in the image and these sessions' shells,
# every measured process (run_plan, rollback_run, a worker's first import of a module) would
# otherwise compile from source each module it imports: ~255 for run_plan alone.
compile_bytecode() {
    "$MP_VENV/bin/python" -m compileall -q -j 0 accounts bench mappings migration_planner runs \
        validation manage.py
}

main() {
    local pg_port="${BENCH_PG_PORT:-55533}" redis_port="${BENCH_REDIS_PORT:-56480}"
    step "system packages" ensure_run_packages
    step "PostgreSQL packages" ensure_postgres_packages
    command -v pgloader >/dev/null 2>&1 || step "pgloader" apt_install pgloader
    step "python packages" ensure_venv
    ensure_secret_key
    cd "$MP_ROOT"
    step "bytecode" compile_bytecode
    mkdir -p "$BENCH_DIR" bench/results
    step "start PostgreSQL" start_bench_pg "$pg_port"
    step "start Redis" start_redis "$redis_port" "$BENCH_DIR/redis" --save '' --appendonly no
    export PYTHONPATH="$MP_ROOT${PYTHONPATH:+:$PYTHONPATH}"
    # in the background and waited for: bash runs a signal's trap only once a foreground
    # child has ended, so a TERM would otherwise wait for the whole bench
    "$MP_VENV/bin/python" -m bench.run_bench --pg-port "$pg_port" \
        --redis-url "redis://127.0.0.1:$redis_port/0" "$@" &
    MP_BENCH_CHILD=$!
    wait "$MP_BENCH_CHILD"
}

main "$@"
