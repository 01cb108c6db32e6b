"""WebSocket collaboration across child processes: presence, typing, cursors and
board events between users served by different children; a child killed under a
user; several tabs; resume by event id (and reset past the history); tickets;
origin and board authorization; server pings; graceful restart.

Clients are Python `websockets` (a strict RFC 6455 client) and, where a client
must misbehave, the raw client of test_ws_protocol.
"""

import asyncio
import json
import os
import re
import select
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import websockets

from harness import crash_lines, unique, wait_until
from test_ws_protocol import OP_CLOSE, OP_PING, OP_PONG, RawWS, basic, open_ws  # noqa: F401

HISTORY = 64
WSPING = 2


def run(coro):
    return asyncio.run(coro)


# ---------------------------------------------------------------------------
# servers and boards


# a user id longer than 64 bytes (say an X.509 subject DN or a long e-mail address)
LONG_USER = "user-with-a-long-id-" + "x" * 60 + "@example.org"


def write_htpasswd(server):
    """The demo users plus LONG_USER (scripts/server.sh keeps an existing file)."""
    path = os.path.join(server.var, "htpasswd")
    for i, u in enumerate(("alice", "bob", "carol", LONG_USER)):
        p = subprocess.run(["htpasswd", "-b", "-s"] + (["-c"] if i == 0 else []) + [path, u, u],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert p.returncode == 0, p.stdout


@pytest.fixture(scope="module")
def srv(servers):
    return servers.start(private_module=True, CHILDREN=2, WSPING=WSPING, HISTORY=HISTORY,
                         prepare=write_htpasswd)


@pytest.fixture(scope="module")
def rest(srv):
    return {u: srv.client(u) for u in ("alice", "bob", "carol")}


@pytest.fixture(scope="module")
def private(srv, rest):
    """alice's board `private` (only alice may read it, by configuration)."""
    r = rest["alice"].post("/boards", {"id": "private", "name": "Private"})
    assert r.status_code in (201, 409), r.text  # the seeded demo data may have it
    rest["alice"].ok(rest["alice"].get("/boards/private"))
    assert rest["bob"].get("/boards/private").status_code in (401, 403)
    return "private"


@pytest.fixture
def board(rest):
    b = rest["alice"].create_board(unique("ws"))
    return b["id"], [l["id"] for l in b["lists"]]


# ---------------------------------------------------------------------------
# which child holds a connection


def _children(server):
    return server.child_pids()


def holder_pid(server, client_port):
    """The child process holding the server side of the TCP connection whose client
    end is 127.0.0.1:client_port, or None (found through /proc/net/tcp inodes)."""
    local, remote = "0100007F:%04X" % server.port, "0100007F:%04X" % client_port
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if p[1] == local and p[2] == remote and p[9] != "0":
                inode = p[9]
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for child in _children(server):
        try:
            for fd in os.listdir("/proc/%d/fd" % child):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (child, fd)) == target:
                        return child
                except OSError:
                    pass
        except OSError:
            pass
    return None


def wait_released(server, client_port, timeout=5):
    """Waits until no child holds the connection any more (the server side is
    closed, after the connection's cleanups have run)."""
    wait_until(lambda: holder_pid(server, client_port) is None, timeout,
               "the server to release the connection from port %d" % client_port)


# ---------------------------------------------------------------------------
# client helpers (websockets)


def ws_url(server, path):
    return "ws://127.0.0.1:%d%s" % (server.port, path)


async def connect(server, path="/ws", user="alice", hello=True, **kw):
    headers = {"Authorization": basic(user)} if user else {}
    ws = await websockets.connect(ws_url(server, path), extra_headers=headers, open_timeout=10,
                                  close_timeout=3, ping_interval=None, **kw)
    if hello:
        m = await recv(ws)
        assert m == {"type": "connected", "user": {"userId": user, "name": user}}, m
    return ws


async def recv(ws, timeout=5.0):
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), timeout))
    except websockets.ConnectionClosed as e:
        raise AssertionError("the socket closed (%s %r) while a message was expected"
                             % (e.code, e.reason))


