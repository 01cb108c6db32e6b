#!/bin/bash
# The real install path, on this machine's own Apache (Debian's apache2 package),
# exactly as README.md "Using it in a real Apache" tells an administrator:
#
#   make install; RTB_SEED=0 scripts/migrate.sh /var/lib/rtboard/rtboard.db;
#   chown -R www-data:www-data /var/lib/rtboard; htpasswd -B for two users;
#   a2enmod dbd rtboard; a site on 127.0.0.1:$PORT with a board under its own
#   <Location>; a2ensite; apache2ctl configtest; apache2ctl start
#
# then REST (a board, a task, the per-board Require), SSE (an event arrives),
# a long poll (answered by a change), a WebSocket (an event arrives) and the
# metrics, against it; then apache2ctl stop, a2dissite, a2dismod, make
# uninstall, and everything it added removed. The system must end as found:
# the files under Apache's configuration, module, state and run directories
# are compared before and after, and no apache2 process it started is left.
#
# Needs root and Debian, a stopped system Apache and free ports; otherwise it
# prints SKIPPED and why, and exits 0. Environment: RTB_SYSTEM_PORT (8090).
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${RTB_SYSTEM_PORT:-8090}
BOARD=finance
SITE=rtboard-local
passed=0
failed=0

skip() {
    echo "SKIPPED: the install test needs the system Apache: $*"
    exit 0
}
ok() {
    passed=$((passed + 1))
    echo "ok - $*"
}
fail() {
    failed=$((failed + 1))
    echo "FAILED - $*"
}
# Polls a command until it succeeds or `secs` pass (no bare sleeps).
wait_for() {
    local secs=$1 i=0
    shift
    while [ $i -lt $((secs * 10)) ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

[ "$(id -u)" = 0 ] || skip "not root (it installs into the system's Apache)"
[ -f /etc/debian_version ] || skip "not Debian (it drives Debian's apache2: a2enmod, apache2ctl)"
# one run at a time on this machine: several checkouts may run make test
mkdir -p /run/lock
exec 9>/run/lock/rtboard-system-test.lock
flock -n 9 || skip "another run of this test holds the system Apache"

"$here/scripts/deps.sh" run || {
    echo "FAILED - scripts/deps.sh run"
    exit 1
}
for c in apxs apache2ctl a2enmod a2dismod a2ensite a2dissite htpasswd curl ss flock; do
    command -v $c >/dev/null || skip "no $c"
done
/usr/bin/python3 -c "import websockets" 2>/dev/null ||
    skip "no Python websockets for /usr/bin/python3 (make test-deps installs python3-websockets)"

LIBEXECDIR=$(apxs -q LIBEXECDIR)
SYSCONFDIR=$(apxs -q SYSCONFDIR)
HTTPD=$(apxs -q SBINDIR)/$(apxs -q TARGET) # apache2ctl runs it as "$HTTPD -k start"
# where apache2ctl puts its pid file, run and lock directories, and logs
eval "$(set +u && . "$SYSCONFDIR/envvars" >/dev/null 2>&1 &&
    echo "RUN_DIR=$APACHE_RUN_DIR LOCK_DIR=$APACHE_LOCK_DIR PID_FILE=$APACHE_PID_FILE LOG_DIR=$APACHE_LOG_DIR")"
[ -n "${PID_FILE:-}" ] || skip "$SYSCONFDIR/envvars does not name APACHE_PID_FILE"
STORE=/var/lib/rtboard
HTPASSWD=$SYSCONFDIR/rtboard.htpasswd

# the system Apache must be stopped and mod_rtboard not installed: this test
# starts, stops and uninstalls, and must not take over what someone else runs
if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    skip "the system Apache is running (pid $(cat "$PID_FILE")); this test starts and stops it"
fi
pgrep -fx "$HTTPD -k start" >/dev/null && skip "the system Apache is running; this test starts and stops it"
for f in "$LIBEXECDIR/mod_rtboard.so" "$SYSCONFDIR/mods-available/rtboard.load" \
    "$SYSCONFDIR/mods-available/rtboard.conf" "$SYSCONFDIR/sites-available/$SITE.conf" \
    "$HTPASSWD" "$STORE"; do
    [ -e "$f" ] && skip "$f exists already (mod_rtboard is installed here; this test would replace it)"
done
# the test's port and every port the system's configuration listens on
ports="$PORT $(cat "$SYSCONFDIR/ports.conf" "$SYSCONFDIR"/sites-enabled/* 2>/dev/null |
    sed -n 's/^[[:space:]]*Listen[[:space:]]\+\([^[:space:]]*:\)\?\([0-9]\+\).*/\2/p' | sort -u)"
for p in $ports; do
    if ss -Hltn "sport = :$p" | grep -q .; then skip "port $p is in use"; fi
