#!/usr/bin/env bash
# The read-back cost bench (bench/read_back.py) on a private throwaway PostgreSQL (the test
# server's settings: fsync off). Usage: bash scripts/bench_read_back.sh [--rows N] [--batch-size N]
# Port: TEST_PG_PORT (default 55433).
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
trap 'exit 130' INT
trap 'exit 143' TERM

mp_setup test
cd "$MP_ROOT"
step "start PostgreSQL" start_test_pg
"$MP_VENV/bin/python" -m bench.read_back --url "$TEST_PG_URL" "$@"
