#!/usr/bin/env bash
# Many runs, one target (issue 15): re-run of an unchanged source vs the first run, and
# re-processing 5,000 failed records. A private PostgreSQL on TEST_PG_PORT (default 55433).
# Usage: bash scripts/bench_many_runs.sh [--rows 100000] [--reprocess 5000]
# shellcheck disable=SC2317  # functions invoked from traps look unreachable
set -euo pipefail

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

cleanup() {
    local rc=$?
    trap - INT TERM HUP EXIT
    set +e
    stop_test_pg
    exit "$rc"
}
trap cleanup EXIT

main() {
    mp_setup test
    cd "$MP_ROOT"
    mkdir -p "$MP_DATA/test" bench/results
    step "start PostgreSQL" start_test_pg
    export MP_DATA_DIR="$MP_DATA/test/app"
    mkdir -p "$MP_DATA_DIR"
    "$MP_VENV/bin/python" -m bench.many_runs "$@"
}

main "$@"