done

# What is there before: files (with checksums), links and directories.
WATCH="$SYSCONFDIR /var/lib/apache2 $LIBEXECDIR $STORE $RUN_DIR $LOCK_DIR"
snapshot() {
    local d
    for d in $WATCH; do
        if [ ! -e "$d" ]; then
            echo "absent $d"
            continue
        fi
        find "$d" -xdev \( -type l -printf 'link %p -> %l\n' \) -o \
            \( -type d -printf 'dir %p %m %u:%g\n' \) -o \( -type f -printf 'file %p %m %u:%g ' \
            -exec sh -c 'md5sum < "$1" | cut -d" " -f1' sh {} \; \)
    done | sort
}
work=$(mktemp -d /tmp/rtboard-system-XXXXXX)
snapshot >"$work/before"
ls "$SYSCONFDIR/mods-enabled" >"$work/mods-before"
ls "$SYSCONFDIR/sites-enabled" >"$work/sites-before"
errlog="$LOG_DIR/error.log"
errlog_size=$(stat -c %s "$errlog" 2>/dev/null || echo 0)
started_pid=""
run_dir_existed=0
[ -d "$RUN_DIR" ] && run_dir_existed=1
lock_dir_existed=0
[ -d "$LOCK_DIR" ] && lock_dir_existed=1

# Undoes everything, whatever step failed; then checks the system is as found.
cleanup() {
    local m
    set +e
    if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        apache2ctl stop
        wait_for 30 sh -c "! kill -0 $(cat "$PID_FILE" 2>/dev/null || echo 0)"
    fi
    if [ -n "$started_pid" ] && kill -0 "$started_pid" 2>/dev/null; then
        echo "the Apache started here (pid $started_pid) did not stop; killing it"
        kill -KILL "$started_pid"
    fi
    [ -e "$SYSCONFDIR/sites-enabled/$SITE.conf" ] && a2dissite -q "$SITE"
    rm -f "$SYSCONFDIR/sites-available/$SITE.conf"
    # modules enabled here (rtboard, and dbd when it was not before), first rtboard
    for m in rtboard $(ls "$SYSCONFDIR/mods-enabled" | sed -n 's/\.load$//p'); do
        [ -e "$SYSCONFDIR/mods-enabled/$m.load" ] || continue
        grep -qx "$m.load" "$work/mods-before" || a2dismod -q -f "$m"
    done
    make -s -C "$here" uninstall
    rm -rf "$STORE" "$HTPASSWD"
    [ $run_dir_existed = 1 ] || rm -rf "$RUN_DIR"
    [ $lock_dir_existed = 1 ] || rm -rf "$LOCK_DIR"
    # a2enmod/a2dismod leave markers of the administrator's choices in
    # /var/lib/apache2: those this test made go
    snapshot >"$work/after"
    diff "$work/before" "$work/after" | sed -n 's/^> \(file\|link\) \([^ ]*\).*/\2/p' |
        grep '^/var/lib/apache2/' | xargs -r rm -f
    diff "$work/before" "$work/after" | sed -n 's/^> dir \([^ ]*\).*/\1/p' |
        grep '^/var/lib/apache2/' | sort -r | xargs -r rmdir
    snapshot >"$work/after"
    if diff -u "$work/before" "$work/after" >"$work/diff"; then
        ok "the system is as found (files under $WATCH)"
    else
        fail "the system differs from before:"
        cat "$work/diff"
    fi
    if ls "$SYSCONFDIR/mods-enabled" | diff -q "$work/mods-before" - >/dev/null &&
        ls "$SYSCONFDIR/sites-enabled" | diff -q "$work/sites-before" - >/dev/null; then
        ok "the enabled modules and sites are those of before"
    else
        fail "the enabled modules or sites differ from before"
    fi
    if [ -n "$started_pid" ] && kill -0 "$started_pid" 2>/dev/null; then
        fail "the Apache started here (pid $started_pid) is still running"
    elif pgrep -fx "$HTTPD -k start" >/dev/null; then
        fail "processes of the system's Apache are still running: $(pgrep -fx "$HTTPD -k start" | tr '\n' ' ')"
    else
        ok "no apache2 process started here is left"
    fi
    rm -rf "$work"
    echo "system: $passed passed, $failed failed"
    [ $failed = 0 ]
}
trap 'cleanup; exit $?' EXIT
trap 'exit 1' INT TERM

step() { # runs a command; counts it; the test goes on only when it passed
    local what=$1
    shift
    if "$@" >"$work/out" 2>&1; then
        ok "$what"
    else
        fail "$what"
        cat "$work/out"
        exit 1
    fi
}

