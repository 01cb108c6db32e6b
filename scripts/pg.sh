#!/bin/sh
# A private PostgreSQL cluster for `make cluster` and the tests: created with
# initdb under $PGVAR (default $VAR/pg), its own port ($PGPORT, default
# PORT+10) and socket directory, started and stopped by pid.
#   scripts/pg.sh start|stop|restart|conninfo
# As root, the cluster runs as user postgres (initdb refuses root). Local
# connections are trusted: it listens on 127.0.0.1 and its socket directory
# only. `start` creates the role and database rtboard and migrates it.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
VAR=${VAR:-$here/var}
case "$VAR" in /*) ;; *) VAR="$(pwd)/$VAR" ;; esac
PORT=${PORT:-8080}
PGVAR=${PGVAR:-$VAR/pg}
PGPORT=${PGPORT:-$((PORT + 10))}
bin=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
data="$PGVAR/data"
sock="$PGVAR/run"
conninfo="host=127.0.0.1 port=$PGPORT dbname=rtboard user=rtboard"

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pid() {
    [ -f "$data/postmaster.pid" ] && head -n 1 "$data/postmaster.pid"
}

running() {
    p=$(pid 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null
}

ready() {
    i=0
    while [ $i -lt 300 ]; do
        if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then return 0; fi
        i=$((i + 1)); sleep 0.1
    done
    echo "PostgreSQL did not start on port $PGPORT; see $PGVAR/postgres.log" >&2
    tail -n 20 "$PGVAR/postgres.log" >&2 || true
    return 1
}

start() {
    mkdir -p "$PGVAR" "$sock"
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$data"
        [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PGVAR"
        # the cluster's user must reach its directory
        [ "$(id -u)" = 0 ] && chmod o+x "$VAR" "$(dirname "$VAR")" 2>/dev/null || true
        as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
        cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$sock'
max_connections = ${PGMAXCONN:-200}
shared_buffers = 128MB
fsync = ${PGFSYNC:-on}
synchronous_commit = ${PGSYNC:-on}
logging_collector = off
CONF
        fresh=1
    else
        fresh=0
    fi
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGVAR" "$sock"
    if ! running; then
        as_pg "$bin/pg_ctl" -D "$data" -l "$PGVAR/postgres.log" -s -w -t 30 start >/dev/null
    fi
    ready
    if [ $fresh = 1 ]; then
        psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
            -c "CREATE ROLE rtboard LOGIN" -c "CREATE DATABASE rtboard OWNER rtboard" >/dev/null
    fi
    [ "${MIGRATE:-1}" = 0 ] || DBDRIVER=pgsql "$here/scripts/migrate.sh" "$conninfo"
}

stop() {
    if running; then
        p=$(pid)
        kill -INT "$p"   # fast shutdown: active transactions are rolled back
        i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
        if kill -0 "$p" 2>/dev/null; then kill -KILL "$p"; fi
    fi
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
restart) stop; MIGRATE=0 start ;;
conninfo) echo "$conninfo" ;;
*) echo "usage: $0 start|stop|restart|conninfo" >&2; exit 2 ;;
esac
