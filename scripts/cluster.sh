#!/bin/sh
# Several nodes on one machine: a private PostgreSQL, two mod_rtboard nodes
# and the front Apache, each started and stopped by pid.
#   scripts/cluster.sh start|stop
# Environment: VAR (state directory, default ./var: PostgreSQL in VAR/pg,
# the nodes in VAR/node1 and VAR/node2, the front in VAR/front), PORT (the
# front, 8080; the nodes on PORT+1 and PORT+2, PostgreSQL on PGPORT, default
# PORT+10), NODES (2), CHILDREN and THREADS of the nodes, FRONT_CHILDREN (2)
# and FRONT_THREADS (250) of the front: one front thread per open stream.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
VAR=${VAR:-$here/var}
case "$VAR" in /*) ;; *) VAR="$(pwd)/$VAR" ;; esac
PORT=${PORT:-8080}
NNODES=${NODES:-2}
export PGPORT=${PGPORT:-$((PORT + 10))}
conninfo=$(VAR=$VAR PORT=$PORT "$here/scripts/pg.sh" conninfo)

node() { # node N action
    VAR="$VAR/node$1" PORT=$((PORT + $1)) DBDRIVER=pgsql DBDPARAMS="$conninfo" MIGRATE=0 \
        "$here/scripts/server.sh" "$2"
}

front() {
    members=""
    i=1
    while [ $i -le "$NNODES" ]; do members="$members 127.0.0.1:$((PORT + i))"; i=$((i + 1)); done
    VAR="$VAR/front" PORT=$PORT ROLE=front NODES="$members" CHILDREN=${FRONT_CHILDREN:-2} \
        THREADS=${FRONT_THREADS:-250} "$here/scripts/server.sh" "$1"
}

case "${1:-start}" in
start)
    VAR=$VAR PORT=$PORT "$here/scripts/pg.sh" start
    i=1; while [ $i -le "$NNODES" ]; do node $i start; i=$((i + 1)); done
    front start
    echo ""
    echo "mod_rtboard is running on $NNODES nodes sharing PostgreSQL ($conninfo)"
    echo "  front (any node, no sticky sessions): http://127.0.0.1:$PORT/?board=demo"
    i=1; while [ $i -le "$NNODES" ]; do
        echo "  node $i (the whole API directly):     http://127.0.0.1:$((PORT + i))/?board=demo"
        i=$((i + 1)); done
    echo "  demo users: alice, bob, carol (password: the user's name)"
    echo "  bus state of a node: http://127.0.0.1:$((PORT + 1))/rtboard-status (\"bus\")"
    echo "  stop it all with: make cluster-stop"
    ;;
stop)
    front stop
    i=1; while [ $i -le "$NNODES" ]; do node $i stop; i=$((i + 1)); done
    VAR=$VAR PORT=$PORT "$here/scripts/pg.sh" stop
    ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