async def recv_until(ws, pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    out = []
    while True:
        m = await recv(ws, max(0.01, deadline - time.monotonic()))
        out.append(m)
        if pred(m):
            return out


async def expect_close(ws, timeout=5.0):
    """Waits for the server to close; returns (code, messages received before)."""
    before = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            before.append(json.loads(await asyncio.wait_for(
                ws.recv(), max(0.01, deadline - time.monotonic()))))
    except websockets.ConnectionClosed as e:
        return e.code, before


class View:
    """A client's presence of one board: a `presence` snapshot, then the
    `presence_diff` messages whose base is the version it holds."""

    def __init__(self, pres):
        self.reset(pres)

    def reset(self, pres):
        assert pres["type"] == "presence", pres
        self.version, self.count = pres["version"], pres["count"]
        self.users = [u["userId"] for u in pres["users"]]
        for u in pres["users"]:
            assert u == {"userId": u["userId"], "name": u["userId"]}, pres

    def apply(self, m):
        if m["type"] == "presence":
            return self.reset(m)
        assert m["type"] == "presence_diff", m
        if m["version"] <= self.version:
            return  # already in the snapshot
        assert m["base"] == self.version, "a gap: holding %d, got %r" % (self.version, m)
        gone = set(m["left"])
        self.users = [u for u in self.users if u not in gone] + [u["userId"] for u in m["joined"]]
        assert len(self.users) == len(set(self.users)), "a user listed twice: %r" % m
        self.count, self.version = m["count"], m["version"]


VIEWS = {}


async def join(ws, board, last=None):
    """Joins by message; returns (joined, [replayed messages], presence)."""
    msg = {"type": "join", "boardId": board}
    if last is not None:
        msg["lastEventId"] = last
    await ws.send(json.dumps(msg))
    got = await recv_until(ws, lambda m: m["type"] == "presence" or m["type"] == "error")
    assert got[0]["type"] == "joined", got
    assert got[-1]["type"] == "presence" and got[-1]["boardId"] == board, got
    VIEWS[(ws, board)] = View(got[-1])
    return got[0], got[1:-1], got[-1]


async def after_open(ws, board):
    """The messages of /boards/:b/ws after `connected`: (joined, replayed, presence)."""
    got = await recv_until(ws, lambda m: m["type"] == "presence")
    assert got[0]["type"] == "joined" and got[0]["boardId"] == board, got
    VIEWS[(ws, board)] = View(got[-1])
    return got[0], got[1:-1], got[-1]


async def settle(ws, board, expected, timeout=5.0, others_ok=False):
    """Reads presence news until the socket's view of `board` is exactly the set
    `expected` (count included); returns what else arrived meanwhile (nothing,
    unless others_ok)."""
    view = VIEWS[(ws, board)]
    deadline = time.monotonic() + timeout
    others = []
    while set(view.users) != set(expected) or view.count != len(expected):
        left = deadline - time.monotonic()
        assert left > 0, "presence of %s is %r (count %d), not %r; also got %r" % (
            board, view.users, view.count, sorted(expected), others)
        m = await recv(ws, left)
        if m["type"] in ("presence", "presence_diff") and m["boardId"] == board:
            view.apply(m)
        else:
            others.append(m)
    assert others_ok or not others, others
    return others


EPHEMERAL = {"presence", "presence_diff", "user_typing", "user_stopped_typing", "cursor"}


async def next_event(ws, timeout=5.0):
    """The next board event (a message with an id, or a reset), passing over ephemeral
    messages: a socket opened on /boards/:b/ws can get stale or repeated ones right
    after its presence (see test_board_url_socket_gets_each_ephemeral_message_once)."""
    while True:
        m = await recv(ws, timeout)
        if "id" in m or m["type"] == "reset":
            return m
        assert m["type"] in EPHEMERAL, m


def users(presence):
    ids = [u["userId"] for u in presence["users"]]
    assert len(ids) == len(set(ids)), "a user listed twice: %r" % presence
    for u in presence["users"]:
        assert u == {"userId": u["userId"], "name": u["userId"]}, presence
    return set(ids)


async def alice_and_bob(srv, bid):
    """alice, then bob, joined to bid by message; both see both present."""
    alice = await connect(srv)  # joins by message: see next_event
    await join(alice, bid)
    bob = await connect(srv, user="bob")
    await join(bob, bid)
    await settle(alice, bid, {"alice", "bob"})
    await settle(bob, bid, {"alice", "bob"})
    return alice, bob


async def connect_apart(server, avoid_pid, path="/ws", user="bob", tries=60):
    """Connects until the socket lands in a child other than avoid_pid."""
    extra = []
    try:
        for _ in range(tries):
            ws = await connect(server, path, user)
            pid = holder_pid(server, ws.local_address[1])
            assert pid in _children(server), pid
            if pid != avoid_pid:
                return ws, pid
            extra.append(ws)
        raise AssertionError("%d connections all landed in child %d" % (tries, avoid_pid))
    finally:
        await asyncio.gather(*(w.close() for w in extra))


# ---------------------------------------------------------------------------
# two users, two children


def test_two_users_in_different_children_share_presence_typing_cursors_and_events(
        srv, rest, board):
    bid, lists = board

    async def scenario():
        alice = await connect(srv)
        pid_a = holder_pid(srv, alice.local_address[1])
        assert pid_a in _children(srv)
        bob, pid_b = await connect_apart(srv, pid_a)
        assert pid_a != pid_b

        joined, replay, pres = await join(alice, bid)
        assert joined == {"type": "joined", "boardId": bid, "lastEventId": 0}
        # the first message is the board's state: nobody yet, or alice once her
        # arrival's diff went out
        assert replay == [] and users(pres) <= {"alice"}
        assert pres["count"] == len(pres["users"]) and pres["complete"] is True, pres
        await settle(alice, bid, {"alice"})

        joined, replay, pres = await join(bob, bid)
        assert joined["lastEventId"] == 0 and replay == []
        assert users(pres) in ({"alice"}, {"alice", "bob"}), pres
        # bob's arrival reaches alice, in the other child, as a diff
        await settle(alice, bid, {"alice", "bob"})
        await settle(bob, bid, {"alice", "bob"})

        # a task created over REST reaches both children with its id
        task = rest["carol"].create_task(bid, lists[0], "shared")
        ea, eb = await recv(alice), await recv(bob)
        assert ea == eb, (ea, eb)
        assert ea["type"] == "task_created" and ea["id"] == 1 and ea["boardId"] == bid
        assert ea["actor"] == "carol" and ea["data"]["task"]["id"] == task["id"]
        assert ea == rest["alice"].events_since(bid, 0)[0]

        # typing, both ways of ending it
        await bob.send(json.dumps({"type": "typing", "boardId": bid, "taskId": task["id"]}))
        assert await recv(alice) == {"type": "user_typing", "boardId": bid,
                                     "taskId": task["id"], "userId": "bob", "name": "bob"}
        await bob.send(json.dumps({"type": "stop_typing", "boardId": bid, "taskId": task["id"]}))
        assert await recv(alice) == {"type": "user_stopped_typing", "boardId": bid,
                                     "taskId": task["id"], "userId": "bob", "name": "bob"}

        # cursors
        await alice.send(json.dumps({"type": "cursor", "boardId": bid, "x": 10, "y": 20.5}))
        c = await recv(bob)
        assert c["type"] == "cursor" and c["userId"] == "alice" and c["boardId"] == bid, c
        assert (c["x"], c["y"]) == (10, 20.5), c

        # a second event: the next thing each sees, so nobody got their own typing,
        # cursor or arrival echoed, and nothing else came in between
        rest["alice"].patch("/boards/%s/tasks/%d" % (bid, task["id"]), {"title": "renamed"})
        ea, eb = await recv(alice), await recv(bob)
        assert ea == eb and ea["type"] == "task_updated" and ea["id"] == 2, (ea, eb)

        # bob leaves the board but keeps the socket, on another board: alice sees
        # him go, and he gets nothing more of the board he left
        other = rest["alice"].create_board(unique("ws2"))
        await bob.send(json.dumps({"type": "leave", "boardId": bid}))
        assert await recv(bob) == {"type": "left", "boardId": bid}
        await settle(alice, bid, {"alice"})
        # the same answer over REST, for clients without a WebSocket
        p = rest["carol"].get("/boards/%s/presence" % bid).json()
        assert (p["type"], p["count"], p["complete"]) == ("presence", 1, True), p
        assert p["users"] == [{"userId": "alice", "name": "alice"}], p
        assert p["version"] == VIEWS[(alice, bid)].version, p
        await join(bob, other["id"])
        rest["carol"].create_task(bid, lists[1], "after leave")
        assert (await recv(alice))["id"] == 3
        rest["carol"].create_task(other["id"], other["lists"][0]["id"], "elsewhere")
        m = await recv(bob)
        assert (m["boardId"], m["id"]) == (other["id"], 1), "bob got %r after leaving" % m
        await bob.close()
        await alice.close()
        return pid_a, pid_b

    pid_a, pid_b = run(scenario())
    # the access log agrees: each socket was served (and logged) by the child found
    def logged():
        by_user = {}
        for d in srv.access_lines("GET", r"^/ws$"):
            assert d["status"] == 101, d
            by_user.setdefault(d["user"], set()).add(d["pid"])
        return by_user

    wait_until(lambda: pid_a in logged().get("alice", ()) and pid_b in logged().get("bob", ()),
               5, "access log lines of alice's socket in %d and bob's in %d" % (pid_a, pid_b))


def test_typing_expires_5_seconds_after_the_last_refresh(srv, board):
    bid, _ = board

    async def scenario():
        alice, bob = await alice_and_bob(srv, bid)
        typing = {"type": "typing", "boardId": bid, "taskId": 7}
        await bob.send(json.dumps(typing))
        t0 = time.monotonic()
        assert (await recv(alice))["type"] == "user_typing"
        await asyncio.sleep(2)
        await bob.send(json.dumps(typing))  # a refresh, within the second rule: maybe sent
        t1 = time.monotonic()
        m = await recv(alice, 9)
        if m["type"] == "user_typing":
            m = await recv(alice, 9)
        t2 = time.monotonic()
        assert m == {"type": "user_stopped_typing", "boardId": bid, "taskId": 7,
                     "userId": "bob", "name": "bob"}, m
        assert t2 - t1 >= 4.5, "typing ended %.1f s after the refresh" % (t2 - t1)
        assert t2 - t1 <= 7.0, "typing ended %.1f s after the refresh" % (t2 - t1)
        assert t2 - t0 >= 6.5
        await bob.close()
        await alice.close()

    run(scenario())


def test_cursors_are_rate_limited_and_keep_the_latest_position(srv, board):
    bid, _ = board

    async def scenario():
        alice, bob = await alice_and_bob(srv, bid)
        for x in range(40):
            await alice.send(json.dumps({"type": "cursor", "boardId": bid, "x": x, "y": -x}))
        got = await recv_until(bob, lambda m: m.get("x") == 39, 5)
        assert all(m["type"] == "cursor" and m["userId"] == "alice" for m in got), got
        assert got[-1] == {"type": "cursor", "boardId": bid, "userId": "alice", "name": "alice",
                           "x": 39, "y": -39}
        assert len(got) <= 5, "%d cursor messages for one burst: not rate-limited" % len(got)
        xs = [m["x"] for m in got]
        assert xs == sorted(xs), xs
        await bob.close()
        await alice.close()

    run(scenario())


def test_board_deleted_reaches_every_child(srv, rest, board):
    bid, lists = board

    async def scenario():
        alice = await connect(srv)  # joins by message: see next_event
        pid_a = holder_pid(srv, alice.local_address[1])
        await join(alice, bid)
        bob, _ = await connect_apart(srv, pid_a)
        await join(bob, bid)
        await settle(alice, bid, {"alice", "bob"})
        await settle(bob, bid, {"alice", "bob"})
        rest["bob"].create_task(bid, lists[0], "doomed")
        assert (await recv(alice))["id"] == (await recv(bob))["id"] == 1
        assert rest["alice"].delete("/boards/" + bid).status_code == 204
        for ws in (alice, bob):
            m = await recv(ws)
            assert (m["type"], m["id"], m["boardId"]) == ("board_deleted", 2, bid), m
            # its only room is gone: the socket is closed (API: "is closed")
            code, _ = await expect_close(ws)
            assert code == 4004
        # the board is gone for new joins
        carol = await connect(srv, user="carol")
        await carol.send(json.dumps({"type": "join", "boardId": bid}))
        code, _ = await expect_close(carol)
        assert code == 4004

    run(scenario())


# ---------------------------------------------------------------------------
# crashes and tabs


def test_kill_9_of_the_child_holding_bob_takes_him_out_of_alices_presence(srv, board):
    bid, _ = board

    async def scenario():
        alice = await connect(srv)  # joins by message: see next_event
        pid_a = holder_pid(srv, alice.local_address[1])
        await join(alice, bid)
        bob, pid_b = await connect_apart(srv, pid_a)
        await join(bob, bid)
        await settle(alice, bid, {"alice", "bob"})
        await settle(bob, bid, {"alice", "bob"})

        os.kill(pid_b, signal.SIGKILL)
        t0 = time.monotonic()
        await settle(alice, bid, {"alice"}, 2 * WSPING + 1)
        elapsed = time.monotonic() - t0
        assert elapsed <= 2 * WSPING + 1
        await asyncio.wait_for(bob.wait_closed(), 5)
        assert bob.close_code == 1006  # no close frame: the process is gone
        # alice's child was untouched, and her socket still works
        assert holder_pid(srv, alice.local_address[1]) == pid_a
        await alice.send(json.dumps({"type": "ping"}))
        assert await recv(alice) == {"type": "pong"}
        # bob comes back (to a new child or the other one) and is present once
        bob2 = await connect(srv, "/boards/%s/ws" % bid, "bob")
        await after_open(bob2, bid)
        await settle(bob2, bid, {"alice", "bob"})
        await settle(alice, bid, {"alice", "bob"})
        await bob2.close()
        await settle(alice, bid, {"alice"})
        await alice.close()

    run(scenario())
    wait_until(lambda: len(_children(srv)) == 2, 10, "the master to replace the killed child")


def test_typing_of_a_user_whose_child_was_killed_still_expires(srv, board):
    bid, _ = board

    async def scenario():
        alice = await connect(srv)  # joins by message: see next_event
        pid_a = holder_pid(srv, alice.local_address[1])
        await join(alice, bid)
        bob, pid_b = await connect_apart(srv, pid_a)
        await join(bob, bid)
        await settle(alice, bid, {"alice", "bob"})
        await bob.send(json.dumps({"type": "typing", "boardId": bid, "taskId": 3}))
        assert (await recv(alice))["type"] == "user_typing"
        t0 = time.monotonic()
        os.kill(pid_b, signal.SIGKILL)
        got = []
        try:
            got = await recv_until(alice, lambda m: m["type"] == "user_stopped_typing", 7)
        finally:
            await alice.close()
        assert got[-1] == {"type": "user_stopped_typing", "boardId": bid, "taskId": 3,
                           "userId": "bob", "name": "bob"}
        assert time.monotonic() - t0 <= 7

    try:
        run(scenario())
    finally:
        wait_until(lambda: len(_children(srv)) == 2, 10, "the master to replace the killed child")


def test_two_tabs_count_once_in_presence(srv, rest, board):
    bid, lists = board
    path = "/boards/%s/ws" % bid

    async def scenario():
        alice = await connect(srv)  # joins by message: see next_event
        await join(alice, bid)
        tab1 = await connect(srv, path, "bob")
        pid1 = holder_pid(srv, tab1.local_address[1])
        await after_open(tab1, bid)
        await settle(alice, bid, {"alice", "bob"})
        tab2, pid2 = await connect_apart(srv, pid1, path)  # a tab in the other child
        _, _, pres = await after_open(tab2, bid)
        assert users(pres) == {"alice", "bob"}
        carol = await connect(srv, path, "carol")
        await after_open(carol, bid)
        await settle(carol, bid, {"alice", "bob", "carol"})
        await settle(alice, bid, {"alice", "bob", "carol"})

        # the next thing alice sees is an event: no second arrival of bob
        rest["carol"].create_task(bid, lists[0], "marker 1")
        m = await recv(alice)
        assert m["type"] == "task_created" and m["id"] == 1, m

        p1 = tab1.local_address[1]
        await tab1.close()
        wait_released(srv, p1)
        rest["carol"].create_task(bid, lists[0], "marker 2")
        m = await recv(alice)
        assert m["type"] == "task_created" and m["id"] == 2, "bob left with a tab open: %r" % m

        await tab2.close()
        await settle(alice, bid, {"alice", "carol"})
        await carol.close()
        await settle(alice, bid, {"alice"})
        await alice.close()

    run(scenario())


def test_long_user_id_counts_once_across_tabs(srv, rest, board):
    bid, lists = board
    path = "/boards/%s/ws" % bid

    async def scenario():
        alice = await connect(srv)  # joins by message: see next_event
        await join(alice, bid)
        tab1 = await connect(srv, path, LONG_USER)  # `connected` carries the full id
        await after_open(tab1, bid)
        await settle(tab1, bid, {"alice", LONG_USER})
        await settle(alice, bid, {"alice", LONG_USER})
        tab2 = await connect(srv, path, LONG_USER)
        _, _, pres = await after_open(tab2, bid)
        assert LONG_USER in [u["userId"] for u in pres["users"]], pres
        rest["carol"].create_task(bid, lists[0], "marker")
        m = await recv(alice)
        assert m["type"] == "task_created", "a second arrival for one user: %r" % m
        p1 = tab1.local_address[1]
        await tab1.close()
        wait_released(srv, p1)
        rest["carol"].create_task(bid, lists[0], "marker 2")
        m = await recv(alice)
        assert m["type"] == "task_created", "left with a tab still open: %r" % m
        await tab2.close()
        await alice.close()

    run(scenario())


def test_ticket_keeps_a_long_user_id(srv, board):
    bid, _ = board
    r = requests.post(srv.url("/boards/%s/ws-ticket" % bid), auth=(LONG_USER, LONG_USER),
                      timeout=10)
    assert r.status_code == 201, r.text
    with RawWS(srv.port, "/boards/%s/ws?ticket=%s" % (bid, r.json()["data"]["ticket"]),
               user=None) as ws:
        assert ws.status == 101, (ws.status, ws.body)
        assert ws.recv_json()["user"]["userId"] == LONG_USER


# ---------------------------------------------------------------------------
# resume


def _writer(client, bid, list_id, n, started, pause=0.01):
    def work():
        for i in range(n):
            client.create_task(bid, list_id, "w%d" % i)
            if i == 2:
                started.set()
            time.sleep(pause)
    t = threading.Thread(target=work)
    t.start()
    return t


@pytest.mark.parametrize("how", ["join-message", "board-url"])
def test_resume_gives_exactly_the_missed_events_in_order_then_live(srv, rest, board, how):
    bid, lists = board
    writer_client = srv.client("carol")

    async def scenario():
        ws = await connect(srv, "/boards/%s/ws" % bid)
        await after_open(ws, bid)
        for i in range(3):
            rest["bob"].create_task(bid, lists[0], "live %d" % i)
        seen = [await recv(ws) for _ in range(3)]
        assert [e["id"] for e in seen] == [1, 2, 3]
        await ws.close()

        for i in range(4):  # missed while away
            rest["bob"].create_task(bid, lists[1], "missed %d" % i)
        # more writes race the reconnection
        started = threading.Event()
        t = _writer(writer_client, bid, lists[2], 12, started)
        started.wait(10)
        try:
            if how == "join-message":
                ws = await connect(srv)
                joined, replay, pres = await join(ws, bid, last=3)
            else:
                ws = await connect(srv, "/boards/%s/ws?lastEventId=3" % bid)
                joined, replay, pres = await after_open(ws, bid)
            assert joined == {"type": "joined", "boardId": bid, "lastEventId": 3}
            assert users(pres) <= {"alice"}  # her own arrival may still be on its way
        finally:
            t.join(30)
        final = rest["alice"].last_event_id(bid)
        assert final == 3 + 4 + 12
        got = list(replay)
        while not got or got[-1]["id"] < final:
            got.append(await next_event(ws))
        ids = [e["id"] for e in got]
        assert ids == list(range(4, final + 1)), ids
        assert got == rest["alice"].events_since(bid, 3)
        # and then live
        rest["bob"].create_task(bid, lists[0], "live again")
        m = await next_event(ws)
        assert m["id"] == final + 1 and m["type"] == "task_created", m
        await ws.close()

    run(scenario())


def _rest_resets(client, bid, since):
    d = client.ok(client.get("/boards/%s/updates" % bid, params={"since": since}))
    return bool(d["data"]) and d["data"][0]["type"] == "reset"


def test_resume_older_than_the_history_gets_reset(srv, rest, board):
    bid, lists = board
    n = 2 * HISTORY + 6
    with ThreadPoolExecutor(4) as pool:
        clients = [srv.client("bob") for _ in range(4)]
        list(pool.map(lambda i: clients[i % 4].create_task(bid, lists[i % 3], "h%d" % i),
                      range(n)))
    last = rest["alice"].last_event_id(bid)
    assert last == n
    # the oldest resume point the log still serves, as REST polling sees it: at
    # least HISTORY events are kept, and not all of them
    assert not _rest_resets(rest["alice"], bid, last - HISTORY)
    assert _rest_resets(rest["alice"], bid, 1)
    lo, hi = 1, last - HISTORY  # lo resets, hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _rest_resets(rest["alice"], bid, mid):
            lo = mid
        else:
            hi = mid
    oldest = hi

    async def scenario():
        ws = await connect(srv)
        # the oldest resumable point: every kept event is replayed
        joined, replay, _ = await join(ws, bid, last=oldest)
        assert joined["lastEventId"] == oldest
        assert [e["id"] for e in replay] == list(range(oldest + 1, last + 1))
        assert replay == rest["alice"].events_since(bid, oldest)
        await ws.send(json.dumps({"type": "leave", "boardId": bid}))
        assert (await recv(ws))["type"] == "left"

        # one older: the event after it is gone, so a reset instead of a partial replay
        joined, replay, _ = await join(ws, bid, last=oldest - 1)
        assert joined == {"type": "joined", "boardId": bid, "lastEventId": last}
        assert len(replay) == 1, replay
        reset = replay[0]
        assert reset["type"] == "reset" and reset["lastEventId"] == last, reset
        assert reset["snapshot"].endswith("/boards/" + bid), reset
        assert "id" not in reset
        rest["bob"].create_task(bid, lists[0], "after reset")
        m = await next_event(ws)
        assert (m["type"], m["id"]) == ("task_created", last + 1), m
        await ws.close()

        # the same over the board URL, and from a cursor the board never reached
        for since in (1, oldest - 1, last + 50):
            ws = await connect(srv, "/boards/%s/ws?lastEventId=%d" % (bid, since))
            joined, replay, _ = await after_open(ws, bid)
            assert joined["lastEventId"] == last + 1, (since, joined)
            assert [m["type"] for m in replay] == ["reset"], (since, replay)
            assert replay[0]["lastEventId"] == last + 1
            await ws.close()

    run(scenario())


# ---------------------------------------------------------------------------
# tickets


def _ticket(srv, board, user="alice"):
    r = requests.post(srv.url("/boards/%s/ws-ticket" % board), auth=(user, user), timeout=10)
    return r


def test_ticket_opens_one_socket_without_credentials(srv, board):
    bid, _ = board
    r = _ticket(srv, bid)
    assert r.status_code == 201, r.text
    d = r.json()["data"]
    assert re.fullmatch(r"[0-9a-f]{32}", d["ticket"]), d
    assert d["boardId"] == bid

    async def scenario():
        ws = await connect(srv, "/boards/%s/ws?ticket=%s" % (bid, d["ticket"]), user=None,
                           hello=False)
        assert await recv(ws) == {"type": "connected",
                                  "user": {"userId": "alice", "name": "alice"}}
        joined, _, pres = await after_open(ws, bid)
        await settle(ws, bid, {"alice"})
        # a ticket opens a socket for its own board only: other joins are refused
        # (the socket stays)
        other = srv.client("alice").create_board(unique("wst"))["id"]
        await ws.send(json.dumps({"type": "join", "boardId": other}))
        err = (await recv_until(ws, lambda m: m["type"] == "error"))[-1]
        assert err["code"] == "ticket_board_only", err
        await ws.send(json.dumps({"type": "ping"}))
        assert (await recv_until(ws, lambda m: m["type"] == "pong"))[-1] == {"type": "pong"}
        await ws.close()

    run(scenario())
    # a replay is refused before the upgrade
    with RawWS(srv.port, "/boards/%s/ws?ticket=%s" % (bid, d["ticket"]), user=None) as raw:
        assert raw.status == 401, (raw.status, raw.body)


def test_ticket_is_bound_to_its_board_and_to_websocket_upgrades(srv, rest, board):
    bid, _ = board
    other = rest["alice"].create_board(unique("wst"))["id"]
    t = _ticket(srv, bid).json()["data"]["ticket"]
    # not a credential for REST
    assert requests.get(srv.url("/boards/%s?ticket=%s" % (bid, t)), timeout=10).status_code == 401
    # not for another board's socket
    with RawWS(srv.port, "/boards/%s/ws?ticket=%s" % (other, t), user=None) as raw:
        assert raw.status == 401, (raw.status, raw.body)
    # unknown tickets, and tickets without a login
    with RawWS(srv.port, "/boards/%s/ws?ticket=%s" % (bid, "0" * 32), user=None) as raw:
        assert raw.status == 401
    assert requests.post(srv.url("/boards/%s/ws-ticket" % bid), timeout=10).status_code == 401
    assert _ticket(srv, "no-such-board").status_code == 404


def test_ticket_issued_by_one_child_is_redeemed_by_another(srv, board):
    bid, _ = board
    for attempt in range(16):
        n = len(srv.access_lines("POST", r"/ws-ticket$"))
        t = _ticket(srv, bid).json()["data"]["ticket"]
        lines = wait_until(lambda: len(srv.access_lines("POST", r"/ws-ticket$")) > n and
                           srv.access_lines("POST", r"/ws-ticket$"), 5, "the ticket's log line")
        issuer = lines[-1]["pid"]
        ws = RawWS(srv.port, "/boards/%s/ws?ticket=%s" % (bid, t), user=None)
        try:
            assert ws.status == 101, (ws.status, ws.body)
            assert ws.recv_json()["user"]["userId"] == "alice"
            redeemer = holder_pid(srv, ws.local_port)
        finally:
            ws.close()
        assert redeemer in _children(srv), redeemer
        if redeemer != issuer:
            return
    pytest.fail("every ticket was redeemed by the child that issued it")


def test_ticket_for_the_private_board(srv, private):
    r = _ticket(srv, private, "bob")
    assert r.status_code in (401, 403), r.text  # bob may not read it, so no ticket
    t = _ticket(srv, private, "alice").json()["data"]["ticket"]
    with RawWS(srv.port, "/boards/%s/ws?ticket=%s" % (private, t), user=None) as ws:
        assert ws.status == 101, (ws.status, ws.body)
        assert ws.recv_json()["user"]["userId"] == "alice"
        assert ws.recv_json() == {"type": "joined", "boardId": private,
                                  "lastEventId": ws_last(srv, private)}


def test_ticket_user_is_authorized_per_join_like_any_user(srv, board, private):
    """A ticket's socket is bound to the ticket's board: bob's ticket does not
    open alice's private board (nor any other)."""
    bid, _ = board
    t = _ticket(srv, bid, "bob").json()["data"]["ticket"]
    with RawWS(srv.port, "/boards/%s/ws?ticket=%s" % (bid, t), user=None) as ws:
        assert ws.status == 101, (ws.status, ws.body)
        assert ws.recv_json()["user"]["userId"] == "bob"
        ws.recv_until(lambda m: m["type"] == "presence")
        ws.send_json({"type": "join", "boardId": private})
        err = ws.recv_until(lambda m: m["type"] == "error")[-1]
        assert err["code"] == "ticket_board_only", err


def test_joins_after_the_upgrade_request_is_freed_are_still_decided_by_apache(
        srv, rest, board, private):
    """Once a socket is on the loop its upgrade request is logged and freed (the
    log line appears while the socket is open); joins made after that are still
    authorized by Apache's Require lines with the socket's user, whether it came
    with Basic credentials or with a ticket."""
    bid, _ = board
    other = rest["alice"].create_board(unique("wsfree"))["id"]
    t = _ticket(srv, other, "bob").json()["data"]["ticket"]
    sockets = {
        "alice": RawWS(srv.port, "/ws", user="alice"),
        "bob": RawWS(srv.port, "/ws", user="bob"),
        "bob-ticket": RawWS(srv.port, "/ws?ticket=%s" % t, user=None),
    }
    try:
        for name, ws in sockets.items():
            assert ws.status == 101, (name, ws.status, ws.body)
            assert ws.recv_json()["type"] == "connected", name

        def logged():
            return {(d["user"], d["path"].split("?")[0])
                    for d in srv.access_lines("GET", r"/ws(\?|$)") if d["status"] == 101}
        want = {("alice", "/ws"), ("bob", "/ws")}
        wait_until(lambda: want <= logged(), 5,
                   "the 101 lines of the three open sockets in the access log")
        # every socket is still open and served after its request was freed
        def joined(ws, b):
            """The answer to a join of b, other sockets' presence news left out."""
            ws.send_json({"type": "join", "boardId": b})
            got = ws.recv_until(lambda m: m["type"] == "error" or
                                (m["type"] == "presence" and m["boardId"] == b))
            return [m["type"] for m in got if m.get("boardId") == b and
                    m["type"] in ("joined", "presence", "error")], got[-1]

        for name, ws in sockets.items():
            types, pres = joined(ws, other)
            assert types == ["joined", "presence"], (name, types)
        types, pres = joined(sockets["alice"], private)
        assert types == ["joined", "presence"], types
        if pres["users"] == []:  # her arrival comes as the board's next diff
            pres = sockets["alice"].recv_until(
                lambda m: m["type"] == "presence_diff" and m["boardId"] == private)[-1]
            pres["users"] = pres["joined"]
        assert [u["userId"] for u in pres["users"]] == ["alice"], pres
        ws = sockets["bob"]
        ws.send_json({"type": "join", "boardId": private})
        code, before = ws.expect_close()
        assert code == 4003, (code, before)
        # a ticket's socket joins its ticket's board only (its join above was
        # decided by Apache as bob, after the request was freed)
        ws = sockets["bob-ticket"]
        ws.send_json({"type": "join", "boardId": private})
        err = ws.recv_until(lambda m: m["type"] == "error")[-1]
        assert err["code"] == "ticket_board_only", err
    finally:
        for ws in sockets.values():
            ws.close()


def write_digest_conf(server):
    """mod_auth_digest and a board `dig` behind Digest authentication."""
    import hashlib
    realm = "rtboard-digest"
    with open(os.path.join(server.var, "htdigest"), "w") as f:
        for u in ("alice", "bob"):
            f.write("%s:%s:%s\n" % (u, realm, hashlib.md5(
                ("%s:%s:%s" % (u, realm, u)).encode()).hexdigest()))
    os.makedirs(os.path.join(server.var, "conf.d"), exist_ok=True)
    with open(os.path.join(server.var, "conf.d", "digest.conf"), "w") as f:
        f.write("""LoadModule auth_digest_module /usr/lib/apache2/modules/mod_auth_digest.so
<Location /boards/dig>
    AuthType Digest
    AuthName "{realm}"
    AuthDigestProvider file
    AuthUserFile "{var}/htdigest"
    Require valid-user
</Location>
""".format(realm=realm, var=server.var))


@pytest.fixture(scope="module")
def digest_srv(servers):
    return servers.start(private_module=True, CHILDREN=2, prepare=write_digest_conf)


def test_join_of_a_digest_board_is_decided_by_mod_auth_digest(digest_srv):
    """mod_auth_digest keeps per-request state that a subrequest reads from its
    parent: with it loaded, sockets keep their upgrade request and joins are
    made from it. A join is still decided by Apache (Basic credentials do not
    pass a Digest location: 4003), other boards join as usual, and the child
    survives."""
    srv = digest_srv
    alice = srv.client("alice")
    # only who may read a board may create it, and Basic credentials do not pass
    # there: the board is put in the store directly (the SQLite file)
    assert alice.post("/boards", {"id": "dig", "name": "Digest"}).status_code == 403
    if srv.settings.get("DBDRIVER") == "pgsql":
        pytest.skip("the board is put in SQLite's file; this test is about mod_auth_digest")
    import sqlite3
    db = sqlite3.connect(os.path.join(srv.var, "db", "rtboard.db"), timeout=30)
    with db:
        db.execute("INSERT INTO boards (id, name, created_at, seq) "
                   "VALUES ('dig', 'Digest', '2026-01-01T00:00:00.000Z', 0)")
    db.close()
    assert alice.get("/boards/dig").status_code == 401
    other = alice.create_board(unique("nodig"))["id"]
    for _ in range(2):
        with RawWS(srv.port, "/ws", user="alice") as ws:
            assert ws.status == 101, (ws.status, ws.body)
            assert ws.recv_json()["type"] == "connected"
            ws.send_json({"type": "join", "boardId": other})
            got = ws.recv_until(lambda m: m["type"] == "error" or
                                (m["type"] == "presence" and m["boardId"] == other))
            assert got[0]["type"] == "joined", got
            ws.send_json({"type": "join", "boardId": "dig"})
            code, before = ws.expect_close()
            assert code == 4003, (code, before)
    assert not crash_lines(srv.error_log())


def ws_last(srv, board):
    return srv.client("alice").last_event_id(board)


# ---------------------------------------------------------------------------
# origin and board authorization


def test_same_origin_is_accepted(srv, board):
    """(Foreign origins are closed with 1008: the close-code table of test_ws_protocol.)"""
    bid, _ = board
    with RawWS(srv.port, "/boards/%s/ws" % bid,
               headers={"Origin": "http://127.0.0.1:%d" % srv.port}) as ws:
        assert ws.recv_json()["type"] == "connected"
        assert ws.recv_json()["type"] == "joined"


def test_private_board_joins_for_alice_and_its_url_is_refused_to_bob(srv, private):
    """(bob's join by message is closed with 4003, and unknown boards with 4004: the
    close-code table of test_ws_protocol.)"""
    async def scenario():
        alice = await connect(srv)
        joined, _, pres = await join(alice, private)
        await settle(alice, private, {"alice"})
        await alice.close()

    run(scenario())
    # the board URL is refused by Apache before the upgrade
    with RawWS(srv.port, "/boards/%s/ws" % private, user="bob") as ws:
        assert ws.status in (401, 403), ws.status


def test_invalid_messages_get_errors_and_the_socket_stays(srv, board):
    bid, _ = board

    async def scenario():
        ws = await connect(srv)
        cases = [
            ("{bad", "invalid_json"),
            ("[1, 2]", "invalid_json"),
            ("", "invalid_json"),
            (json.dumps({"type": "dance"}), "unknown_type"),
            (json.dumps({"boardId": bid}), None),
            (json.dumps({"type": "typing", "boardId": bid, "taskId": 1}), "not_joined"),
            (json.dumps({"type": "join", "boardId": "Not A Slug!"}), "invalid_board"),
            (json.dumps({"type": "join", "boardId": bid, "lastEventId": "x"}),
             "invalid_last_event_id"),
        ]
        for text, code in cases:
            await ws.send(text)
            m = await recv(ws)
            assert m["type"] == "error" and isinstance(m.get("message"), str), (text, m)
            if code:
                assert m["code"] == code, (text, m)
            await ws.send(json.dumps({"type": "ping"}))
            assert await recv(ws) == {"type": "pong"}, text
        joined, _, _ = await join(ws, bid)
        await ws.send(json.dumps({"type": "join", "boardId": bid}))
        m = await recv(ws)
        assert (m["type"], m["code"]) == ("error", "already_joined"), m
        await ws.send(json.dumps({"type": "typing", "boardId": bid, "taskId": "seven"}))
        assert (await recv(ws))["code"] == "invalid_task"
        await ws.send(json.dumps({"type": "cursor", "boardId": bid, "x": "left", "y": 1}))
        assert (await recv(ws))["code"] == "invalid_cursor"
        await ws.close()
        assert ws.close_code == 1000

    run(scenario())


# ---------------------------------------------------------------------------
# server pings


@pytest.fixture(scope="module")
def ping_srv(servers):
    return servers.start(private_module=True, CHILDREN=2, WSPING=1)


def test_a_client_that_never_answers_pings_is_closed(ping_srv):
    s = ping_srv
    bid = s.client("alice").create_board(unique("wsping"))["id"]
    path = "/boards/%s/ws" % bid
    lib_result = {}

    def library_client():  # a normal client: websockets answers pings by itself
        async def go():
            ws = await connect(s, path, "carol")
            await after_open(ws, bid)
            await asyncio.sleep(4.5)
            await ws.send(json.dumps({"type": "ping"}))
            m = await recv_until(ws, lambda m: m["type"] == "pong")
            lib_result["ok"] = m[-1] == {"type": "pong"} and ws.open
            lib_result["closing_at"] = time.monotonic()
            await ws.close()
        try:
            run(go())
        except Exception as e:  # reported below
            lib_result["error"] = repr(e)

    th = threading.Thread(target=library_client)
    th.start()
    alive = open_ws(s, path, "alice")  # raw, answers pings
    alive.recv_until(lambda m: m["type"] == "presence")
    t0 = time.monotonic()
    dead = open_ws(s, path, "bob", auto_pong=False)
    dead_pings, dead_end, dead_code, seen = [], None, None, []
    while time.monotonic() - t0 < 5.0:
        socks = [alive.sock] + ([dead.sock] if dead_end is None else [])
        r, _, _ = select.select(socks, [], [], 0.1)
        if alive.sock in r or alive.buf:
            f = alive.frame(2)
            if f.opcode == OP_PING:
                alive.pings.append(f.payload)
                alive.send_frame(OP_PONG, f.payload)
            else:
                seen.append((time.monotonic(), json.loads(f.payload)))
        if dead_end is None and dead.sock in r:
            try:
                f = dead.frame(2)
                if f.opcode == OP_PING:
                    dead_pings.append(time.monotonic() - t0)
                elif f.opcode == OP_CLOSE:
                    dead_code = f.close_code
            except EOFError:
                dead_end = time.monotonic() - t0
    th.join(15)
    assert dead_pings, "the server never pinged"
    assert dead_end is not None, "the silent client was not closed"
    assert dead_end <= 3.5, "closed only after %.1f s (pings at %r)" % (dead_end, dead_pings)
    assert dead_end > dead_pings[0], (dead_pings, dead_end)
    assert dead_code is not None, "no close frame before the end"
    # presence follows the missed heartbeat
    left = [(t, u) for t, m in seen if m["type"] == "presence_diff" for u in m["left"]]
    assert [u for t, u in left if u == "bob"] == ["bob"], seen
    assert all(t >= lib_result.get("closing_at", 0) for t, u in left if u == "carol"), (
        "carol, who answers pings, was dropped: %r" % seen)
    # the well-behaved clients are still there
    assert len(alive.pings) >= 3, alive.pings
    alive.send_json({"type": "ping"})
    assert alive.recv_until(lambda m: m["type"] == "pong")[-1] == {"type": "pong"}
    alive.close()
    dead.close()
    assert lib_result.get("ok"), lib_result


# ---------------------------------------------------------------------------
# a server with the default history: large replays, ephemeral delivery, graceful restart


@pytest.fixture(scope="module")
def plain_srv(servers):
    return servers.start(private_module=True, CHILDREN=2, WSPING=30)


def test_resume_of_more_than_the_output_cap_stays_well_framed(plain_srv):
    """A client that missed over 1 MiB of events: the server may cut it (close 1013,
    resume by id), but every frame must be whole and, over resumes, every event must
    arrive once, in order."""
    s = plain_srv
    b = s.client("alice").create_board(unique("wsbig"))
    bid, list_id = b["id"], b["lists"][0]["id"]
    n = 130
    clients = [s.client("bob") for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: clients[i % 4].create_task(bid, list_id, "big %d" % i,
                                                           description="d" * 9500), range(n)))
    ids, closes = [], []
    for attempt in range(6):
        ws = open_ws(s)
        ws.send_json({"type": "join", "boardId": bid, "lastEventId": ids[-1] if ids else 0})
        try:
            while not ids or ids[-1] < n:
                try:
                    f = ws.frame(10)
                except EOFError:
                    break
                if f.opcode == OP_CLOSE:
                    closes.append(f.close_code)
                    break
                if f.opcode == OP_PING:
                    continue
                try:
                    m = json.loads(f.payload.decode("utf-8"))
                except ValueError:
                    raise AssertionError("malformed frame after event %s: %r" % (
                        ids[-1] if ids else None, f.payload[:16]))
                if "id" in m:
                    ids.append(m["id"])
        finally:
            ws.close()
        if ids and ids[-1] == n:
            break
    assert ids == list(range(1, n + 1)), (ids[:3], ids[-3:], len(ids))
    assert set(closes) <= {1013}, closes


