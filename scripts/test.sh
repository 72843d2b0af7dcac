#!/usr/bin/env bash
# The test command: private PostgreSQL, Redis and MariaDB on loopback, ruff, then pytest.
# Usage: bash scripts/test.sh [pytest args...]   (JUnit XML goes to artifacts/junit.xml)
# Ports: TEST_PG_PORT (default 55433), TEST_REDIS_PORT (default 56380),
# TEST_MYSQL_PORT (default 53306).
# shellcheck disable=SC2317  # functions invoked from traps look unreachable
set -euo pipefail

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

cleanup() {
    local rc=$?
    trap - INT TERM HUP EXIT
    trap '' PIPE  # a closed output pipe must not stop the cleanup halfway
    set +e
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

main() {
    mp_setup test
    cd "$MP_ROOT"
    mkdir -p artifacts "$MP_DATA/test"
    ensure_secret_key
    step "start PostgreSQL" start_test_pg
    step "start Redis" start_test_redis
    step "start MariaDB" start_test_mysql
    export PLAYWRIGHT_CHROMIUM=/usr/bin/chromium
    # Tests get their own app data dir (fernet key, media) instead of the development one.
    export MP_DATA_DIR="$MP_DATA/test/app"
    rm -rf "$MP_DATA_DIR"
    mkdir -p "$MP_DATA_DIR/staticfiles"
    log "DATABASE_URL=$DATABASE_URL REDIS_URL=$REDIS_URL"

    local ruff_rc=0 pytest_rc=0
    log "ruff check ."
    "$MP_VENV/bin/ruff" check . || ruff_rc=$?
    log "pytest $*"
    # pytest's temporary folders live inside the app's data directory: SQLite and file systems
    # may only point there (MP_SYSTEMS_DIR defaults to MP_DATA_DIR).
    "$MP_VENV/bin/pytest" --junitxml=artifacts/junit.xml --basetemp="$MP_DATA_DIR/pytest" "$@" \
        || pytest_rc=$?
    if [[ $pytest_rc -eq 5 ]]; then
        log "pytest collected no tests: treating that as a failure"
        pytest_rc=1
    fi
    [[ $ruff_rc -eq 0 ]] || log "ruff check failed (exit $ruff_rc)"
    if [[ $pytest_rc -ne 0 ]]; then
        exit "$pytest_rc"
    fi
    exit "$ruff_rc"
}

main "$@"
