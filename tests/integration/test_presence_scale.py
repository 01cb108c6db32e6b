"""Presence at scale, across child processes: a storm of 1,000 distinct users
ends with one count and one first page everywhere, in a bounded number of
presence messages per client; a full lease table refuses the next join with a
clear message and a log line while the others keep working; kill -9 of a
child during a storm takes its users out of every list within the reaping time.

Clients are Python `websockets`, one socket per user, each keeping its view of
the board's presence (test_ws.View: a snapshot, then the diffs in order).
"""

import asyncio
import base64
import hashlib
import json
import os
import signal
import time

import pytest
import websockets

from harness import unique
from test_ws import View, _children
from test_ws_protocol import basic

STORM = 1000
PAGE = 100  # RTBoardPresencePage's default


def write_users(server, n):
    """htpasswd with alice, bob, carol, admin and user0..user<n-1> (password: the name)."""
    with open(os.path.join(server.var, "htpasswd"), "w") as f:
        for u in ["alice", "bob", "carol", "admin"] + ["user%d" % i for i in range(n)]:
            digest = base64.b64encode(hashlib.sha1(u.encode()).digest()).decode()
            f.write("%s:{SHA}%s\n" % (u, digest))


def write_conf(server, text):
    os.makedirs(os.path.join(server.var, "conf.d"), exist_ok=True)
    with open(os.path.join(server.var, "conf.d", "presence.conf"), "w") as f:
        f.write(text)


@pytest.fixture(scope="module")
def big(servers):
    return servers.start(private_module=True, CHILDREN=2, prepare=lambda s: write_users(s, STORM))


class Client:
    """One user's socket on /boards/:b/ws, its presence view and what it received."""

    def __init__(self, user):
        self.user = user
        self.view = None
        self.messages = 0  # presence and presence_diff
        self.bytes = 0
        self.closed = None  # the close code, once closed
        self.error = None
        self.ws = None

    async def run(self, server, board, delay):
        await asyncio.sleep(delay)
        try:
            self.ws = await websockets.connect(
                "ws://127.0.0.1:%d/boards/%s/ws" % (server.port, board),
                extra_headers={"Authorization": basic(self.user, self.user)}, open_timeout=60,
                close_timeout=2, ping_interval=None, max_queue=None)
            async for raw in self.ws:
                m = json.loads(raw)
                if m["type"] == "presence" and m["boardId"] == board:
                    self.messages += 1
                    self.bytes += len(raw)
                    self.view = View(m)
                elif m["type"] == "presence_diff":
                    self.messages += 1
                    self.bytes += len(raw)
                    self.view.apply(m)
                elif m["type"] == "error":
                    raise AssertionError("%s: %r" % (self.user, m))
        except websockets.ConnectionClosed as e:
            self.closed = e.code
        except Exception as e:  # reported by the test
            self.error = "%s: %r" % (self.user, e)
        if self.closed is None and self.error is None:
            self.closed = self.ws.close_code if self.ws else -1

    def keep(self):
        """What the view is now, before sockets start closing (and leaving)."""
        self.final = (list(self.view.users), self.view.count, self.view.version) \
            if self.view else None


async def close_all(clients, tasks):
    await asyncio.gather(*(c.ws.close() for c in clients if c.ws), return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)


def rest_presence(server, board):
    c = server.client("alice")
    r = c.get("/boards/%s/presence" % board)
    assert r.status_code == 200, r.text
    return r.json()


async def until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what())
        await asyncio.sleep(0.1)


def views_summary(clients):
    counts = {}
    for c in clients:
        k = c.view.count if c.view else None
        counts[k] = counts.get(k, 0) + 1
    errors = [c.error for c in clients if c.error][:3]
    return "counts %r, errors %r" % (sorted(counts.items(), key=str)[:8], errors)


def status_ws_per_child(server):
    d = server.client("admin").get("/rtboard-status").json()["data"]
    return [ch["connections"]["ws"] for ch in d["children"]]


