#!/usr/bin/env bash
# The test command: private PostgreSQL, Redis and MariaDB on loopback, ruff (lint, format
# check), then pytest.
# Usage: bash scripts/test.sh [pytest args...]   (JUnit XML goes to artifacts/junit.xml)
# Without pytest args the whole suite runs in TEST_SHARDS (default 2) shards at once, each with
# its own servers (ports +0, +1, ...) and data folder (.data/test-N), split by the recorded
# durations in .test_durations (pytest-split); output in artifacts/shard-N.log. With args (or
# TEST_SHARDS=1) one pytest runs them. Ports: TEST_PG_PORT (default 55433), TEST_REDIS_PORT
# (default 56380), TEST_MYSQL_PORT (default 53306).
# shellcheck disable=SC2317  # functions invoked from traps look unreachable
set -euo pipefail

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

SHARD_PGIDS=()

cleanup() {
    local rc=$?
    trap - INT TERM HUP EXIT
    trap '' PIPE  # a closed output pipe must not stop the cleanup halfway
    set +e
    local pgid
    for pgid in "${SHARD_PGIDS[@]}"; do
        kill -TERM -- "-$pgid" 2>/dev/null
    done
    for pgid in "${SHARD_PGIDS[@]}"; do
        wait "$pgid" 2>/dev/null
    done
    stop_test_redis
    stop_test_mysql
    stop_test_pg
    log "finished with exit code $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# One pytest against this process's own servers; JUnit to $1. Exit 5 (no tests) is a failure.
run_pytest() {
    local junit=$1 rc=0
    shift
    step "start PostgreSQL" start_test_pg
    step "start Redis" start_test_redis
    step "start MariaDB" start_test_mysql
    export PLAYWRIGHT_CHROMIUM=/usr/bin/chromium
    # Tests get their own app data dir (fernet key, media) instead of the development one.
    export MP_DATA_DIR="$MP_TEST_DIR/app"
    rm -rf "$MP_DATA_DIR"
    mkdir -p "$MP_DATA_DIR/staticfiles"
    log "DATABASE_URL=$DATABASE_URL REDIS_URL=$REDIS_URL"
    log "pytest $*"
    # pytest's temporary folders live inside the app's data directory: SQLite and file systems
    # may only point there (MP_SYSTEMS_DIR defaults to MP_DATA_DIR).
    "$MP_VENV/bin/pytest" --junitxml="$junit" --basetemp="$MP_DATA_DIR/pytest" "$@" || rc=$?
    if [[ $rc -eq 5 ]]; then
        log "pytest collected no tests: treating that as a failure"
        rc=1
    fi
    return "$rc"
}

# Shard $1 of $2: this script again, with ports +$1-1 and its own data folder, in its own
# process group (stopped as a whole by cleanup); its output goes to artifacts/shard-$1.log.
start_shard() {
    local k=$1 n=$2
    shift 2
    MP_TEST_SHARD="$k" MP_TEST_DIR="$MP_DATA/test-$k" \
        TEST_PG_PORT=$((${TEST_PG_PORT:-55433} + k - 1)) \
        TEST_REDIS_PORT=$((${TEST_REDIS_PORT:-56380} + k - 1)) \
        TEST_MYSQL_PORT=$((${TEST_MYSQL_PORT:-53306} + k - 1)) \
        setsid bash -c 'bash "$0" "$@" >"artifacts/shard-$MP_TEST_SHARD.log" 2>&1' \
        "$MP_ROOT/scripts/test.sh" --splits "$n" --group "$k" \
        --splitting-algorithm duration_based_chunks --durations-path .test_durations "$@" &
    SHARD_PGIDS+=("$!")
}

run_shards() {
    local n=$1 k rc=0 shard_rc
    shift
    rm -f artifacts/junit-*.xml artifacts/shard-*.log
    for ((k = 1; k <= n; k++)); do
        start_shard "$k" "$n" "$@"
    done
    log "$n shards started; their output: artifacts/shard-1.log … artifacts/shard-$n.log"
    for ((k = 1; k <= n; k++)); do
        shard_rc=0
        wait "${SHARD_PGIDS[k - 1]}" || shard_rc=$?
        log "shard $k/$n finished with exit code $shard_rc:"
        grep -E '^(FAILED|ERROR) |^=+ .*(passed|failed|error|no tests ran).* =+$' \
            "artifacts/shard-$k.log" || tail -n 30 "artifacts/shard-$k.log"
        [[ $shard_rc -eq 0 ]] || rc=$shard_rc
    done
    SHARD_PGIDS=()
    "$MP_VENV/bin/python" scripts/test_shards.py merge artifacts/junit.xml artifacts/junit-*.xml \
        || rc=1
    return "$rc"
}

main() {
    cd "$MP_ROOT"
    if [[ -n "${MP_TEST_SHARD:-}" ]]; then  # one shard, started by run_shards
        run_pytest "artifacts/junit-$MP_TEST_SHARD.xml" "$@"
        return
    fi
    mp_setup test
    mkdir -p artifacts "$MP_TEST_DIR"
    ensure_secret_key
    local ruff_rc=0 pytest_rc=0 shards="${TEST_SHARDS:-2}"
    log "ruff check . && ruff format --check ."
    "$MP_VENV/bin/ruff" check . || ruff_rc=$?
    "$MP_VENV/bin/ruff" format --check . || ruff_rc=$?
    if [[ $# -eq 0 && $shards -gt 1 ]]; then
        run_shards "$shards" || pytest_rc=$?
    else
        run_pytest artifacts/junit.xml "$@" || pytest_rc=$?
    fi
    [[ $ruff_rc -eq 0 ]] || log "ruff check or ruff format --check failed (exit $ruff_rc)"
    if [[ $pytest_rc -ne 0 ]]; then
        exit "$pytest_rc"
    fi
    exit "$ruff_rc"
}

main "$@"