def test_board_url_socket_gets_each_ephemeral_message_once(plain_srv):
    """While others move their cursors, sockets opened on /boards/:b/ws (with a replay)
    must get each cursor message at most once and no stale presence news about
    themselves."""
    s = plain_srv
    b = s.client("alice").create_board(unique("wseph"))
    bid, list_id = b["id"], b["lists"][0]["id"]
    clients = [s.client("bob") for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: clients[i % 4].create_task(bid, list_id, "t%d" % i), range(150)))
    path = "/boards/%s/ws" % bid
    stop = threading.Event()
    errors = []

    def mover(k):  # about 19 distinct cursor positions a second
        try:
            ws = open_ws(s, path, "carol")
            ws.recv_until(lambda m: m["type"] == "presence")
            n = 0
            while not stop.is_set():
                n += 1
                ws.send_json({"type": "cursor", "boardId": bid, "x": k * 1000000 + n, "y": 0})
                while select.select([ws.sock], [], [], 0)[0]:
                    ws.frame(1)
                time.sleep(0.052)
            ws.close()
        except Exception as e:
            errors.append(repr(e))

    movers = [threading.Thread(target=mover, args=(k,)) for k in range(12)]
    for t in movers:
        t.start()
    problems = []
    try:
        time.sleep(0.5)
        for i in range(40):
            ws = open_ws(s, path + "?lastEventId=0", "bob")
            try:
                got = ws.recv_until(lambda m: m["type"] == "presence")
                assert [m["id"] for m in got if "id" in m] == list(range(1, 151))
                msgs = [m for m in got if m["type"] == "cursor"]
                t0 = time.monotonic()
                while time.monotonic() - t0 < 0.15:
                    try:
                        msgs.append(ws.recv_json(0.15))
                    except TimeoutError:
                        break
            finally:
                ws.close()
            seen = {}
            for m in msgs:
                if m["type"] == "cursor":
                    seen[m["x"]] = seen.get(m["x"], 0) + 1
            dups = sorted(x for x, n in seen.items() if n > 1)
            own = [m for m in msgs if m.get("userId") == "bob"]
            if dups or own:
                problems.append("socket %d: cursor messages delivered twice %r; about "
                                "itself: %r" % (i, dups[:4], own[:2]))
                break
    finally:
        stop.set()
        for t in movers:
            t.join(10)
    assert not errors, errors
    assert not problems, problems