def test_1000_distinct_users_join_in_2_s_and_all_end_with_one_count_and_page(big):
    bid = big.client("alice").create_board(unique("crowd"))["id"]
    clients = [Client("user%d" % i) for i in range(STORM)]

    async def scenario():
        tasks = [asyncio.ensure_future(c.run(big, bid, i * 2.0 / STORM))
                 for i, c in enumerate(clients)]
        t0 = time.monotonic()
        try:
            await until(lambda: all(c.view and c.view.count == STORM for c in clients) or
                        any(c.error or c.closed for c in clients), 60,
                        lambda: "every client to count %d: %s" % (STORM, views_summary(clients)))
            settled = time.monotonic() - t0
            for c in clients:
                c.keep()
            assert not [c.error for c in clients if c.error], views_summary(clients)
            assert not [c.closed for c in clients if c.closed], views_summary(clients)
            per_child = status_ws_per_child(big)
            rest = rest_presence(big, bid)
            return settled, per_child, rest
        finally:
            await close_all(clients, tasks)

    settled, per_child, rest = asyncio.run(scenario())
    # the storm was served by both children
    assert len(per_child) == 2 and min(per_child) > 0, per_child
    # one count, one first page: the server's own (GET /boards/:b/presence)
    assert rest["count"] == STORM and rest["complete"] is False, rest
    page = [u["userId"] for u in rest["users"]]
    assert len(page) == PAGE and len(set(page)) == PAGE, page
    assert all(c.final[0] == page for c in clients), [
        (c.user, c.final[0][:3]) for c in clients if c.final[0] != page][:3]
    assert all(c.final[2] == rest["version"] for c in clients)
    # bounded news: one snapshot and a diff per window at most, whatever the crowd
    # (one message per arrival would give the first users about a thousand each)
    msgs = sorted(c.messages for c in clients)
    size = sorted(c.bytes for c in clients)
    assert msgs[-1] <= 60, "presence messages per client: max %d (median %d)" % (
        msgs[-1], msgs[len(msgs) // 2])
    assert sum(msgs) <= 30 * STORM, sum(msgs)
    assert size[-1] <= 48 * 1024, "presence bytes per client: max %d" % size[-1]
    print("settled %.1f s after the first connect; presence messages per client: median %d, "
          "max %d; bytes per client: median %d, max %d; sockets per child %r" % (
              settled, msgs[len(msgs) // 2], msgs[-1], size[len(size) // 2], size[-1], per_child))


def test_kill_9_of_a_child_during_a_storm_takes_its_users_out_within_the_reaping_time(big):
    bid = big.client("alice").create_board(unique("crowdk"))["id"]
    n, spread = 400, 3.0
    clients = [Client("user%d" % i) for i in range(n)]
    victim = _children(big)[0]

    async def scenario():
        tasks = [asyncio.ensure_future(c.run(big, bid, i * spread / n))
                 for i, c in enumerate(clients)]
        try:
            await asyncio.sleep(spread / 2)
            os.kill(victim, signal.SIGKILL)
            t_kill = time.monotonic()
            await asyncio.sleep(spread / 2 + 0.2)  # the rest of the storm connects
            t_last = time.monotonic()

            def done():
                live = [c for c in clients if c.ws and c.closed is None and c.view]
                if len(live) + sum(1 for c in clients if c.closed) < n:
                    return None  # some are still joining
                alive = {c.user for c in live}
                return all(c.view.count == len(alive) and set(c.view.users) <= alive
                           for c in live) and live
            live = await until(done, 15, lambda: "the survivors to agree: %s" % views_summary(
                [c for c in clients if c.closed is None]))
            converged = time.monotonic()
            for c in live:
                c.keep()
            dead = [c for c in clients if c.closed]
            rest = rest_presence(big, bid)
            return live, dead, rest, converged - t_kill, converged - t_last
        finally:
            await close_all(clients, tasks)

    live, dead, rest, since_kill, since_last = asyncio.run(scenario())
    assert not [c.error for c in clients if c.error], [c.error for c in clients if c.error][:3]
    assert dead, "nobody was on the killed child"
    assert all(c.closed == 1006 for c in dead), {c.closed for c in dead}
    assert rest["count"] == len(live), (rest["count"], len(live))
    page = [u["userId"] for u in rest["users"]]
    assert all(c.final[0] == page for c in live)
    assert not {c.user for c in dead} & set(page)
    # leases are reaped once a second, then go out with the next window (0.2 s)
    assert since_last <= 3.0, "the lists agreed %.1f s after the storm" % since_last
    print("killed %d with %d users on it; the %d others agreed %.1f s after the kill, "
          "%.1f s after the storm" % (victim, len(dead), len(live), since_kill, since_last))


def test_a_full_lease_table_refuses_the_next_join_clearly_and_logs_it(servers):
    slots = 8

    def prepare(s):
        write_users(s, 20)
        write_conf(s, "RTBoardPresenceSlots %d\n" % slots)

    srv = servers.start(private_module=True, CHILDREN=2, prepare=prepare)
    b = srv.client("alice").create_board(unique("full"))
    bid, list_id = b["id"], b["lists"][0]["id"]
    users = ["user%d" % i for i in range(slots)]

    async def scenario():
        socks = {}
        for u in users:
            ws = await websockets.connect(
                "ws://127.0.0.1:%d/boards/%s/ws" % (srv.port, bid),
                extra_headers={"Authorization": basic(u, u)}, ping_interval=None)
            socks[u] = ws
        views = {}
        for u, ws in socks.items():
            while u not in views:
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if m["type"] == "presence":
                    views[u] = View(m)

        async def settle(u, expected):
            while set(views[u].users) != expected or views[u].count != len(expected):
                m = json.loads(await asyncio.wait_for(socks[u].recv(), 5))
                if m["type"] in ("presence", "presence_diff"):
                    views[u].apply(m)
        for u in users:
            await settle(u, set(users))

        # the table is full: the next join is refused, and said so
        extra = await websockets.connect("ws://127.0.0.1:%d/ws" % srv.port,
                                         extra_headers={"Authorization": basic("user8", "user8")},
                                         ping_interval=None)
        assert json.loads(await extra.recv())["type"] == "connected"
        for _ in range(3):
            await extra.send(json.dumps({"type": "join", "boardId": bid}))
            m = json.loads(await asyncio.wait_for(extra.recv(), 5))
            assert m["type"] == "error" and m["code"] == "presence_full", m
            assert m["boardId"] == bid and "presence" in m["message"] and "full" in m["message"], m
        # not joined: the board's events do not reach it, but they reach everyone else
        srv.client("bob").create_task(bid, list_id, "while full")
        for u in users:
            while True:
                m = json.loads(await asyncio.wait_for(socks[u].recv(), 5))
                if "id" in m:
                    assert m["type"] == "task_created", m
                    break
        await extra.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(extra.recv(), 5)) == {"type": "pong"}
        # typing between the present ones still works
        await socks["user0"].send(json.dumps({"type": "typing", "boardId": bid, "taskId": 1}))
        m = json.loads(await asyncio.wait_for(socks["user1"].recv(), 5))
        assert (m["type"], m["userId"]) == ("user_typing", "user0"), m
        # someone leaves: the join goes through, and everyone sees the change
        await socks.pop("user7").close()
        users.remove("user7")
        deadline = time.monotonic() + 5
        while True:
            await extra.send(json.dumps({"type": "join", "boardId": bid}))
            m = json.loads(await asyncio.wait_for(extra.recv(), 5))
            if m["type"] == "joined":
                break
            assert m["code"] == "presence_full" and time.monotonic() < deadline, m
            await asyncio.sleep(0.1)
        for u in users:
            await settle(u, set(users) | {"user8"})
        for ws in list(socks.values()) + [extra]:
            await ws.close()

    asyncio.run(scenario())
    logged = [line for line in srv.error_log().splitlines() if "RTB0076" in line]
    # said once (per child), not once per refused join
    assert 1 <= len(logged) <= 2, logged
    assert "presence table is full" in logged[0] and "RTBoardPresenceSlots" in logged[0], logged
