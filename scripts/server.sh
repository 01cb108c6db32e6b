#!/bin/sh
# Starts, stops or gracefully restarts a private httpd running mod_rtboard.
#   scripts/server.sh start|stop|graceful|conf
# Environment: VAR (state directory, default ./var), PORT (8080), CHILDREN (2),
# THREADS (200), HISTORY (10000), HEARTBEAT (15), WSPING (30), LOGLEVEL (warn),
# RINGSIZE (16M), RINGSLOTS (16384), MODULE (built module path), MIGRATE (1; 0
# leaves the database as it is, even when it is missing or broken).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
VAR=${VAR:-$here/var}
case "$VAR" in /*) ;; *) VAR="$(pwd)/$VAR" ;; esac
PORT=${PORT:-8080}
CHILDREN=${CHILDREN:-2}
THREADS=${THREADS:-200}
MODULE=${MODULE:-$here/src/.libs/mod_rtboard.so}
pidfile="$VAR/httpd.pid"

running() {
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

genconf() {
    mkdir -p "$VAR/run" "$VAR/db" "$VAR/conf.d"
    if [ "$(id -u)" = 0 ]; then
        user_line="User www-data
Group www-data"
    else
        user_line=""
    fi
    sed -e "s|@VAR@|$VAR|g" -e "s|@PORT@|$PORT|g" -e "s|@ROOT@|$here|g" \
        -e "s|@MODULE@|$MODULE|g" -e "s|@CHILDREN@|$CHILDREN|g" -e "s|@SERVERLIMIT@|$((CHILDREN * 2))|g" \
        -e "s|@THREADS@|$THREADS|g" -e "s|@MAXWORKERS@|$((CHILDREN * THREADS))|g" -e "s|@MINSPARE@|$THREADS|g" \
        -e "s|@MAXSPARE@|$((CHILDREN * THREADS + THREADS))|g" \
        -e "s|@HISTORY@|${HISTORY:-10000}|g" -e "s|@HEARTBEAT@|${HEARTBEAT:-15}|g" \
        -e "s|@WSPING@|${WSPING:-30}|g" -e "s|@LOGLEVEL@|${LOGLEVEL:-warn}|g" \
        -e "s|@RINGSIZE@|${RINGSIZE:-16M}|g" -e "s|@RINGSLOTS@|${RINGSLOTS:-16384}|g" \
        "$here/conf/httpd-dev.conf.in" | awk -v u="$user_line" '{ if ($0 == "@USER@") print u; else print }' \
        > "$VAR/httpd.conf"
    # demo users, bcrypt hashes (password: the user's name); a file that is
    # there already is kept as it is
    if [ ! -f "$VAR/htpasswd" ]; then
        : > "$VAR/htpasswd"
        for u in alice bob carol admin; do htpasswd -b -B -C 5 "$VAR/htpasswd" "$u" "$u" 2>/dev/null; done
    fi
    [ "${MIGRATE:-1}" = 0 ] || "$here/scripts/migrate.sh" "$VAR/db/rtboard.db"
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
    /usr/sbin/apache2 -f "$VAR/httpd.conf" -k start
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
