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
[ "${RTB_SEED:-1}" = 0 ] || sq -bail "$db" < "$here/sql/sqlite/seed.sql"