# -- what the README says, in its order --------------------------------------
step "make install (paths from apxs -q)" make -s -C "$here" install
[ -f "$LIBEXECDIR/mod_rtboard.so" ] && [ -f "$SYSCONFDIR/mods-available/rtboard.load" ] &&
    grep -q "^LoadModule rtboard_module $LIBEXECDIR/mod_rtboard.so$" \
        "$SYSCONFDIR/mods-available/rtboard.load" &&
    ok "the module in LIBEXECDIR, rtboard.load and rtboard.conf in mods-available" ||
    fail "make install did not put the module and its mods-available files in place"
step "a store (scripts/migrate.sh), owned by www-data" sh -c \
    "RTB_SEED=0 '$here/scripts/migrate.sh' '$STORE/rtboard.db' && chown -R www-data:www-data '$STORE'"
step "users in $HTPASSWD (bcrypt)" sh -c \
    "htpasswd -c -b -B '$HTPASSWD' alice alice-pw && htpasswd -b -B '$HTPASSWD' bob bob-pw"
step "a2enmod dbd rtboard" a2enmod -q dbd rtboard
cat >"$SYSCONFDIR/sites-available/$SITE.conf" <<EOF
# mod_rtboard on 127.0.0.1:$PORT; the API's settings are in mods-available/rtboard.conf
Listen 127.0.0.1:$PORT
<VirtualHost 127.0.0.1:$PORT>
    ServerName 127.0.0.1
    # A board only alice may read, over every transport
    <Location /boards/$BOARD>
        Require user alice
    </Location>
</VirtualHost>
EOF
step "a2ensite $SITE" a2ensite -q "$SITE"
step "apache2ctl configtest" apache2ctl configtest
step "apache2ctl start" apache2ctl start
base="http://127.0.0.1:$PORT"
if wait_for 20 curl -sf -o /dev/null -u alice:alice-pw "$base/boards" && wait_for 5 test -s "$PID_FILE"; then
    started_pid=$(cat "$PID_FILE")
    ok "the system Apache answers on 127.0.0.1:$PORT (pid $started_pid)"
else
    fail "the system Apache does not answer on 127.0.0.1:$PORT"
    tail -n 20 "$errlog"
    exit 1
fi
apache2ctl -M 2>/dev/null | grep -q "rtboard_module" && ok "apache2ctl -M lists rtboard_module" ||
    fail "apache2ctl -M does not list rtboard_module"

# -- REST ---------------------------------------------------------------------
A=(-s -u alice:alice-pw -H "Content-Type: application/json")
code=$(curl "${A[@]}" -o "$work/board.json" -w "%{http_code}" -X POST "$base/boards" \
    -d "{\"id\": \"$BOARD\", \"name\": \"Finance\"}")
list=$(sed -n 's/.*"lists":\[{"id":\([0-9]*\).*/\1/p' "$work/board.json")
[ "$code" = 201 ] && [ -n "$list" ] && ok "REST: POST /boards (201, list $list)" ||
    { fail "REST: POST /boards answered $code: $(cat "$work/board.json")"; exit 1; }
code=$(curl "${A[@]}" -o "$work/task.json" -w "%{http_code}" -X POST "$base/boards/$BOARD/tasks" \
    -d "{\"listId\": $list, \"title\": \"first\"}")
[ "$code" = 201 ] && grep -q '"title":"first"' "$work/task.json" &&
    ok "REST: POST /boards/$BOARD/tasks (201)" || fail "REST: a task answered $code"
# (401 unless AuthzSendForbiddenOnFailure On turns a refused known user into 403)
code=$(curl -s -o /dev/null -w "%{http_code}" -u bob:bob-pw "$base/boards/$BOARD")
code_all=$(curl -s -o /dev/null -w "%{http_code}" -u bob:bob-pw "$base/boards")
code_alice=$(curl -s -o /dev/null -w "%{http_code}" -u alice:alice-pw "$base/boards/$BOARD")
case "$code_alice $code_all $code" in
"200 200 401" | "200 200 403") ok "the board's <Location>: alice reads it, bob (who reads /boards) is refused ($code)" ;;
*) fail "the board's <Location>: alice $code_alice, bob on /boards $code_all, bob on the board $code" ;;
esac
code=$(curl -s -o /dev/null -w "%{http_code}" "$base/boards/$BOARD")
[ "$code" = 401 ] && ok "no credentials: 401" || fail "no credentials got $code"

