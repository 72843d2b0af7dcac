#!/usr/bin/env bash
# Shared shell functions for scripts/setup.sh, scripts/run.sh and scripts/test.sh.
# Source it; it defines functions and a few variables and starts nothing by itself.
# shellcheck disable=SC2034  # variables here are read by the scripts that source this file

set -euo pipefail

MP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MP_VENV="${MP_VENV:-$MP_ROOT/.venv}"
MP_DATA="$MP_ROOT/.data"
# Test servers' data: one folder per test run (scripts/test.sh gives each shard its own).
MP_TEST_DIR="${MP_TEST_DIR:-$MP_DATA/test}"
MP_T0="${MP_T0:-$(date +%s%N)}"
export MP_T0
_MP_APT_UPDATED=0

# ---------------------------------------------------------------- logging

# Seconds since the first script of this run started, one decimal.
mp_elapsed() {
    local now
    now=$(date +%s%N)
    awk -v a="$MP_T0" -v b="$now" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'
}

log() { printf '[%6ss] %s\n' "$(mp_elapsed)" "$*" >&2; }

die() {
    printf '[%6ss] ERROR: %s\n' "$(mp_elapsed)" "$*" >&2
    exit 1
}

# step "label" cmd args...: run a command and report how long it took. A failure ends the
# script through errexit, so never call step as a condition (`step ... || x` disables errexit
# inside the whole call).
step() {
    local label="$1" start end
    shift
    start=$(date +%s%N)
    log "$label ..."
    "$@"
    end=$(date +%s%N)
    log "$label done in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')s"
}

# ---------------------------------------------------------------- privileges

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (no sudo available)"
    fi
}

# Run a command as the postgres user when we are root (PostgreSQL refuses to run as root);
# from / so that a working directory postgres cannot read does not matter.
as_postgres() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# ---------------------------------------------------------------- Debian packages

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# apt_install pkg...: install only the packages that are missing; apt-get update at most once.
apt_install() {
    local missing=() p
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get"
    if [[ $_MP_APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        _MP_APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# The newest PostgreSQL server bin directory (Debian layout), or empty.
pg_bindir() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" ]] && best="$d"
    done
    printf '%s' "$best"
}

ensure_python_venv_support() {
    [[ -x "$MP_VENV/bin/python" ]] && return 0
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 && return 0
    apt_install python3-venv
}

ensure_redis_packages() {
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
}

ensure_postgres_packages() {
    [[ -n "$(pg_bindir)" ]] && getent passwd postgres >/dev/null && return 0
    apt_install postgresql
}

ensure_browser_packages() {
    [[ -x /usr/bin/chromium ]] || apt_install chromium
    apt_install fonts-dejavu-core
}

# System libraries WeasyPrint loads through cffi (PDF reports).
ensure_pdf_packages() {
    apt_install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b
}

ensure_run_packages() {
    ensure_python_venv_support
    ensure_redis_packages
    ensure_pdf_packages  # the plan document and reports export PDF at run time
    apt_install fonts-dejavu-core
}

ensure_test_packages() {
    ensure_run_packages
    ensure_postgres_packages
    ensure_mysql_packages  # MariaDB: the MySQL source connector's tests
    ensure_browser_packages
    apt_install poppler-utils  # pdftoppm: tests render exported PDFs to PNG
}

# ---------------------------------------------------------------- virtualenv

pyproject_sha() { sha256sum "$MP_ROOT/pyproject.toml" | cut -d' ' -f1; }

# ensure_venv [test]: create .venv and install the project when pyproject.toml changed.
# The stamp records "<sha256> <extras>"; a test install also satisfies a run install.
ensure_venv() {
    local extras="${1:-}" stamp="$MP_VENV/.mp-install-stamp" sha have_sha have_extras spec
    if [[ ! -x "$MP_VENV/bin/python" ]]; then
        log "creating virtualenv $MP_VENV"
        python3 -m venv "$MP_VENV"
    fi
    sha=$(pyproject_sha)
    if [[ -f "$stamp" ]]; then
        read -r have_sha have_extras <"$stamp" || true
        if [[ "$have_sha" == "$sha" && ("$extras" == "" || "${have_extras:-}" == "$extras") ]]; then
            log "virtualenv up to date (pyproject.toml ${sha:0:12})"
            return 0
        fi
    fi
    # The project itself is not a package (pyproject: packages = []): only its requirements are
    # installed. uv installs the same requirements from the same registry as pip would, in
    # parallel and from its cache (a fresh clone's venv: ~9 s instead of ~60 s); pip remains
    # the fallback when uv cannot be had.
    local extra_args=()
    [[ -n "$extras" ]] && extra_args=(--extra "$extras")
    if "$MP_VENV/bin/python" -m pip install -q "uv>=0.5,<2" \
        && "$MP_VENV/bin/uv" pip install -q --compile-bytecode --python "$MP_VENV/bin/python" \
            -r "$MP_ROOT/pyproject.toml" "${extra_args[@]}"; then
        :
    else
        log "uv could not install the requirements; installing them with pip"
        spec="."
        [[ -n "$extras" ]] && spec=".[$extras]"
        "$MP_VENV/bin/python" -m pip install -q --upgrade pip
        (cd "$MP_ROOT" && "$MP_VENV/bin/python" -m pip install -q -e "$spec")
    fi
    printf '%s %s\n' "$sha" "$extras" >"$stamp"
}

# ---------------------------------------------------------------- ports and processes

# True when something accepts TCP connections on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True when a Redis on 127.0.0.1:$1 answers PING (in a subshell: the fd never leaks).
redis_ping() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'PING\r\n' >&3
        reply=""
        read -r -t 2 reply <&3 || true
        [[ "$reply" == "+PONG"* ]]
    ) 2>/dev/null
}

