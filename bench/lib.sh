# Shared helpers for the bench scripts (sourced, not run).
# Each script gets its own httpd on a free 127.0.0.1 port with a fresh state
# directory under /tmp, and stops it (by pid) when it exits.

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
AUTH_ALICE="Authorization: Basic $(printf 'alice:alice' | base64)"
# the status pages are for the admin user only
AUTH_ADMIN="Authorization: Basic $(printf 'admin:admin' | base64)"

say() { printf '%s\n' "$*"; }

# A port nobody listens on now.
free_port() {
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Installs bench/node_modules (ws) when missing.
need_node_modules() {
    if [ ! -d "$BENCH/node_modules/ws" ]; then
        (cd "$BENCH" && npm install --no-audit --no-fund --silent) >&2
    fi
}

# Makes a fresh VAR and PORT; copies the built module there so a rebuild of
# src/ during the run does not change the code under test.
bench_prepare() {
    VAR=$(mktemp -d /tmp/rtbench.XXXXXX)
    chmod 755 "$VAR"
    mkdir -p "$VAR/conf.d" "$VAR/out"
    # EXTRA_CONF=file: more configuration for the server (copied into VAR/conf.d)
    if [ -n "${EXTRA_CONF:-}" ]; then
        cp "$EXTRA_CONF" "$VAR/conf.d/"
    fi
    SRC_MODULE=${SRC_MODULE:-${MODULE:-$ROOT/src/.libs/mod_rtboard.so}}
    if [ ! -f "$SRC_MODULE" ]; then
        echo "no module at $SRC_MODULE: run make build first" >&2
        exit 1
    fi
    cp "$SRC_MODULE" "$VAR/mod_rtboard.so"
    MODULE="$VAR/mod_rtboard.so"
    PORT=$(free_port)
    BASE="http://127.0.0.1:$PORT"
    export VAR PORT MODULE
}

# One line naming the code under test.
describe_build() {
    say "module: $SRC_MODULE ($(stat -c %y "$SRC_MODULE" | cut -d. -f1), sha1 $(sha1sum "$SRC_MODULE" | cut -c1-12)); repository HEAD $(git -C "$ROOT" rev-parse --short HEAD)"
}

# Starts httpd with the current environment (CHILDREN, THREADS, ...). The
# benches open thousands of streams and boards as a few users: no per-user caps.
export USERSTREAMS=${USERSTREAMS:-0} BOARDRATE=${BOARDRATE:-0}
bench_start() {
    "$ROOT/scripts/server.sh" start >"$VAR/out/server-start.log" 2>&1 || {
        cat "$VAR/out/server-start.log" >&2
        exit 1
    }
    SERVER_PID=$(cat "$VAR/httpd.pid")
}

# Stops httpd and reports what its error log says about crashes and drops.
bench_stop() {
    [ -n "${VAR:-}" ] || return 0
    if [ -f "$VAR/httpd.pid" ]; then
        "$ROOT/scripts/server.sh" stop >/dev/null 2>&1 || true
    fi
    if [ -f "$VAR/error.log" ]; then
        segv=$(grep -c 'Segmentation fault\|exit signal' "$VAR/error.log" || true)
        slow=$(grep -c 'RTB0040' "$VAR/error.log" || true)
        behind=$(grep -c 'RTB0043' "$VAR/error.log" || true)
        maxw=$(grep -c 'AH00484\|AH10159' "$VAR/error.log" || true)
        errs=$(grep ':error\]\|:crit\]\|:alert\]\|:emerg\]' "$VAR/error.log" | grep -vc 'AH00484\|AH10159' || true)
        say "error.log: crashes=$segv RTB0040(slow client cut)=$slow RTB0043(child behind ring)=$behind other error-or-worse lines=$errs (MaxRequestWorkers warnings: $maxw)"
        if [ "$segv$slow$behind" != "000" ] || [ "$errs" != 0 ]; then
            grep 'Segmentation fault\|exit signal\|RTB0040\|RTB0043\|:error\]\|:crit\]\|:alert\]\|:emerg\]' \
                "$VAR/error.log" | grep -v 'AH00484\|AH10159' | head -n 5 | sed 's/^/  error.log: /'
        fi
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        say "state kept in $VAR"
    else
        rm -rf "$VAR"
    fi
    VAR=
}

# pids of the server: the parent and its children.
server_pids() {
    echo "$SERVER_PID"
    ps -o pid= --ppid "$SERVER_PID" | tr -d ' '
}
child_pids() { ps -o pid= --ppid "$SERVER_PID" | tr -d ' '; }

# Sum of RSS (KiB) of the parent and all children.
server_rss() {
    # shellcheck disable=SC2046
    ps -o rss= -p $(server_pids | paste -sd, -) | awk '{s += $1} END {print s}'
}

# Sum of PSS (KiB): shared pages (the event ring, code) counted once.
server_pss() {
    for p in $(server_pids); do
        awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null
    done | awk '{s += $1} END {print s}'
}

# CPU time (ms, user + system) used so far by the parent and all children.
server_cpu_ms() {
    tck=$(getconf CLK_TCK)
    for p in $(server_pids); do
        # fields 14 and 15 of /proc/pid/stat, after the ")" of the command name
        sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}'
    done | awk -v t="$tck" '{s += $1} END {printf "%d\n", s * 1000 / t}'
}