# -- SSE: a stream gets the next task's event ---------------------------------
curl -s -N -u alice:alice-pw --max-time 20 "$base/boards/$BOARD/events" >"$work/sse" 2>&1 &
sse=$!
if wait_for 10 grep -q '"type":"connected"' "$work/sse"; then
    curl "${A[@]}" -o /dev/null -X POST "$base/boards/$BOARD/tasks" \
        -d "{\"listId\": $list, \"title\": \"over-sse\"}"
    wait_for 10 grep -q 'over-sse' "$work/sse" &&
        ok "SSE: the event of a new task arrives ($(grep -c '^id:' "$work/sse") ids)" ||
        fail "SSE: no event: $(cat "$work/sse")"
else
    fail "SSE: no connected event: $(cat "$work/sse")"
fi
kill "$sse" 2>/dev/null
wait "$sse" 2>/dev/null

# -- long polling: a waiting poll is answered by a change ---------------------
since=$(curl "${A[@]}" "$base/boards/$BOARD" | sed -n 's/.*"lastEventId":\([0-9]*\).*/\1/p')
curl "${A[@]}" --max-time 20 "$base/boards/$BOARD/poll?since=$since&timeout=15" >"$work/poll" &
poll=$!
longpolls() {
    curl -s "$base/rtboard-metrics" | grep -q '^rtboard_connections{transport="longpoll"} 1$'
}
if wait_for 10 longpolls; then
    curl "${A[@]}" -o /dev/null -X POST "$base/boards/$BOARD/tasks" \
        -d "{\"listId\": $list, \"title\": \"over-poll\"}"
    wait "$poll"
    grep -q 'over-poll' "$work/poll" && ok "long poll: answered with the new task's event" ||
        fail "long poll: $(cat "$work/poll")"
else
    fail "long poll: never seen waiting in /rtboard-metrics"
    kill "$poll" 2>/dev/null
fi

# -- WebSocket: join the board, then a change arrives -------------------------
if /usr/bin/python3 - "$PORT" "$BOARD" "$list" >"$work/ws" 2>&1 <<'EOF'; then
import asyncio, base64, http.client, json, sys
import websockets

port, board, list_id = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
auth = "Basic " + base64.b64encode(b"alice:alice-pw").decode()


async def main():
    async with websockets.connect("ws://127.0.0.1:%d/boards/%s/ws" % (port, board),
                                  extra_headers={"Authorization": auth},
                                  open_timeout=10, close_timeout=3) as ws:
        async def recv():
            return json.loads(await asyncio.wait_for(ws.recv(), 10))
        m = await recv()
        assert m["type"] == "connected", m
        while m["type"] != "presence":  # joined, any replay, then the presence list
            m = await recv()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/boards/%s/tasks" % board,
                  json.dumps({"listId": list_id, "title": "over-ws"}),
                  {"Authorization": auth, "Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 201, (r.status, r.read())
        while not (m.get("type") == "task_created" and m["data"]["task"]["title"] == "over-ws"):
            m = await recv()
        print("event", m["id"])

asyncio.run(main())
EOF
    ok "WebSocket: joined $BOARD, the new task's event arrived ($(cat "$work/ws"))"
else
    fail "WebSocket: $(cat "$work/ws")"
fi

# -- metrics and the error log ------------------------------------------------
curl -s "$base/rtboard-metrics" >"$work/metrics"
published=$(sed -n 's/^rtboard_events_published_total \([0-9]*\)$/\1/p' "$work/metrics")
[ "${published:-0}" -ge 4 ] && ok "/rtboard-metrics (Require local): $published events published" ||
    fail "/rtboard-metrics: $(head -c 300 "$work/metrics")"
tail -c +$((errlog_size + 1)) "$errlog" 2>/dev/null >"$work/errors"
if grep -Eq "Segmentation fault|exit signal|\[rtboard:(crit|alert|emerg)\]" "$work/errors"; then
    fail "the error log shows a crash:"
    cat "$work/errors"
else
    ok "no crash in $errlog"
fi

# -- and back: stop, disable, uninstall (cleanup checks the rest) -------------
step "apache2ctl stop" apache2ctl stop
wait_for 30 sh -c "! kill -0 $started_pid && ! pgrep -fx '$HTTPD -k start'" &&
    ok "the system Apache stopped (pid $started_pid and its children)" ||
    fail "the system Apache (pid $started_pid) did not stop in 30 s"
step "a2dissite $SITE" a2dissite -q "$SITE"
step "a2dismod rtboard" a2dismod -q rtboard
grep -qx "dbd.load" "$work/mods-before" || step "a2dismod dbd (not enabled before)" a2dismod -q dbd
step "make uninstall" make -s -C "$here" uninstall
[ ! -e "$LIBEXECDIR/mod_rtboard.so" ] && [ ! -e "$SYSCONFDIR/mods-available/rtboard.load" ] &&
    [ ! -e "$SYSCONFDIR/mods-available/rtboard.conf" ] &&
    ok "make uninstall removed the module and its mods-available files" ||
    fail "make uninstall left files behind"
exit 0
