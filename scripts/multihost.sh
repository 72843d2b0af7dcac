#!/usr/bin/env bash
# Workers on other hosts, for real: the database and Redis in one network namespace ("db
# host"), two Celery workers in two others ("worker hosts"), joined by veth pairs on a bridge
# with addresses of this script's own (198.18.0.0/24, the benchmarking range: nothing outside
# these namespaces is ever addressed). A reference run, then a run during which one worker
# host's link is cut: the run must complete on the other worker with the same checksums.
# Needs root (ip netns). Usage: sudo bash scripts/multihost.sh   (figures: artifacts/multihost.json)
# shellcheck disable=SC2317  # functions invoked from traps look unreachable
set -euo pipefail

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

[[ $EUID -eq 0 ]] || die "needs root: network namespaces (ip netns)"
command -v ip >/dev/null || apt_install iproute2

TAG="$$"
NS_DB="mpdb$TAG" NS_W1="mpw1$TAG" NS_W2="mpw2$TAG"
LINK_W1="mpa1$TAG"  # db-side end of worker host 1's veth pair
DB_ADDR=198.18.0.1
WORK=""
REDIS_PASSWORD="mh-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

cleanup() {
    local rc=$?
    trap - INT TERM HUP EXIT
    set +e
    if [[ -n "$WORK" ]]; then
        [[ -f "$WORK/redis.pid" ]] && kill "$(cat "$WORK/redis.pid")" 2>/dev/null
        [[ -f "$WORK/pg/postmaster.pid" ]] \
            && as_postgres "$(pg_bindir)/pg_ctl" -D "$WORK/pg" -m immediate -w stop >/dev/null 2>&1
    fi
    for ns in "$NS_W1" "$NS_W2" "$NS_DB"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    [[ -n "$WORK" ]] && rm -rf "$WORK"
    log "finished with exit code $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

network() {
    ip netns add "$NS_DB"
    ip netns add "$NS_W1"
    ip netns add "$NS_W2"
    for ns in "$NS_DB" "$NS_W1" "$NS_W2"; do ip -n "$ns" link set lo up; done
    ip -n "$NS_DB" link add br0 type bridge
    ip -n "$NS_DB" addr add "$DB_ADDR/24" dev br0
    ip -n "$NS_DB" link set br0 up
    local i ns link peer
    for i in 1 2; do
        ns="mpw$i$TAG" link="mpa$i$TAG" peer="mpb$i$TAG"
        ip link add "$link" type veth peer name "$peer"
        ip link set "$link" netns "$NS_DB"
        ip link set "$peer" netns "$ns"
        ip -n "$NS_DB" link set "$link" master br0 up
        ip -n "$ns" addr add "198.18.0.1$i/24" dev "$peer"
        ip -n "$ns" link set "$peer" up
    done
}

servers() {
    local bindir
    bindir=$(pg_bindir)
    WORK=$(mktemp -d /tmp/mp-multihost.XXXXXX)
    chmod 755 "$WORK"
    mkdir -p "$WORK/pg" "$WORK/run"
    chown postgres: "$WORK/pg" "$WORK/run"
    as_postgres "$bindir/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --no-locale \
        >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
    echo "host all all 198.18.0.0/24 trust" >>"$WORK/pg/pg_hba.conf"
    ip netns exec "$NS_DB" runuser -u postgres -- "$bindir/pg_ctl" -D "$WORK/pg" \
        -l "$WORK/run/postgres.log" -w -t 30 start \
        -o "-h $DB_ADDR,127.0.0.1 -p 5432 -k $WORK/run -c fsync=off -c max_connections=100" \
        >/dev/null
    ip netns exec "$NS_DB" "$bindir/createdb" -h 127.0.0.1 -U postgres mp_app
    # A password, as any Redis that other hosts reach should have (and protected mode wants).
    ip netns exec "$NS_DB" redis-server --bind "$DB_ADDR" 127.0.0.1 --port 6379 --save '' \
        --requirepass "$REDIS_PASSWORD" \
        --appendonly no --daemonize yes --pidfile "$WORK/redis.pid" --dir "$WORK" \
        --logfile "$WORK/redis.log"
    local ns
    for ns in "$NS_W1" "$NS_W2"; do  # each worker host reaches both servers over its link
        wait_for "Redis from $ns" 10 ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$DB_ADDR/6379"
        wait_for "PostgreSQL from $ns" 10 ip netns exec "$ns" bash -c \
            "exec 3<>/dev/tcp/$DB_ADDR/5432"
    done
}

main() {
    mp_setup test
    cd "$MP_ROOT"
    mkdir -p artifacts
    step "network namespaces" network
    step "PostgreSQL and Redis in the db namespace" servers
    local fernet
    fernet=$("$MP_VENV/bin/python" -c \
        "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")
    ip netns exec "$NS_DB" env \
        DATABASE_URL="postgres://postgres@$DB_ADDR:5432/mp_app" \
        REDIS_URL="redis://:$REDIS_PASSWORD@$DB_ADDR:6379/0" \
        TEST_PG_URL="postgresql://postgres@$DB_ADDR:5432/postgres" \
        FERNET_KEYS="$fernet" SECRET_KEY="multihost-$TAG" \
        MP_BATCH_LEASE_SECONDS=3 MP_SUPERVISOR_SECONDS=1 MP_WORKER_HEARTBEAT_SECONDS=1 \
        MP_DATA_DIR="$WORK/control" PYTHONPATH="$MP_ROOT" CELERY_SKIP_CHECKS=1 \
        MP_NS_WORKERS="$NS_W1,$NS_W2" MP_CUT_LINK="$LINK_W1" MP_WORK="$WORK" \
        "$MP_VENV/bin/python" scripts/multihost.py
}

main "$@"
