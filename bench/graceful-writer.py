"""The writer and the clock of bench/graceful (run by it; not on its own).

WRITERS threads post tasks to one fresh board, each over its own keep-alive
connection, one request at a time, each with an Idempotency-Key. A request
that fails (connection closed or refused, timeout, 503) is sent again at
once, with the same key, on a new connection, until it gets its answer.
Meanwhile the main thread runs `scripts/server.sh graceful` RESTARTS times,
INTERVAL seconds apart, and waits after each until the parent logged the
new generation (AH00489). Afterwards it reads every event of the board and
prints, for each restart, the pause: the longest time between two commits
from 1 s before the parent received SIGUSR1 (AH00493 in error.log) to
INTERVAL - 0.5 s after it, i.e. from the last commit of the old children to
the first of the new ones (an old child may still commit a request it was
serving just after the signal). Also the time the parent took to read the
configuration again (AH00493 to AH00489) and the longest gap while the
graceful command itself ran (it migrates the database first). Commit times
are the events' `at` (server clock, milliseconds), the others the error
log's (microseconds).
"""

import argparse
import base64
import calendar
import http.client
import json
import os
import re
import statistics
import subprocess
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--var", required=True)
ap.add_argument("--root", required=True)
ap.add_argument("--restarts", type=int, default=5)
ap.add_argument("--writers", type=int, default=2)
ap.add_argument("--interval", type=float, default=3.0)
opt = ap.parse_args()

AUTH = "Basic " + base64.b64encode(b"alice:alice").decode()
HEADERS = {"Authorization": AUTH, "Content-Type": "application/json"}


def call(conn, method, path, body=None, headers=None):
    h = dict(HEADERS)
    h.update(headers or {})
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = conn.getresponse()
    return r.status, r.read()


def connect():
    return http.client.HTTPConnection("127.0.0.1", opt.port, timeout=10)


setup = connect()
board = "graceful-%d" % (time.time() * 1000)
status, body = call(setup, "POST", "/boards", {"id": board, "name": "graceful restarts"})
assert status == 201, (status, body)
list_id = json.loads(body)["data"]["lists"][0]["id"]
setup.close()  # an idle keep-alive connection left open holds its old child for a while

stop = threading.Event()
stats = {"ok": 0, "conn_errors": 0, "busy": 0, "other": 0}
stats_lock = threading.Lock()


def count(key):
    with stats_lock:
        stats[key] += 1


def writer(w):
    conn = connect()
    n = 0
    while not stop.is_set():
        key = "w%d-%d" % (w, n)
        body = {"listId": list_id, "title": key}
        while True:  # the same request until it is answered
            try:
                status, _ = call(conn, "POST", "/boards/%s/tasks" % board, body,
                                 {"Idempotency-Key": key})
            except (OSError, http.client.HTTPException):
                count("conn_errors")
                conn.close()
                conn = connect()
                if stop.is_set():
                    return
                continue
            if status == 201:
                count("ok")
                break
            count("busy" if status == 503 else "other")
            if stop.is_set():
                return
        n += 1


def ah_count(code):
    try:
        with open(os.path.join(opt.var, "error.log"), errors="replace") as f:
            return f.read().count(code)
    except OSError:
        return 0


threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(opt.writers)]
for t in threads:
    t.start()
time.sleep(1.0)  # the writers get going before the first restart
env = dict(os.environ, VAR=opt.var, PORT=str(opt.port))
commands = []
for i in range(opt.restarts):
    before = ah_count("AH00489")
    t0 = time.time()
    subprocess.run([os.path.join(opt.root, "scripts", "server.sh"), "graceful"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    t1 = time.time()
    commands.append((t0, t1))
    deadline = time.monotonic() + 20
    while ah_count("AH00489") <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(max(0.0, t0 + opt.interval - time.time()))
stop.set()
for t in threads:
    t.join(30)

# every commit time of the board, from its events
reader = connect()
commits, since = [], 0
while True:
    status, body = call(reader, "GET", "/boards/%s/updates?since=%d" % (board, since))
    assert status == 200, (status, body)
    d = json.loads(body)
    assert not d.get("reset"), d
    if not d["data"]:
        break
    for e in d["data"]:
        at = e["at"]  # 2026-12-04T17:13:07.668Z
        commits.append(calendar.timegm(time.strptime(at[:19], "%Y-%m-%dT%H:%M:%S"))
                       + int(at[20:23]) / 1000.0)
    since = d["data"][-1]["id"]
commits.sort()

# the parent's SIGUSR1 (AH00493) and "resuming normal operations" (AH00489)
# times, and how long it waited for the old children (RTB0052, at LogLevel
# rtboard:debug), from error.log (local time)
rx = re.compile(r"^\[\w+ (\w+ \d+ [\d:]+)\.(\d+) (\d+)\].*(AH00493|AH00489|RTB0052: \d+)")
marks = []
with open(os.path.join(opt.var, "error.log"), errors="replace") as f:
    for line in f:
        m = rx.match(line)
        if m:
            t = time.mktime(time.strptime("%s %s" % (m.group(1), m.group(3)), "%b %d %H:%M:%S %Y"))
            marks.append((t + int(m.group(2)) / 1e6, m.group(4)))
restarts = []
for t, what in marks:
    if what == "AH00493":
        restarts.append({"sig": t, "reload": float("nan"), "waited": "-"})
    elif restarts and what == "AH00489":
        restarts[-1]["reload"] = (t - restarts[-1]["sig"]) * 1000
    elif restarts:
        restarts[-1]["waited"] = what.split()[-1]
restarts = restarts[-opt.restarts:]

print("writers: %d; commits: %d (%d tasks answered 201), connection errors retried: %d, "
      "503 retried: %d, other answers: %d" % (opt.writers, len(commits), stats["ok"],
                                             stats["conn_errors"], stats["busy"], stats["other"]))
print("pause: the longest time without a commit from 1 s before SIGUSR1 to %.1f s after it, "
      "and where it starts" % (opt.interval - 0.5))
print("restart  pause (ms)  starts at  reload (ms)  waited for old children (ms)  "
      "longest gap in the graceful command (ms)")
pauses = []
for i, ((t0, t1), rs) in enumerate(zip(commands, restarts), 1):
    ts = rs["sig"]
    around = [c for c in commits if ts - 1 <= c <= ts + opt.interval - 0.5]
    pause, at = max(((b - a, a) for a, b in zip(around, around[1:])), default=(float("nan"), ts))
    pauses.append(pause * 1000)
    during = [c for c in commits if t0 <= c <= min(t1, ts)]
    cmd_gap = max((b - a for a, b in zip(during, during[1:])), default=float("nan")) * 1000
    print("%7d  %10.0f  %+8.3f s  %11.0f  %28s  %s" % (i, pause * 1000, at - ts, rs["reload"],
                                                     rs["waited"], "%.0f" % cmd_gap))
print("median pause: %.0f ms (of %d restarts)" % (statistics.median(pauses), len(pauses)))
