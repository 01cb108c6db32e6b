#!/bin/sh
# Creates or migrates the SQLite database: applies every sql/sqlite/NNN_*.sql
# newer than the database's user_version, each in its own transaction, then
# seeds the demo boards. Safe to run any number of times.
set -eu
db="$1"
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$(dirname "$db")"
# a running server may be writing (graceful restart): wait for its locks
sq() { sqlite3 -cmd ".timeout 30000" "$@"; }
v=$(sq "$db" "PRAGMA user_version;")
for f in "$here"/sql/sqlite/[0-9][0-9][0-9]_*.sql; do
    n=$(basename "$f"); n=${n%%_*}; n=$(expr "$n" + 0)
    if [ "$n" -gt "$v" ]; then
        { echo "BEGIN;"; cat "$f"; echo "PRAGMA user_version = $n;"; echo "COMMIT;"; } |
            sq -bail "$db"
        echo "migrated $db to version $n"
    fi
done
# WAL is a property of the file; set once here, not per connection
sq "$db" "PRAGMA journal_mode = WAL;" >/dev/null
# The seed writes only when a demo board or its lists are missing: this
# script runs on every graceful restart while the server writes, and each of
# its write transactions makes a server's write that meets it wait 100 ms
# (apr_dbd_sqlite3's busy retry). Reading does not block writers in WAL.
[ "${RTB_SEED:-1}" = 0 ] ||
    [ "$(sq "$db" "SELECT (SELECT count(*) FROM boards WHERE id IN ('demo', 'private')) = 2
                   AND (SELECT count(DISTINCT board_id) FROM lists
                        WHERE board_id IN ('demo', 'private')) = 2;")" = 1 ] ||
    sq -bail "$db" < "$here/sql/sqlite/seed.sql"