def test_graceful_restart_closes_with_1001_and_resume_loses_nothing(plain_srv):
    s = plain_srv
    c = s.client("alice")
    b = c.create_board(unique("wsg"))
    bid, lists = b["id"], [l["id"] for l in b["lists"]]
    old_children = set(_children(s))

    async def scenario():
        sockets = [await connect(s, "/boards/%s/ws" % bid, u) for u in ("alice", "bob")]
        for ws in sockets:
            await after_open(ws, bid)
        await recv(sockets[0])  # bob's arrival
        received = {0: [], 1: []}
        for i in range(3):
            c.create_task(bid, lists[0], "before %d" % i)
        loop = asyncio.get_running_loop()
        restart = loop.run_in_executor(None, s.graceful)
        for k, ws in enumerate(sockets):
            code, before = await expect_close(ws, 20)
            assert code == 1001, (code, before)
            received[k] += [m for m in before if "id" in m]
        await restart
        for i in range(3):
            c.create_task(bid, lists[1], "after %d" % i)
        final = c.last_event_id(bid)
        assert final == 6
        for k, user in enumerate(("alice", "bob")):
            last = received[k][-1]["id"] if received[k] else 0
            ws = await connect(s, "/boards/%s/ws?lastEventId=%d" % (bid, last), user)
            joined, replay, _ = await after_open(ws, bid)
            assert joined["lastEventId"] == last
            received[k] += replay
            while received[k][-1]["id"] < final:
                received[k].append(await next_event(ws))
            assert [e["id"] for e in received[k]] == list(range(1, final + 1)), received[k]
            assert received[k] == c.events_since(bid, 0)
            await ws.close()

    run(scenario())
    # the old generation went away (its sockets did not keep it alive)
    wait_until(lambda: not (old_children & set(_children(s))), 15, "the old children to exit")
