#!/usr/bin/env bash
# Run the app locally: web server (gunicorn + whitenoise), a Celery worker and Celery beat (the
# run supervisor), with a local Redis
# when REDIS_URL is unset and SQLite at .data/app.sqlite3 when DATABASE_URL is unset.
# Usage: bash scripts/run.sh        (PORT=8000 by default; Ctrl-C stops everything it started)
# shellcheck disable=SC2317  # functions invoked from traps look unreachable
set -euo pipefail

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

PORT="${PORT:-8000}"
DEV_REDIS_PORT=6379
STARTED_PIDS=()

cleanup() {
    local rc=$? i
    trap - INT TERM HUP EXIT
    trap '' PIPE  # a closed output pipe must not stop the cleanup halfway
    set +e
    # Stop in reverse order of start: web, worker, then Redis (only if we started it).
    for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${STARTED_PIDS[i]%%:*}" "${STARTED_PIDS[i]#*:}"
    done
    stop_redis
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# Reuse a Redis that already answers on 6379; otherwise start one and own it.
start_dev_redis() {
    if redis_ping "$DEV_REDIS_PORT"; then
        log "reusing the Redis already on 127.0.0.1:$DEV_REDIS_PORT"
    else
        start_redis "$DEV_REDIS_PORT" "$MP_DATA/redis"
    fi
    export REDIS_URL="redis://127.0.0.1:$DEV_REDIS_PORT/0"
}

health_ok() {
    "$MP_VENV/bin/python" - "$PORT" <<'PY' >/dev/null 2>&1
import sys
import urllib.request

with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

print_banner() {
    local password
    password="${DEMO_PASSWORD:-demo-pass-2026}"
    cat >&2 <<BANNER

  Migration Planner is running at  http://127.0.0.1:$PORT/
  Demo logins (password: $password):
    analyst  approver  operator  viewer  admin
  Health: http://127.0.0.1:$PORT/healthz     Stop: Ctrl-C

BANNER
}

main() {
    mp_setup run
    cd "$MP_ROOT"
    mkdir -p "$MP_DATA"
    ensure_secret_key
    port_busy "$PORT" && die "port $PORT is already in use; set PORT to a free port"
    export DATABASE_URL="${DATABASE_URL:-sqlite:///$MP_DATA/app.sqlite3}"
    # The project is not an installed package: gunicorn and celery import it from the checkout.
    export PYTHONPATH="$MP_ROOT${PYTHONPATH:+:$PYTHONPATH}"
    if [[ -z "${REDIS_URL:-}" ]]; then
        step "local Redis" start_dev_redis
    fi
    local py="$MP_VENV/bin/python"
    step "migrate" "$py" manage.py migrate --noinput
    step "collectstatic" "$py" manage.py collectstatic --noinput -v 0
    step "load demo data" "$py" manage.py load_demo
    "$MP_VENV/bin/celery" -A migration_planner worker --loglevel=INFO --concurrency=2 &
    STARTED_PIDS+=("$!:celery worker")
    # Beat queues the supervisor (runs.supervise) every MP_SUPERVISOR_SECONDS: it re-queues
    # work a killed worker or a restarted broker lost (docs/operations.md).
    "$MP_VENV/bin/celery" -A migration_planner beat --loglevel=INFO \
        --schedule "$MP_DATA/celerybeat-schedule" &
    STARTED_PIDS+=("$!:celery beat")
    "$MP_VENV/bin/gunicorn" migration_planner.wsgi --bind "127.0.0.1:$PORT" --workers 2 \
        --threads 4 --access-logfile - &
    STARTED_PIDS+=("$!:gunicorn")
    wait_for "web server on port $PORT" 60 health_ok
    print_banner
    # Return when any started process exits; the EXIT trap stops the others.
    local rc=0
    wait -n || rc=$?
    log "a service exited (status $rc); stopping the rest"
    exit "$rc"
}

main "$@"
