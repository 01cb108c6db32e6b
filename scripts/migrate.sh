#!/bin/sh
# Creates or migrates the database, then seeds the demo boards. Safe to run
# any number of times, also by several nodes at once (PostgreSQL).
#   scripts/migrate.sh /path/to/rtboard.db              SQLite (sql/sqlite/)
#   DBDRIVER=pgsql scripts/migrate.sh "host=... dbname=..."   PostgreSQL (sql/pgsql/)
# Each NNN_*.sql newer than the database's version is applied in its own
# transaction (SQLite: PRAGMA user_version; PostgreSQL: the schema_version
# table, under an advisory lock).
set -eu
db="$1"
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "${DBDRIVER:-sqlite3}" = pgsql ]; then
    pq() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
    pq -c "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)" 2>&1 |
        grep -v "already exists" || true
    for f in "$here"/sql/pgsql/[0-9][0-9][0-9]_*.sql; do
        n=$(basename "$f"); n=${n%%_*}; n=$(expr "$n" + 0)
        # the version is checked again under the lock: another node may have
        # applied this file in between
        out=$({
            echo "BEGIN;"
            echo "SELECT pg_advisory_xact_lock(7411);"
            printf '%s\n' "SELECT COALESCE(MAX(version), 0) < $n AS todo FROM schema_version \\gset"
            printf '%s\n' '\if :todo'
            cat "$f"
            echo "INSERT INTO schema_version VALUES ($n);"
            printf '%s\n' '\echo applied' '\endif'
            echo "COMMIT;"
        } | pq -t)
        case "$out" in *applied*) echo "migrated the PostgreSQL database to version $n" ;; esac
    done
    if [ "${RTB_SEED:-1}" != 0 ]; then
        { echo "BEGIN;"; echo "SELECT pg_advisory_xact_lock(7411);";
          cat "$here/sql/pgsql/seed.sql"; echo "COMMIT;"; } | pq -t >/dev/null
    fi
    exit 0
fi

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
