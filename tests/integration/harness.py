"""Harness for the integration tests: private httpd servers running mod_rtboard.

Each server is started with scripts/server.sh on a fresh state directory
(VAR) under build/, a free port on 127.0.0.1 and several child processes,
and stopped by pid with `scripts/server.sh stop`.

Every server is started through a ServerPool (below), and when the pool
closes, each server's error.log must show no child process that died of a
signal (crash_lines); only a test that reads error.log itself opts out with
start(check_crash=False).

Fixtures (conftest.py)
  server          one server for the whole test run (CHILDREN=2, THREADS=25),
                  from a session-wide pool
  servers         a pool per test module: servers.start(HISTORY=64, CHILDREN=3)
                  starts another server with custom settings; private_module=True
                  runs it on the pool's copy of the module, prepare=f calls
                  f(server) on its state directory before the start. All are
                  stopped and checked after the module (or stopped earlier
                  with .stop())
  alice, bob, carol
                  Client objects (requests.Session with Basic auth) on `server`
  board           a fresh board on `server`: (board id, [list ids])

PostgreSQL
  servers.postgres()  the pool's private PostgreSQL (scripts/pg.sh: initdb under
                  build/, its own port and socket directory, stopped by pid when
                  the pool closes); .new_database() gives a fresh database's
                  conninfo, for servers.start(DBDRIVER="pgsql", DBDPARAMS=...).
                  With RTB_DB=pgsql in the environment every node the pools
                  start runs on a database of its own there, bus on
                  (make integration-pgsql). Postgres() alone: one more cluster.
  servers.start(ROLE="front", NODES="127.0.0.1:p1 127.0.0.1:p2")
                  the front Apache of conf/cluster/ over those nodes
  Server.kill9()  kill -9 of the whole server (its process group)

Helpers
  wait_until(cond, timeout, what)   poll a condition with a deadline
  Server.restart()                  stop + start on the same VAR (the
                                    database persists)
  Server.graceful()                 `scripts/server.sh graceful` and wait until
                                    the new generation answers
"""

import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVER_SH = os.path.join(ROOT, "scripts", "server.sh")
JSON = {"Content-Type": "application/json"}


# ---------------------------------------------------------------------------
# generic helpers


