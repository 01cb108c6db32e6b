#!/bin/sh
# Starts, stops or gracefully restarts a private httpd running mod_rtboard.
#   scripts/server.sh start|stop|graceful|conf
# Environment: VAR (state directory, default ./var), PORT (8080), CHILDREN (2),
# THREADS (200), HISTORY (10000), HEARTBEAT (15), WSPING (30), LOGLEVEL (warn),
# RINGSIZE (16M), RINGSLOTS (16384), USERSTREAMS (100: RTBoardMaxStreamsPerUser),
# BOARDRATE (60: RTBoardBoardsPerMinute), MODULE (built module path), MIGRATE (1; 0
# leaves the database as it is, even when it is missing or broken), DBDRIVER
# (sqlite3; pgsql for PostgreSQL), DBDPARAMS (pgsql: the libpq conninfo of the
# store), BUSPARAMS (pgsql: conninfo of the LISTEN connection; DBDPARAMS when
# unset, "none" for no bus), ROLE (node; front: the front Apache of
# conf/cluster/front.conf.in, spreading requests over NODES, a list of
# host:port), USERDB (file: the users in VAR/htpasswd; dbm: in VAR/users.dbm,
# a Berkeley DB hash, found in constant time however many users it holds).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
VAR=${VAR:-$here/var}
case "$VAR" in /*) ;; *) VAR="$(pwd)/$VAR" ;; esac
PORT=${PORT:-8080}
CHILDREN=${CHILDREN:-2}
THREADS=${THREADS:-200}
MODULE=${MODULE:-$here/src/.libs/mod_rtboard.so}
LIBEXECDIR=${LIBEXECDIR:-$(${APXS:-apxs} -q LIBEXECDIR)} # Apache's own modules
pidfile="$VAR/httpd.pid"

running() {
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

DBDRIVER=${DBDRIVER:-sqlite3}

# The mod_dbd lines of the store (and the bus of several nodes).
dbd_lines() {
    if [ "$DBDRIVER" = pgsql ]; then
        echo "DBDriver pgsql"
        echo "DBDParams \"$DBDPARAMS\""
        [ "${BUSPARAMS:-}" = none ] || echo "RTBoardBus \"${BUSPARAMS:-$DBDPARAMS}\""
    else
        echo "DBDriver sqlite3"
        echo "DBDParams \"$VAR/db/rtboard.db\""
        echo "DBDInitSQL \"PRAGMA foreign_keys = ON\""
        echo "DBDInitSQL \"PRAGMA synchronous = NORMAL\""
    fi
}

# Where Basic authentication finds the users (mod_authn_file reads the whole
# file on a cache miss; mod_authn_dbm looks a user up in a hash: dbm, a
# Berkeley DB file; sdbm, APR's own SDBM, cheaper to open on every lookup).
authn_lines() {
    local type file
    case "${USERDB:-file}" in
    dbm) type=db file=users.dbm ;;
    sdbm) type=SDBM file=users.sdbm ;;
    *)
        echo "    AuthBasicProvider socache file"
        echo "    AuthnCacheProvideFor file"
        echo "    AuthUserFile \"$VAR/htpasswd\""
        return
        ;;
    esac
    echo "    AuthBasicProvider socache dbm"
    echo "    AuthnCacheProvideFor dbm"
    echo "    AuthDBMType $type"
    echo "    AuthDBMUserFile \"$VAR/$file\""
}

# The front's balancer members, one line per node and scheme.
front_members() {
    i=0
    for n in $NODES; do
        i=$((i + 1))
        echo "    BalancerMember $1://$n route=n$i retry=1 $2 hcmethod=GET hcuri=/rtboard-health hcexpr=rtb_healthy hcinterval=1 hcfails=1 hcpasses=1"
    done
}

genfront() {
    mkdir -p "$VAR/run"
    sed -e "s|@VAR@|$VAR|g" -e "s|@PORT@|$PORT|g" -e "s|@CHILDREN@|$CHILDREN|g" \
        -e "s|@THREADS@|$THREADS|g" -e "s|@MAXWORKERS@|$((CHILDREN * THREADS))|g" \
        -e "s|@MAXSPARE@|$((CHILDREN * THREADS + THREADS))|g" -e "s|@LOGLEVEL@|${LOGLEVEL:-warn}|g" \
        -e "s|@NNODES@|$(echo $NODES | wc -w)|g" "$here/conf/cluster/front.conf.in" |
        awk -v u="$(user_lines)" -v h="$(front_members http flushpackets=on)" \
            -v w="$(front_members ws "")" \
            '{ if ($0 == "@USER@") print u; else if ($0 == "@MEMBERS_HTTP@") print h;
               else if ($0 == "@MEMBERS_WS@") print w; else print }' > "$VAR/httpd.conf"
}

user_lines() {
    if [ "$(id -u)" = 0 ]; then printf 'User www-data\nGroup www-data\n'; fi
}

genconf() {
    if [ "${ROLE:-node}" = front ]; then genfront; return; fi
    mkdir -p "$VAR/run" "$VAR/db" "$VAR/conf.d"
    if [ "$(id -u)" = 0 ]; then
        user_line="User www-data
Group www-data"
    else
        user_line=""
    fi
    sed -e "s|@VAR@|$VAR|g" -e "s|@PORT@|$PORT|g" -e "s|@ROOT@|$here|g" \
        -e "s|@MODULE@|$MODULE|g" -e "s|@LIBEXECDIR@|$LIBEXECDIR|g" -e "s|@CHILDREN@|$CHILDREN|g" \
        -e "s|@SERVERLIMIT@|$((CHILDREN * 2))|g" \
        -e "s|@THREADS@|$THREADS|g" -e "s|@MAXWORKERS@|$((CHILDREN * THREADS))|g" -e "s|@MINSPARE@|$THREADS|g" \
        -e "s|@MAXSPARE@|$((CHILDREN * THREADS + THREADS))|g" \
        -e "s|@HISTORY@|${HISTORY:-10000}|g" -e "s|@HEARTBEAT@|${HEARTBEAT:-15}|g" \
        -e "s|@WSPING@|${WSPING:-30}|g" -e "s|@LOGLEVEL@|${LOGLEVEL:-warn}|g" \
        -e "s|@RINGSIZE@|${RINGSIZE:-16M}|g" -e "s|@RINGSLOTS@|${RINGSLOTS:-16384}|g" \
        -e "s|@USERSTREAMS@|${USERSTREAMS:-100}|g" -e "s|@BOARDRATE@|${BOARDRATE:-60}|g" \
        "$here/conf/httpd-dev.conf.in" |
        awk -v u="$user_line" -v d="$(dbd_lines)" -v a="$(authn_lines)" \
            '{ if ($0 == "@USER@") print u; else if ($0 == "@DBD@") print d;
               else if ($0 == "@AUTHN@") print a; else print }' \
        > "$VAR/httpd.conf"
    # demo users, bcrypt hashes (password: the user's name); a file that is
    # there already is kept as it is
    if [ ! -f "$VAR/htpasswd" ]; then
        : > "$VAR/htpasswd"
        for u in alice bob carol admin; do htpasswd -b -B -C 5 "$VAR/htpasswd" "$u" "$u" 2>/dev/null; done
    fi
    if [ "$DBDRIVER" = pgsql ]; then
        [ "${MIGRATE:-1}" = 0 ] || DBDRIVER=pgsql "$here/scripts/migrate.sh" "$DBDPARAMS"
    else
        [ "${MIGRATE:-1}" = 0 ] || "$here/scripts/migrate.sh" "$VAR/db/rtboard.db"
    fi
    if [ "$(id -u)" = 0 ]; then
        chown -R www-data:www-data "$VAR/db"
        # the children must reach the state directory and the client files
        chmod o+x "$VAR" "$(dirname "$VAR")" 2>/dev/null || true
    fi
}

wait_up() {
    i=0
    while [ $i -lt 100 ]; do
        if curl -s -o /dev/null -u alice:alice "http://127.0.0.1:$PORT/boards"; then return 0; fi
        i=$((i + 1)); sleep 0.1
    done
    echo "httpd did not answer on port $PORT; see $VAR/error.log" >&2
    tail -n 20 "$VAR/error.log" >&2 || true
    return 1
}

case "${1:-start}" in
conf) genconf ;;
start)
    if running; then echo "already running (pid $(cat "$pidfile"))"; exit 0; fi
    genconf
    if [ -n "${ASAN_LIB:-}" ]; then
        # a module built with AddressSanitizer (make asan): the runtime must be
        # loaded first; reports go to ASAN_REPORTS, not to the terminal
        LD_PRELOAD="$ASAN_LIB" \
            ASAN_OPTIONS="detect_leaks=0:use_sigaltstack=0:log_path=${ASAN_REPORTS:-$VAR}/asan" \
            UBSAN_OPTIONS="print_stacktrace=1:log_path=${ASAN_REPORTS:-$VAR}/ubsan" \
            /usr/sbin/apache2 -f "$VAR/httpd.conf" -k start
    else
        /usr/sbin/apache2 -f "$VAR/httpd.conf" -k start
    fi
    wait_up
    ;;
stop)
    if running; then
        pid=$(cat "$pidfile"); kill -TERM "$pid"
        i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
    fi
    rm -f "$pidfile"
    ;;
graceful)
    genconf
    kill -USR1 "$(cat "$pidfile")"
    ;;
*) echo "usage: $0 start|stop|graceful|conf" >&2; exit 2 ;;
esac