# wait_for "what" seconds cmd...: poll a command every 0.1 s until it succeeds.
wait_for() {
    local what="$1" limit="$2" i
    shift 2
    for ((i = 0; i < limit * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    die "$what did not come up within ${limit}s"
}

# stop_pid pid [name]: TERM a process we started, wait up to 15 s, then KILL it.
stop_pid() {
    local pid="$1" name="${2:-process}" i
    [[ -n "$pid" ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || { log "stopped $name (pid $pid)"; return 0; }
        sleep 0.1
    done
    log "$name (pid $pid) ignored TERM; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- Redis

# start_redis port dir [extra redis-server args...]: start a Redis we own.
# MP_REDIS_PID is set as soon as the process exists, so a trap firing mid-start can stop it.
MP_REDIS_PID=""

start_redis() {
    local port="$1" dir="$2"
    shift 2
    port_busy "$port" && die "port $port is already in use; cannot start Redis there"
    mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --daemonize no --dir "$dir" \
        --logfile "$dir/redis.log" "$@" &
    MP_REDIS_PID=$!
    wait_for "Redis on port $port" 10 redis_ping "$port"
    log "Redis listening on 127.0.0.1:$port (pid $MP_REDIS_PID)"
}

stop_redis() {
    stop_pid "$MP_REDIS_PID" "Redis"
    MP_REDIS_PID=""
}

start_test_redis() {
    local port="${TEST_REDIS_PORT:-56380}"
    start_redis "$port" "$MP_TEST_DIR/redis" --save '' --appendonly no
    export REDIS_URL="redis://127.0.0.1:$port/0"
}

# A fault test may have restarted the test Redis (SHUTDOWN NOSAVE, then a new server on the
# same port): when something still answers there after our PID is gone, shut it down too.
stop_test_redis() {
    local port="${TEST_REDIS_PORT:-56380}"
    stop_redis
    if redis_ping "$port"; then
        (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'SHUTDOWN NOSAVE\r\n' >&3) 2>/dev/null || true
        log "stopped the restarted test Redis on port $port"
    fi
}

# ---------------------------------------------------------------- PostgreSQL (tests)

MP_TEST_PG_DIR=""
MP_TEST_PG_PID=""

# Base directory for the test cluster: $MP_TEST_DIR (data in pg/, socket and log in pgrun/),
# or a private /tmp directory when the postgres user cannot reach the repository or the
# socket path would be too long (Unix socket paths are limited to ~107 bytes).
_pg_workdir() {
    local base="$MP_TEST_DIR"
    rm -rf "$base/pg" "$base/pgrun"
    mkdir -p "$base/pg" "$base/pgrun"
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$base/pg" "$base/pgrun"
        if ! runuser -u postgres -- test -w "$base/pgrun" || [[ ${#base} -gt 80 ]]; then
            rm -rf "$base/pg" "$base/pgrun"
            base=$(mktemp -d /tmp/mp-test-pg.XXXXXX)
            chmod 755 "$base"
            mkdir -p "$base/pg" "$base/pgrun"
            chown postgres: "$base/pg" "$base/pgrun"
        fi
    fi
    chmod 700 "$base/pg"
    printf '%s' "$base"
}

start_test_pg() {
    local port="${TEST_PG_PORT:-55433}" bindir work opts
    bindir=$(pg_bindir)
    [[ -n "$bindir" ]] || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin"
    # A cluster left running by a killed earlier run: stop it through its own data directory.
    if [[ -f "$MP_TEST_DIR/pg/postmaster.pid" ]]; then
        as_postgres "$bindir/pg_ctl" -D "$MP_TEST_DIR/pg" -m immediate -w stop >/dev/null 2>&1 \
            && log "stopped a test PostgreSQL left over from an earlier run"
    fi
    port_busy "$port" && die "port $port is already in use; set TEST_PG_PORT to a free port"
    work=$(_pg_workdir)
    MP_TEST_PG_DIR="$work"
    as_postgres "$bindir/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --no-locale \
        -N >"$work/pgrun/initdb.log" 2>&1 \
        || { cat "$work/pgrun/initdb.log" >&2; die "initdb failed"; }
    opts="-h 127.0.0.1 -p $port -k $work/pgrun -c fsync=off -c synchronous_commit=off"
    opts+=" -c full_page_writes=off -c max_connections=200 -c shared_buffers=64MB"
    # logical decoding for the CDC tests (runs/engine/cdc): slots and a walsender per sync
    opts+=" -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20"
    as_postgres "$bindir/pg_ctl" -D "$work/pg" -l "$work/pgrun/postgres.log" -o "$opts" \
        -w -t 30 start >/dev/null \
        || { cat "$work/pgrun/postgres.log" >&2; die "PostgreSQL did not start"; }
    MP_TEST_PG_PID=$(head -1 "$work/pg/postmaster.pid")
    "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres migration_planner
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/migration_planner"
    export TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
    log "PostgreSQL listening on 127.0.0.1:$port (pid $MP_TEST_PG_PID, data $work/pg)"
}

stop_test_pg() {
    local dir="$MP_TEST_PG_DIR" pid="$MP_TEST_PG_PID"
    [[ -n "$dir" ]] || return 0
    # The PID file also covers a stop requested while pg_ctl start was still running, and a
    # server a fault test restarted (new PID).
    [[ -f "$dir/pg/postmaster.pid" ]] && pid=$(head -1 "$dir/pg/postmaster.pid")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        as_postgres "$(pg_bindir)/pg_ctl" -D "$dir/pg" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || stop_pid "$pid" "test PostgreSQL"
        log "stopped test PostgreSQL (pid $pid)"
    fi
    [[ "$dir" == /tmp/mp-test-pg.* ]] && rm -rf "$dir"
    MP_TEST_PG_DIR=""
    MP_TEST_PG_PID=""
}

# ---------------------------------------------------------------- MariaDB (tests: a MySQL source)

MP_TEST_MYSQL_DIR=""
MP_TEST_MYSQL_PID=""

# The server and client cores only: mariadbd, mariadb-install-db and my_print_defaults, without
# the mariadb-server package's service (nothing is started by the install).
ensure_mysql_packages() {
    [[ -x /usr/sbin/mariadbd ]] && command -v mariadb-install-db >/dev/null 2>&1 \
        && command -v my_print_defaults >/dev/null 2>&1 && return 0
    apt_install mariadb-server-core mariadb-client-core
}

# start_test_mysql: a throwaway MariaDB on 127.0.0.1:$TEST_MYSQL_PORT (default 53306), root
# without a password, utf8mb4; exports TEST_MYSQL_URL. Data, socket and log in .data/test/mysql
# (or a private /tmp directory when that path is too long for a Unix socket).
start_test_mysql() {
    local port="${TEST_MYSQL_PORT:-53306}" dir="$MP_TEST_DIR/mysql" user
    if [[ -f "$dir/mysqld.pid" ]]; then
        stop_pid "$(cat "$dir/mysqld.pid")" "a test MariaDB left over from an earlier run"
    fi
    port_busy "$port" && die "port $port is already in use; set TEST_MYSQL_PORT to a free port"
    rm -rf "$dir"
    [[ ${#dir} -gt 80 ]] && dir=$(mktemp -d /tmp/mp-test-mysql.XXXXXX)
    mkdir -p "$dir/tmp"  # its own temporary tables: not /tmp, which other servers share
    MP_TEST_MYSQL_DIR="$dir"
    user=$(id -un)
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$user" \
        --auth-root-authentication-method=normal --skip-test-db --tmpdir="$dir/tmp" \
        >"$dir/install.log" 2>&1 \
        || { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }
    /usr/sbin/mariadbd --no-defaults --datadir="$dir/data" --user="$user" \
        --bind-address=127.0.0.1 --port="$port" --socket="$dir/mysqld.sock" \
        --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" --skip-log-bin --tmpdir="$dir/tmp" \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 \
        >"$dir/stdout.log" 2>&1 &
    MP_TEST_MYSQL_PID=$!
    wait_for "MariaDB on port $port" 60 port_busy "$port"
    export TEST_MYSQL_URL="mysql://root@127.0.0.1:$port/"
    log "MariaDB listening on 127.0.0.1:$port (pid $MP_TEST_MYSQL_PID, data $dir/data)"
}

stop_test_mysql() {
    local dir="$MP_TEST_MYSQL_DIR"
    stop_pid "$MP_TEST_MYSQL_PID" "test MariaDB"
    [[ -n "$dir" ]] && rm -rf "$dir"
    MP_TEST_MYSQL_DIR=""
    MP_TEST_MYSQL_PID=""
}

# SECRET_KEY for local runs: the environment's, else .env's, else one generated once into
# .data/secret.key (mode 0600). The app refuses to start without one unless DEBUG is on.
ensure_secret_key() {
    [[ -n "${SECRET_KEY:-}" ]] && return 0
    if [[ -f "$MP_ROOT/.env" ]] && grep -Eq '^SECRET_KEY=.+' "$MP_ROOT/.env"; then
        return 0
    fi
    local file="$MP_DATA/secret.key"
    if [[ ! -s "$file" ]]; then
        mkdir -p "$MP_DATA"
        (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(50))' >"$file")
    fi
    SECRET_KEY="$(<"$file")"
    export SECRET_KEY
}