def wait_until(cond, timeout=10.0, what="condition", interval=0.02):
    """Calls cond() until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s (last value: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix="b"):
    """A fresh board id (a valid slug)."""
    unique.n += 1
    return "%s-%d-%d" % (prefix, os.getpid() % 100000, unique.n)


unique.n = int(time.time() * 1000) % 1000000


# ---------------------------------------------------------------------------
# the server


class Server:
    def __init__(self, **settings):
        # per-user caps off unless a test sets them: tests make many boards and
        # streams as a few users (test_limits.py tests the caps)
        self.settings = {"CHILDREN": "2", "THREADS": "25", "USERSTREAMS": "0", "BOARDRATE": "0"}
        self.settings.update({k: str(v) for k, v in settings.items()})
        build = os.path.join(ROOT, "build")
        os.makedirs(build, exist_ok=True)
        self.var = tempfile.mkdtemp(prefix="itest-", dir=build)
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.running = None  # never started yet
        self._clients = []

    # -- process control -------------------------------------------------

    def _env(self):
        env = dict(os.environ)
        env.update(self.settings)
        env["VAR"] = self.var
        env["PORT"] = str(self.port)
        return env

    def _sh(self, action, timeout=60):
        p = subprocess.run([SERVER_SH, action], env=self._env(), cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("scripts/server.sh %s failed (%d):\n%s\n--- error.log:\n%s"
                               % (action, p.returncode, p.stdout.decode(errors="replace"),
                                  self.error_log()[-4000:]))
        return p.stdout.decode(errors="replace")

    def start(self):
        try:
            self._sh("start")
        except RuntimeError as e:
            # the free port may have been taken since it was found: once more on another
            if self.running is not None or "in use" not in str(e):
                raise
            self.stop()
            self.port = free_port()
            self.base = "http://127.0.0.1:%d" % self.port
            self._sh("start")
        self.running = True
        return self

    def stop(self):
        for c in self._clients:
            c.close()
        if self.running or os.path.exists(self.pidfile):
            self._sh("stop")
        self.running = False

    def kill9(self):
        """kill -9 of the whole server: the parent and every child (its process group)."""
        pid = self.master_pid()
        assert pid, "not running"
        os.killpg(os.getpgid(pid), 9)
        wait_until(lambda: not pid_alive(pid) or _zombie(pid), 10, "httpd %d to die" % pid)
        self.running = False

    def restart(self):
        """Stop and start again on the same state directory and port."""
        old = self.master_pid()
        self.stop()
        assert old is None or not pid_alive(old), "the old httpd %s is still alive" % old
        self.start()
        assert self.master_pid() != old

    def graceful(self, timeout=20):
        """Graceful restart (SIGUSR1); returns once the new generation serves requests."""
        n = self.error_log().count("AH00489")  # "... resuming normal operations"
        self._sh("graceful")
        wait_until(lambda: self.error_log().count("AH00489") > n, timeout,
                   "the graceful restart to complete")
        wait_until(self._answers, timeout, "the server to answer after a graceful restart")
        for c in self._clients:  # drop keep-alive connections to the old generation
            c.close()

    def _answers(self):
        try:
            return requests.get(self.base + "/boards", auth=("alice", "alice"),
                                timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def cleanup(self):
        """Stops the server and removes its state directory (kept when
        RTB_KEEP_ITEST is set in the environment, for a look at the logs)."""
        self.stop()
        if not os.environ.get("RTB_KEEP_ITEST"):
            def removed():
                shutil.rmtree(self.var, ignore_errors=True)
                return not os.path.exists(self.var)
            wait_until(removed, 5, "%s to be removed" % self.var, interval=0.1)

    # -- state files -------------------------------------------------------

    @property
    def pidfile(self):
        return os.path.join(self.var, "httpd.pid")

    def child_pids(self):
        """The pids of the master's child processes, now."""
        pid = self.master_pid()
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]

    def master_pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def _read(self, name):
        try:
            with open(os.path.join(self.var, name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def error_log(self):
        return self._read("error.log")

    def access_log(self):
        return self._read("access.log")

    def access_lines(self, method=None, path_re=None):
        """Parsed access log lines: dicts of user, method, path, status, pid."""
        out = []
        rx = re.compile(r'^(\S+) (\S+) "(\S+) (\S+) [^"]*" (\d{3}) \S+ \d+ pid=(\d+)$')
        for line in self.access_log().splitlines():
            m = rx.match(line)
            if not m:
                continue
            d = {"user": m.group(2), "method": m.group(3), "path": m.group(4),
                 "status": int(m.group(5)), "pid": int(m.group(6))}
            if method and d["method"] != method:
                continue
            if path_re and not re.search(path_re, d["path"]):
                continue
            out.append(d)
        return out

    # -- clients -----------------------------------------------------------

    def url(self, path):
        return self.base + path

    def client(self, user="alice"):
        c = Client(self, user)
        self._clients.append(c)
        return c


# ---------------------------------------------------------------------------
# PostgreSQL


PG_SH = os.path.join(ROOT, "scripts", "pg.sh")


class Postgres:
    """A private PostgreSQL cluster (scripts/pg.sh): initdb under build/, its
    own port on 127.0.0.1 and its own socket directory, started and stopped by
    pid. Each server gets a fresh database of it (new_database)."""

    def __init__(self):
        build = os.path.join(ROOT, "build")
        os.makedirs(build, exist_ok=True)
        self.var = tempfile.mkdtemp(prefix="pg-", dir=build)
        self.port = free_port()
        self.ndb = 0

    def _sh(self, action, timeout=120):
        env = dict(os.environ, VAR=self.var, PGVAR=os.path.join(self.var, "pg"),
                   PGPORT=str(self.port), MIGRATE="0", PGFSYNC="off")
        p = subprocess.run([PG_SH, action], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("scripts/pg.sh %s failed (%d):\n%s" % (
                action, p.returncode, p.stdout.decode(errors="replace")))
        return p.stdout.decode(errors="replace")

    def start(self):
        self._sh("start")
        return self

    def stop(self):
        self._sh("stop")

    def pid(self):
        try:
            with open(os.path.join(self.var, "pg", "data", "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def conninfo(self, db="rtboard"):
        return "host=127.0.0.1 port=%d dbname=%s user=rtboard" % (self.port, db)

    def psql(self, sql, db="rtboard", user="rtboard"):
        p = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h",
                            "127.0.0.1", "-p", str(self.port), "-U", user, "-d", db, "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        assert p.returncode == 0, p.stdout.decode(errors="replace")
        return p.stdout.decode().strip()

    def new_database(self):
        """A fresh, empty database owned by rtboard (server.sh migrates it); its conninfo."""
        self.ndb += 1
        name = "t%d" % self.ndb
        self.psql("CREATE DATABASE %s OWNER rtboard" % name, db="postgres", user="postgres")
        return self.conninfo(name)

    def cleanup(self):
        try:
            self.stop()
        finally:
            if not os.environ.get("RTB_KEEP_ITEST"):
                shutil.rmtree(self.var, ignore_errors=True)


# a child process that died of a signal, as the parent logs it
CRASH = re.compile(r"Segmentation fault|exit signal (Aborted|Bus error|Illegal instruction|"
                   r"Floating point exception)")


def crash_lines(log):
    """The lines of an error log that say a child process crashed."""
    return [l for l in log.splitlines() if CRASH.search(l)]


class ServerPool:
    """The one way the tests start servers. start() starts a Server; close()
    stops them all and asserts that no child process crashed (crash_lines of
    each error.log); the state directory of a server that crashed is kept.

    module: the built module; start(private_module=True) runs a copy of it
    taken once per pool, which keeps the pool's servers alive while the
    shared build output is rewritten."""

    def __init__(self, module=None):
        self.module = module
        self.servers = []
        self.unchecked = set()
        self.moddir = None
        self.pg = None

    def postgres(self):
        """The pool's PostgreSQL, started on first use, stopped by close()."""
        if self.pg is None:
            self.pg = Postgres().start()
        return self.pg

    def private_module(self):
        """The pool's copy of the module, made on first use."""
        if self.moddir is None:
            self.moddir = tempfile.mkdtemp(prefix="mod-", dir=os.path.join(ROOT, "build"))
        copy = os.path.join(self.moddir, "mod_rtboard.so")
        if os.path.exists(copy):
            return copy

        def copied():  # a copy taken while the build rewrites the file is retaken
            before = os.stat(self.module)
            shutil.copyfile(self.module, copy)
            after = os.stat(self.module)
            return ((before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size)
                    == (after.st_mtime_ns, os.path.getsize(copy)))
        wait_until(copied, 10, "a stable copy of %s" % self.module, interval=0.5)
        return copy

    def start(self, check_crash=True, private_module=False, prepare=None, **settings):
        """A started Server with these settings (scripts/server.sh variables).

        check_crash=False only for a test that reads error.log itself;
        prepare(server), when given, runs on the fresh state directory before
        the start."""
        if private_module:
            settings.setdefault("MODULE", self.private_module())
        # RTB_DB=pgsql in the environment: every node on a database of its own
        # in the pool's PostgreSQL (make integration-pgsql)
        if (os.environ.get("RTB_DB") == "pgsql" and "DBDRIVER" not in settings
                and settings.get("ROLE", "node") == "node"):
            settings["DBDRIVER"] = "pgsql"
            settings["DBDPARAMS"] = self.postgres().new_database()
        s = Server(**settings)
        self.servers.append(s)
        if not check_crash:
            self.unchecked.add(s)
        if prepare:
            prepare(s)
        return s.start()

    def close(self):
        """Stops every server (in parallel), then checks their error logs."""
        errors = []

        def stop(s):
            try:
                s.stop()
            except Exception as e:  # reported below, after the others stopped
                errors.append("%s: %r" % (s.var, e))

        threads = [threading.Thread(target=stop, args=(s,)) for s in self.servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        crashed = []
        for s in self.servers:
            lines = crash_lines(s.error_log())
            if s not in self.unchecked and lines:
                crashed.append("%s (kept, %r): %s" % (s.var, s.settings, lines[:5]))
            else:
                s.cleanup()
        self.servers = []
        if self.moddir:
            shutil.rmtree(self.moddir, ignore_errors=True)
            self.moddir = None
        if self.pg is not None:
            self.pg.cleanup()
            self.pg = None
        assert not errors, errors
        assert not crashed, "a child process crashed:\n" + "\n".join(crashed)


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# ---------------------------------------------------------------------------
# the client


class Client:
    """A requests.Session bound to one server and one user, with API helpers."""

    def __init__(self, server, user="alice", password=None):
        self.server = server
        self.user = user
        self.password = password if password is not None else user
        self.s = requests.Session()
        if user:
            self.s.auth = (user, self.password)

    def close(self):
        self.s.close()

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 30)
        kw.setdefault("allow_redirects", False)
        return self.s.request(method, self.server.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, **self._body(body, kw))

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, **self._body(body, kw))

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    @staticmethod
    def _body(body, kw):
        if body is not None:
            kw["data"] = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers = dict(JSON)
            headers.update(kw.get("headers") or {})
            kw["headers"] = headers
        return kw

    def raw(self, method, path, body=None, headers=None):
        """Sends `path` byte for byte (no client-side normalisation of dot segments,
        slashes or escapes) on a fresh connection; returns a RawResponse."""
        h = {"Host": "127.0.0.1:%d" % self.server.port, "Connection": "close"}
        if self.user:
            token = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
            h["Authorization"] = "Basic " + token
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return RawResponse(method, path, r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    # -- API shortcuts that assert success -------------------------------

    def ok(self, r, status=200):
        assert r.status_code == status, "%s %s -> %d %s" % (
            r.request.method, r.request.url, r.status_code, r.text[:500])
        return r.json() if r.content else None

    def boards(self):
        """Every board GET /boards lists for this user, following "next" across pages."""
        out, after = [], None
        while True:
            params = {"limit": 1000}
            if after:
                params["after"] = after
            d = self.ok(self.get("/boards", params=params))
            out += d["data"]
            after = d.get("next")
            if not after:
                return out

    def create_board(self, board_id=None, name=None, lists=None):
        body = {"name": name or ("Board %s" % (board_id or "x"))}
        if board_id is not None:
            body["id"] = board_id
        if lists is not None:
            body["lists"] = lists
        return self.ok(self.post("/boards", body), 201)["data"]

    def snapshot(self, board):
        return self.ok(self.get("/boards/%s" % board))

    def last_event_id(self, board):
        return self.snapshot(board)["lastEventId"]

    def lists(self, board):
        return self.snapshot(board)["data"]["lists"]

    def tasks(self, board):
        return self.ok(self.get("/boards/%s/tasks" % board))["data"]

    def create_task(self, board, list_id, title="task", **extra):
        body = {"listId": list_id, "title": title}
        body.update(extra)
        return self.ok(self.post("/boards/%s/tasks" % board, body), 201)["data"]

    def events_since(self, board, since=0):
        """Every event after `since`, following pages until the board's last event."""
        out = []
        while True:
            d = self.ok(self.get("/boards/%s/updates" % board, params={"since": since}))
            assert not d.get("reset"), "unexpected reset: %r" % d
            if not d["data"]:
                return out
            out.extend(d["data"])
            since = d["data"][-1]["id"]


class RawResponse:
    """The parts of requests.Response that the checks use."""

    def __init__(self, method, path, status, headers, content):
        self.status_code = status
        self.headers = requests.structures.CaseInsensitiveDict(headers)
        self.content = content
        self.text = content.decode("utf-8", errors="replace")
        self.request = type("Req", (), {"method": method, "url": path})()

    def json(self):
        return json.loads(self.text)


# ---------------------------------------------------------------------------
# checks shared by the test modules


ERROR_KEYS = {"status", "code", "message", "field", "current"}


def assert_error(r, status, code=None, field=None):
    """Checks that `r` is a JSON error body of the contract's shape; returns error."""
    if isinstance(status, int):
        status = (status,)
    assert r.status_code in status, "expected %s, got %d: %s" % (status, r.status_code,
                                                                  r.text[:500])
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    e = body["error"]
    assert set(e) <= ERROR_KEYS, e
    assert e["status"] == r.status_code, e
    assert isinstance(e["code"], str) and e["code"], e
    assert isinstance(e["message"], str) and e["message"], e
    if code is not None:
        assert e["code"] == code, e
    if field is not None:
        assert e.get("field") == field, e
    else:
        assert "field" not in e or isinstance(e["field"], str), e
    return e


class Unchanged:
    """Context manager: asserts that nothing was written and nothing published.

    It records every board's lastEventId and name (as alice, who may read all
    of them) and the full snapshot of the named boards, and compares after.
    """

    def __init__(self, client, *boards):
        self.c = client
        self.boards = boards

    def _state(self):
        listing = self.c.boards()
        state = {"boards": sorted((b["id"], b["name"], b["lastEventId"]) for b in listing)}
        for b in self.boards:
            r = self.c.get("/boards/%s" % b)
            state[b] = (r.status_code, r.json() if r.status_code == 200 else None)
        return state

    def __enter__(self):
        self.before = self._state()
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            after = self._state()
            assert after == self.before, "state changed:\nbefore %r\nafter  %r" % (
                self.before, after)
        return False
