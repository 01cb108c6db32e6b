"""The database unavailable: every route answers the contract's JSON error
(`{"error": {"status", "code", "message"}}`, 503 or 500), never Apache's HTML
page, and a write refused meanwhile has changed nothing once the database is
back.

Two ways to take the database away, both real failures for the children
(which run as www-data, or as the test user when not root):
  locked     a connection of this process holds `BEGIN EXCLUSIVE` on the file:
             reads go on (WAL), writes cannot commit
  broken     the server is restarted (without migration, MIGRATE=0) with the
             file and its -wal/-shm moved away and, in their place, a directory
             (`directory`) or bytes that are not a database (`garbage`)
"""

import contextlib
import os
import shutil
import sqlite3

import pytest

from harness import Unchanged, assert_error, unique
from test_sse import SSEStream

DB_ERROR = (500, 503)


def assert_db_error(r):
    """The contract's JSON error with 503 or 500 (said whole when it is not)."""
    ctype = r.headers.get("Content-Type", "")
    assert r.status_code in DB_ERROR and ctype.startswith("application/json"), (
        "expected a JSON error with status 503 or 500, got %d %s: %s"
        % (r.status_code, ctype, r.text[:200]))
    assert_error(r, DB_ERROR)


@pytest.fixture(scope="module")
def srv(servers):
    return servers.start(CHILDREN=2)


@pytest.fixture(scope="module")
def alice(srv):
    return srv.client("alice")


@pytest.fixture(scope="module")
def data(alice):
    """A board with three tasks: (board, [list ids], task id)."""
    b = alice.create_board(unique("dbe"))
    lists = [l["id"] for l in b["lists"]]
    tasks = [alice.create_task(b["id"], lists[i], "t%d" % i) for i in range(3)]
    return b["id"], lists, tasks[0]["id"]


def db_path(server):
    return os.path.join(server.var, "db", "rtboard.db")


@contextlib.contextmanager
def locked(server):
    """Holds the database's write lock (BEGIN EXCLUSIVE) until the block ends."""
    conn = sqlite3.connect(db_path(server), timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# the routes: each f(client, board, lists, task) -> a response


def _sse_resume(c, board, lists, task):
    """An SSE resume from id 1 (after a restart the shared ring is empty, so the
    replay must come from the database); an error answer is returned whole."""
    with SSEStream(c.server, "/boards/%s/events" % board, headers={"Last-Event-ID": "1"}) as s:
        s.wait(lambda s: s.http.complete or s.eof or s.blocks, 10,
               "an error answer or the stream's first block")
        return s.response()


READS = {
    "get-board": lambda c, b, l, t: c.get("/boards/" + b),
    "list-boards": lambda c, b, l, t: c.get("/boards"),
    "list-tasks": lambda c, b, l, t: c.get("/boards/%s/tasks" % b),
    "get-task": lambda c, b, l, t: c.get("/boards/%s/tasks/%d" % (b, t)),
    "updates": lambda c, b, l, t: c.get("/boards/%s/updates" % b, params={"since": 1}),
    "poll": lambda c, b, l, t: c.get("/boards/%s/poll" % b, params={"since": 1, "timeout": 1}),
    "sse-resume": _sse_resume,
    "ws-ticket": lambda c, b, l, t: c.post("/boards/%s/ws-ticket" % b),
}

WRITES = {
    "post-board": lambda c, b, l, t: c.post("/boards", {"id": unique("dbw"), "name": "new"}),
    "patch-board": lambda c, b, l, t: c.patch("/boards/" + b, {"name": "renamed"}),
    "post-task": lambda c, b, l, t: c.post("/boards/%s/tasks" % b, {"listId": l[0],
                                                                   "title": "new"}),
    "patch-task": lambda c, b, l, t: c.patch("/boards/%s/tasks/%d" % (b, t), {"title": "x"}),
    "move-task": lambda c, b, l, t: c.patch("/boards/%s/tasks/%d/move" % (b, t),
                                            {"listId": l[2], "position": 0}),
    "delete-task": lambda c, b, l, t: c.delete("/boards/%s/tasks/%d" % (b, t)),
}


# ---------------------------------------------------------------------------
# locked


@pytest.mark.parametrize("route", list(WRITES))
def test_write_while_locked_is_a_json_error_and_changes_nothing(srv, alice, data, route):
    board, lists, task = data
    with Unchanged(alice, board):
        with locked(srv):
            assert_db_error(WRITES[route](alice, board, lists, task))


# ---------------------------------------------------------------------------
# broken


def _break(server, how):
    db = db_path(server)
    aside = os.path.join(server.var, "db-aside")
    os.makedirs(aside)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.rename(db + suffix, os.path.join(aside, "rtboard.db" + suffix))
    if how == "directory":
        os.makedirs(db)
    else:
        with open(db, "wb") as f:
            f.write(b"this is not an SQLite database\n" * 512)


def _repair(server):
    db = db_path(server)
    aside = os.path.join(server.var, "db-aside")
    if os.path.isdir(db):
        shutil.rmtree(db)
    elif os.path.exists(db):
        os.remove(db)
    for name in os.listdir(aside):
        os.rename(os.path.join(aside, name), os.path.join(server.var, "db", name))
    os.rmdir(aside)


@pytest.fixture(scope="module", params=["directory", "garbage"])
def broken(request, srv, alice, data):
    """The server restarted on a broken database; afterwards restarted on the
    real one, which must hold what it held before."""
    board = data[0]
    before = alice.snapshot(board)
    srv.stop()
    _break(srv, request.param)
    srv.settings["MIGRATE"] = "0"
    try:
        srv.start()
        yield request.param
    finally:
        srv.stop()
        del srv.settings["MIGRATE"]
        _repair(srv)
        srv.start()
    assert alice.snapshot(board) == before


@pytest.mark.parametrize("route", list(READS) + list(WRITES))
def test_route_on_a_broken_database_is_a_json_error(srv, alice, data, broken, route):
    board, lists, task = data
    assert_db_error(dict(READS, **WRITES)[route](alice, board, lists, task))