# "pid:threads" for each child.
child_threads() {
    for p in $(child_pids); do
        printf '%s:%s ' "$p" "$(ls "/proc/$p/task" | wc -l)"
    done
    echo
}

# GET with alice's credentials; prints the body.
api_get() { curl -sS -H "$AUTH_ALICE" "$BASE$1"; }
# POST JSON with alice's credentials; prints the body.
api_post() {
    curl -sS -H "$AUTH_ALICE" -H 'Content-Type: application/json' -X POST --data "$2" "$BASE$1"
}

# Sum of the latest "ok=" figure (PROGRESS or READY line) over files $1.
connected_sum() {
    for f in $1; do
        grep -E '^(PROGRESS|READY) ok=' "$f" 2>/dev/null | tail -n 1 | sed 's/^[A-Z]* ok=\([0-9]*\).*/\1/'
    done | awk '{s += $1} END {print s + 0}'
}

# Waits until each of the $3 files matching $1 holds a READY line. Gives up
# when no new stream connected for $2 seconds: prints STALLED and returns 1.
wait_connected() {
    pattern=$1 stall=$2 want=$3
    last=-1 since=$(date +%s)
    while :; do
        n=$(cat $pattern 2>/dev/null | grep -c '^READY' || true)
        [ "$n" -ge "$want" ] && return 0
        now=$(connected_sum "$pattern")
        if [ "$now" != "$last" ]; then last=$now since=$(date +%s); fi
        if [ $(($(date +%s) - since)) -ge "$stall" ]; then
            say "STALLED: $now streams connected, none more in the last $stall s"
            return 1
        fi
        sleep 0.5
    done
}

# When the last of the client processes whose logs match $1 was ready (its
# READY line's at=, milliseconds since the epoch), as seconds since the
# epoch; $2 (a `date +%s.%N` taken before) when no line has it. The clients
# stamp their own READY, so the figure does not depend on how often the
# script looks.
ready_at() {
    cat $1 2>/dev/null | sed -n 's/^READY .* at=\([0-9]*\).*/\1/p' |
        awk -v d="$2" '$1 > m {m = $1} END {if (m) printf "%.3f", m / 1000; else print d}'
}

# The CPU the client processes whose logs match $1 had used when each was
# ready (their READY lines' cpu=, ms), summed; empty when none says.
ready_cpu() {
    cat $1 2>/dev/null | sed -n 's/^READY .* cpu=\([0-9]*\).*/\1/p' | awk '{s += $1; n++} END {if (n) print s}'
}

# Like wait_connected after SIGUSR2 made the clients give up: waits for READY.
wait_ready() {
    pattern=$1 deadline=$(($(date +%s) + $2)) want=$3
    while :; do
        n=$(cat $pattern 2>/dev/null | grep -c '^READY' || true)
        [ "$n" -ge "$want" ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}

# After the last event: waits up to $1 seconds until every client process
# (pids after the pattern of their logs) printed COMPLETE (it has every event
# on every socket), then asks them all for their reports at once (SIGUSR1),
# so no process writes its report while the others still receive.
collect_clients() {
    secs=$1 pattern=$2; shift 2
    end=$(($(date +%s) + secs))
    while [ "$(cat $pattern 2>/dev/null | grep -c '^COMPLETE' || true)" -lt "$#" ] &&
        [ "$(date +%s)" -lt "$end" ]; do
        sleep 0.2
    done
    for p in "$@"; do kill -USR1 "$p" 2>/dev/null || true; done
    wait_pids 20 "$@"
}

# Waits for the given pids to exit, up to $1 seconds; then sends SIGUSR1
# (report now) and waits a little more.
wait_pids() {
    secs=$1; shift
    end=$(($(date +%s) + secs))
    for p in "$@"; do
        while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
    done
    for p in "$@"; do kill -USR1 "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# Writes VAR/htpasswd with alice, bob, carol, admin and user0..user<n-1> (password:
# the name), SHA1 form, before server.sh would create a smaller one, and the
# same users as VAR/users.dbm (Berkeley DB hash) for USERDB=dbm and
# VAR/users.sdbm (APR's SDBM) for USERDB=sdbm.
write_htpasswd() {
    node -e '
const c = require("crypto"), n = +process.argv[1];
const line = u => u + ":{SHA}" + c.createHash("sha1").update(u).digest("base64");
const users = ["alice", "bob", "carol", "admin"];
for (let i = 0; i < n; i++) users.push("user" + i);
process.stdout.write(users.map(line).join("\n") + "\n");
' "$1" >"$VAR/htpasswd"
    chmod 644 "$VAR/htpasswd"
    rm -f "$VAR/users.dbm" "$VAR/users.sdbm.dir" "$VAR/users.sdbm.pag"
    perl -MDB_File -MSDBM_File -MFcntl -e '
tie my %db, "DB_File", $ARGV[1], O_RDWR | O_CREAT, 0644, $DB_HASH or die "$ARGV[1]: $!";
tie my %sdbm, "SDBM_File", $ARGV[2], O_RDWR | O_CREAT, 0644 or die "$ARGV[2]: $!";
open my $in, "<", $ARGV[0] or die "$ARGV[0]: $!";
while (<$in>) { chomp; my ($u, $h) = split /:/, $_, 2; $db{$u} = $sdbm{$u} = $h; }
untie %db;
untie %sdbm;
' "$VAR/htpasswd" "$VAR/users.dbm" "$VAR/users.sdbm"
}
