"""Several nodes on one PostgreSQL: a change through one node reaches the
subscribers of every node on every transport, exactly once and in order;
writers on both nodes get one gap-free id sequence per board; clients
streaming through the front survive a node stopped (gracefully, then by
kill -9 of its whole process group) and a PostgreSQL restart with no event
lost or repeated. Presence, typing and cursors cross nodes too: a user on
one node is in the presence of users on the others, and the users of a node
that stops or dies leave everyone's list within 15 s (their typing ends).
Everything runs against a real PostgreSQL started here (scripts/pg.sh) and
real nodes (scripts/server.sh DBDRIVER=pgsql), on 127.0.0.1."""

import asyncio
import base64
import http.client
import json
import os
import subprocess
import threading
import time
import uuid

import pytest
import requests
import websockets

from harness import Client, Postgres, assert_error, unique, wait_until
from test_ws import VIEWS, connect, holder_pid, join, recv, settle

NODE = {"CHILDREN": 2, "THREADS": 25, "HEARTBEAT": 2}


def auth(user):
    return "Basic " + base64.b64encode(("%s:%s" % (user, user)).encode()).decode()


def status(server):
    return requests.get(server.url("/rtboard-status"), auth=("admin", "admin"),
                        timeout=10).json()["data"]


def bus_up(server):
    try:
        return status(server)["bus"]["connected"]
    except (requests.RequestException, ValueError, KeyError):
        return False


def start_nodes(servers, conninfo, n=2, **extra):
    settings = dict(NODE, DBDRIVER="pgsql", DBDPARAMS=conninfo)
    settings.update(extra)
    nodes = [servers.start(**settings) for _ in range(n)]
    for s in nodes:
        wait_until(lambda s=s: bus_up(s), 20, "the bus of %s to be up" % s.base)
    return nodes


def start_front(servers, nodes):
    return servers.start(ROLE="front", NODES=" ".join("127.0.0.1:%d" % s.port for s in nodes),
                         CHILDREN=2, THREADS=64)


# ---------------------------------------------------------------------------
# subscribers, one class per transport; each records the ids of the board's
# events it was given, in the order given


class SSEClient(threading.Thread):
    """An SSE subscriber; with reconnect=True it reconnects whenever its
    stream ends or fails, sending Last-Event-ID, like an EventSource."""

    def __init__(self, server, board, user="bob", reconnect=False, since=0):
        super().__init__(daemon=True)
        self.server, self.board, self.user = server, board, user
        self.reconnect = reconnect
        self.ids = []
        self.last = since
        self.connects = 0
        self.stopping = False
        self.error = None
        self.start()

    def _once(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            conn.request("GET", "/boards/%s/events" % self.board, headers={
                "Authorization": auth(self.user), "Accept": "text/event-stream",
                "Last-Event-ID": str(self.last)})
            r = conn.getresponse()
            if r.status != 200:
                r.read()
                return
            self.connects += 1
            eid, etype = None, None
            while not self.stopping:
                line = r.readline()
                if not line:
                    return
                line = line.decode().rstrip("\r\n")
                if line.startswith("id:"):
                    eid = int(line[3:].strip())
                elif line.startswith("event:"):
                    etype = line[6:].strip()
                elif line == "":
                    if eid is not None and etype not in ("reset", "reconnect"):
                        self.ids.append(eid)
                        self.last = eid
                    eid, etype = None, None
        finally:
            conn.close()

    def run(self):
        while not self.stopping:
            try:
                self._once()
            except (OSError, http.client.HTTPException) as e:
                self.error = e
            if not self.reconnect:
                return
            time.sleep(0.05)  # EventSource's retry, shortened

    def close(self):
        self.stopping = True


class WSClient(threading.Thread):
    """A WebSocket joined to one board; reconnects and resumes with
    lastEventId when reconnect=True."""

    def __init__(self, server, board, user="bob", reconnect=False):
        super().__init__(daemon=True)
        self.server, self.board, self.user = server, board, user
        self.reconnect = reconnect
        self.ids = []
        self.last = 0
        self.connects = 0
        self.stopping = False
        self.start()

    async def _once(self):
        url = "ws://127.0.0.1:%d/ws" % self.server.port
        async with websockets.connect(url, extra_headers={"Authorization": auth(self.user)},
                                      origin="http://127.0.0.1:%d" % self.server.port,
                                      open_timeout=10, close_timeout=1) as ws:
            await ws.send(json.dumps({"type": "join", "boardId": self.board,
                                      "lastEventId": self.last}))
            self.connects += 1
            while not self.stopping:
                try:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except asyncio.TimeoutError:
                    continue
                if "id" in m and m.get("boardId") == self.board and m.get("type") != "reset":
                    self.ids.append(m["id"])
                    self.last = m["id"]

    def run(self):
        while not self.stopping:
            try:
                asyncio.run(self._once())
            except (OSError, websockets.WebSocketException, asyncio.TimeoutError):
                pass
            if not self.reconnect:
                return
            time.sleep(0.05)

    def close(self):
        self.stopping = True


class PollClient(threading.Thread):
    """Long polling (long=True: /poll?timeout=) or short polling (/updates)."""

    def __init__(self, server, board, long=True, user="bob"):
        super().__init__(daemon=True)
        self.server, self.board, self.long = server, board, long
        self.s = requests.Session()
        self.s.auth = (user, user)
        self.ids = []
        self.last = 0
        self.stopping = False
        self.start()

    def run(self):
        while not self.stopping:
            if self.long:
                r = self.s.get(self.server.url("/boards/%s/poll" % self.board),
                               params={"since": self.last, "timeout": 2}, timeout=30)
            else:
                r = self.s.get(self.server.url("/boards/%s/updates" % self.board),
                               params={"since": self.last}, timeout=30)
            d = r.json()
            for e in d["data"]:
                self.ids.append(e["id"])
                self.last = e["id"]
            if not self.long and not d["data"]:
                time.sleep(0.05)  # the short-polling interval

    def close(self):
        self.stopping = True


def wait_all(clients, n, timeout, what):
    wait_until(lambda: all(len(c.ids) >= n for c in clients), timeout,
               "%s to get %d events (have %s)" % (what, n, [len(c.ids) for c in clients]),
               interval=0.1)


def close_all(clients):
    for c in clients:
        c.close()
    for c in clients:
        c.join(10)


# ---------------------------------------------------------------------------
# the tests


@pytest.fixture(scope="module")
def pg(servers):
    return servers.postgres()


@pytest.fixture(scope="module")
def two_nodes(servers, pg):
    return start_nodes(servers, pg.new_database())


def test_change_through_node1_reaches_node2_on_every_transport(two_nodes):
    n1, n2 = two_nodes
    a1 = n1.client("alice")
    b = a1.create_board(unique("cl"))
    bid, lists = b["id"], [l["id"] for l in b["lists"]]
    subs = [SSEClient(n2, bid), WSClient(n2, bid), PollClient(n2, bid, long=True),
            PollClient(n2, bid, long=False)]
    wait_until(lambda: subs[0].connects and subs[1].connects, 10, "the streams to open")
    for i in range(15):
        t = a1.create_task(bid, lists[0], "t%d" % i)
        if i % 3 == 0:
            a1.ok(a1.patch("/boards/%s/tasks/%d/move" % (bid, t["id"]),
                           {"listId": lists[1], "position": 0}))
    # an event too large for NOTIFY goes by id and is read from the table
    big = a1.create_task(bid, lists[2], "big", description="d" * 9000)
    last = a1.last_event_id(bid)
    assert last == 21
    wait_all(subs, last, 20, "node 2's subscribers")
    close_all(subs)
    for c in subs:
        assert c.ids == list(range(1, last + 1)), (type(c).__name__, c.ids)
    # the same events, read back from either node
    assert [e["id"] for e in n2.client("bob").events_since(bid)] == list(range(1, last + 1))
    assert big["description"] == "d" * 9000


def test_lost_listen_connection_is_healed(servers, pg, two_nodes):
    """The LISTEN connections cut (as by a network cut) while node 1 writes:
    node 2 reads what it missed from the table when it reconnects; its
    streams stay open and get every event once, in order."""
    n1, n2 = two_nodes
    a1 = n1.client("alice")
    b = a1.create_board(unique("ch"))
    bid, lid = b["id"], b["lists"][0]["id"]
    subs = [SSEClient(n2, bid), WSClient(n2, bid)]
    wait_until(lambda: all(c.connects for c in subs), 10, "the streams to open")
    before = status(n2)["bus"]
    for i in range(40):
        if i % 10 == 5:
            pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'rtboard-bus'", user="postgres", db="postgres")
        a1.create_task(bid, lid, "h%d" % i)
    wait_all(subs, 40, 30, "node 2's subscribers")
    close_all(subs)
    for c in subs:
        assert c.ids == list(range(1, 41)), (type(c).__name__, c.ids)
        assert c.connects == 1
    after = status(n2)["bus"]
    assert after["reconnects"] > before["reconnects"], (before, after)


def test_writers_on_both_nodes_one_gapless_sequence(two_nodes):
    n1, n2 = two_nodes
    a1 = n1.client("alice")
    b = a1.create_board(unique("cw"))
    bid, lid = b["id"], b["lists"][0]["id"]
    subs = [SSEClient(n1, bid), SSEClient(n2, bid), WSClient(n1, bid), WSClient(n2, bid)]
    wait_until(lambda: all(c.connects for c in subs), 10, "the streams to open")
    failures = []

    def writer(w):
        c = Client(two_nodes[w % 2], "alice")
        try:
            for i in range(200):
                r = c.post("/boards/%s/tasks" % bid, {"listId": lid, "title": "w%d-%d" % (w, i)})
                if r.status_code != 201:
                    failures.append((w, i, r.status_code, r.text[:200]))
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures[:5]
    assert a1.last_event_id(bid) == 1600
    assert len(a1.tasks(bid)) == 1600
    assert [e["id"] for e in a1.events_since(bid)] == list(range(1, 1601))
    wait_all(subs, 1600, 60, "subscribers on both nodes")
    close_all(subs)
    for c in subs:
        assert c.ids == list(range(1, 1601)), (type(c).__name__, c.server.port, len(c.ids))


def test_failover_through_the_front(servers, pg):
    """Clients stream through the front while node 1 stops gracefully (and
    comes back), then node 2 is killed with kill -9 of its process group: they
    reconnect through the front to the node left and resume, with no gap and
    no duplicate. Writes go through the front too, retried with the same
    Idempotency-Key when a node goes away under them."""
    nodes = start_nodes(servers, pg.new_database())
    front = start_front(servers, nodes)
    fa = front.client("alice")
    b = fa.create_board(unique("cf"))
    bid, lid = b["id"], b["lists"][0]["id"]
    subs = [SSEClient(front, bid, reconnect=True) for _ in range(8)]
    subs += [WSClient(front, bid, reconnect=True) for _ in range(4)]
    wait_until(lambda: all(c.connects for c in subs), 15, "the streams to open")
    written = [0]

    def write(n):
        for _ in range(n):
            key = str(uuid.uuid4())  # the same key on every retry: stored once
            body = {"listId": lid, "title": "f%d" % written[0]}

            def attempt():
                try:
                    r = fa.post("/boards/%s/tasks" % bid, body, timeout=10,
                                headers={"Idempotency-Key": key})
                except requests.RequestException:
                    return False
                return r.status_code == 201
            wait_until(attempt, 30, "task %d to be stored" % written[0], interval=0.1)
            written[0] += 1

    write(30)
    wait_all(subs, 30, 20, "the front's clients")
    nodes[0].stop()  # graceful: its streams get their last words and end
    write(30)
    wait_all(subs, 60, 30, "the clients of node 1, now on node 2")
    on_node1 = [c for c in subs if c.connects >= 2]
    assert on_node1, "no client was on node 1"
    nodes[0].start()
    wait_until(lambda: bus_up(nodes[0]), 20, "node 1's bus")
    write(20)
    wait_all(subs, 80, 20, "the clients")
    nodes[1].kill9()  # every client is on node 2 now
    write(40)
    wait_until(lambda: fa.ok(fa.get("/boards/%s" % bid))["lastEventId"] == 120, 20,
               "the board at 120")
    wait_all(subs, 120, 60, "the front's clients after the kill")
    close_all(subs)
    for c in subs:
        assert c.ids == list(range(1, 121)), (type(c).__name__, c.ids)
        assert c.connects >= 2, "a client was not cut by the kill"
    for c in on_node1:
        assert c.connects >= 3, "a client of node 1 was not cut twice"


def test_postgres_restart(servers):
    """PostgreSQL restarted under running nodes: streams stay open and catch
    up, writes during the outage answer a JSON 503 and succeed on retry with
    the same Idempotency-Key, and no event is lost."""
    pg = Postgres().start()
    try:
        n1, n2 = start_nodes(servers, pg.new_database())
        a1, a2 = n1.client("alice"), n2.client("alice")
        b = a1.create_board(unique("cr"))
        bid, lid = b["id"], b["lists"][0]["id"]
        subs = [SSEClient(n2, bid), WSClient(n1, bid), SSEClient(n1, bid), WSClient(n2, bid)]
        wait_until(lambda: all(c.connects for c in subs), 10, "the streams to open")
        for i in range(5):
            a1.create_task(bid, lid, "before%d" % i)
        wait_all(subs, 5, 20, "subscribers")

        pg.stop()
        wait_until(lambda: not bus_up(n1) and not bus_up(n2), 20, "both buses to be down")
        st = status(n2)["bus"]
        assert st["connected"] is False and st.get("error"), st
        keys = {}
        for node, c in ((n1, a1), (n2, a2)):
            key = str(uuid.uuid4())
            r = c.post("/boards/%s/tasks" % bid, {"listId": lid, "title": "during"},
                       headers={"Idempotency-Key": key})
            assert_error(r, 503)
            keys[node.port] = (c, key)

        pg.start()
        for c, key in keys.values():
            def stored(c=c, key=key):
                r = c.post("/boards/%s/tasks" % bid, {"listId": lid, "title": "during"},
                           headers={"Idempotency-Key": key})
                return r.status_code == 201 and r
            first = wait_until(stored, 30, "the retried write to succeed", interval=0.2)
            again = c.post("/boards/%s/tasks" % bid, {"listId": lid, "title": "during"},
                           headers={"Idempotency-Key": key})
            assert again.status_code == 201 and again.json() == first.json()
            assert again.headers.get("Idempotent-Replayed") == "true"
        wait_until(lambda: bus_up(n1) and bus_up(n2), 20, "both buses to be up again")
        for i in range(5):
            a2.create_task(bid, lid, "after%d" % i)
        assert a1.last_event_id(bid) == 12
        wait_all(subs, 12, 30, "subscribers after the restart")
        close_all(subs)
        for c in subs:
            assert c.ids == list(range(1, 13)), (type(c).__name__, c.ids)
            assert c.connects == 1, "a stream was cut by the outage"
    finally:
        for s in list(servers.servers):
            s.stop()
        pg.cleanup()


# ---------------------------------------------------------------------------
# presence, typing and cursors across nodes

# a node not heard for 10 s is reaped (rtb_peers); the bound the issue sets
GONE_WITHIN = 15


def presence_count(server, board):
    r = requests.get(server.url("/boards/%s/presence" % board), auth=("carol", "carol"),
                     timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["count"]


async def in_thread(f, *args):
    """Runs a blocking call (stopping a node) while the sockets' loop keeps going."""
    return await asyncio.get_running_loop().run_in_executor(None, f, *args)


async def until_gone(ws, board, user, typing_task=None, timeout=GONE_WITHIN):
    """Reads ws until `user` left its presence of `board` and, when typing_task
    is given, a user_stopped_typing of that user and task came; returns the
    seconds it took."""
    t0 = time.monotonic()
    view = VIEWS[(ws, board)]
    stopped = typing_task is None
    while user in view.users or not stopped:
        left = timeout - (time.monotonic() - t0)
        assert left > 0, "after %d s: presence %r, typing ended: %s" % (timeout, view.users,
                                                                          stopped)
        m = await recv(ws, left)
        if m["type"] in ("presence", "presence_diff") and m["boardId"] == board:
            view.apply(m)
        elif m["type"] == "user_stopped_typing":
            assert (m["userId"], m["taskId"], m["boardId"]) == (user, typing_task, board), m
            stopped = True
        else:
            assert m["type"] in ("user_typing", "cursor"), m
    assert view.count == len(view.users), (view.count, view.users)
    return time.monotonic() - t0


async def alice_and_bob_apart(n1, n2, bid):
    """alice on node 1 and bob on node 2, joined to bid; each sees the other."""
    alice = await connect(n1)
    await join(alice, bid)
    bob = await connect(n2, user="bob")
    await join(bob, bid)
    await settle(alice, bid, {"alice", "bob"}, 10)
    await settle(bob, bid, {"alice", "bob"}, 10)
    return alice, bob


def takeover(n1, n2):
    """The child of node 2 holding its LISTEN connection is killed (-9): another
    child of node 2 takes over and says hello; presence is rebuilt with no
    user announced as gone, and typing and arrivals cross again both ways."""
    bid = n1.client("alice").create_board(unique("ct"))["id"]

    async def scenario():
        alice = await connect(n1)
        await join(alice, bid)
        listener = status(n2)["bus"]["listener"]
        for _ in range(40):  # bob's socket in a child of node 2 that stays
            bob = await connect(n2, user="bob")
            if holder_pid(n2, bob.local_address[1]) != listener:
                break
            await bob.close()
        await join(bob, bid)
        await settle(alice, bid, {"alice", "bob"}, 10)
        await settle(bob, bid, {"alice", "bob"}, 10)

        os.kill(listener, 9)
        wait_until(lambda: status(n2)["bus"]["listener"] not in (0, listener)
                   and bus_up(n2), 10, "another child of node 2 to take the LISTEN over")
        # the whole lists were sent again: nobody left, on either side
        with pytest.raises(asyncio.TimeoutError):
            m = await asyncio.wait_for(alice.recv(), 2)
            raise AssertionError("alice got %s after the takeover" % m)
        await bob.send(json.dumps({"type": "typing", "boardId": bid, "taskId": 2}))
        assert (await recv(alice))["type"] == "user_typing"
        carol = await connect(n1, user="carol")
        await join(carol, bid)
        await settle(bob, bid, {"alice", "bob", "carol"}, 10)
        for ws in (alice, bob, carol):
            await ws.close()

    asyncio.run(scenario())


async def typing_when_node_ends(watcher, typist, bid, user, end, within=GONE_WITHIN):
    """`user` types on its socket `typist`; `end()` stops or kills its node:
    `watcher`, on another node, sees the user leave and the typing end within
    `within` seconds of end() returning."""
    await typist.send(json.dumps({"type": "typing", "boardId": bid, "taskId": 5}))
    assert (await recv(watcher))["type"] == "user_typing"
    await in_thread(end)
    took = await until_gone(watcher, bid, user, typing_task=5, timeout=within)
    assert took <= within


def test_presence_typing_and_cursors_cross_nodes(servers, pg):
    # nodes of its own: test_postgres_restart stops the module's
    n1, n2 = start_nodes(servers, pg.new_database())
    bid = n1.client("alice").create_board(unique("cp"))["id"]

    async def scenario():
        # each sees the other, whichever node they are on
        alice, bob = await alice_and_bob_apart(n1, n2, bid)
        for node in (n1, n2):
            assert presence_count(node, bid) == 2
            p = requests.get(node.url("/boards/%s/presence" % bid), auth=("carol", "carol"),
                             timeout=10).json()
            assert sorted(u["userId"] for u in p["users"]) == ["alice", "bob"], p

        # typing on node 2 reaches node 1, both ways of ending it
        await bob.send(json.dumps({"type": "typing", "boardId": bid, "taskId": 4}))
        assert await recv(alice) == {"type": "user_typing", "boardId": bid, "taskId": 4,
                                     "userId": "bob", "name": "bob"}
        await bob.send(json.dumps({"type": "stop_typing", "boardId": bid, "taskId": 4}))
        assert await recv(alice) == {"type": "user_stopped_typing", "boardId": bid,
                                     "taskId": 4, "userId": "bob", "name": "bob"}
        await alice.send(json.dumps({"type": "typing", "boardId": bid, "taskId": 9}))
        assert (await recv(bob))["type"] == "user_typing"
        await alice.send(json.dumps({"type": "stop_typing", "boardId": bid, "taskId": 9}))
        assert (await recv(bob))["type"] == "user_stopped_typing"

        # a cursor on node 1 reaches node 2
        await alice.send(json.dumps({"type": "cursor", "boardId": bid, "x": 3, "y": 4.5}))
        assert await recv(bob) == {"type": "cursor", "boardId": bid, "userId": "alice",
                                   "name": "alice", "x": 3, "y": 4.5}

        # a board event after it all: nobody got an echo of their own, nothing doubled
        n1.client("carol").create_task(bid, n1.client("carol").lists(bid)[0]["id"], "t")
        ea, eb = await recv(alice), await recv(bob)
        assert ea == eb and ea["type"] == "task_created", (ea, eb)

        # bob leaves: node 1 sees him go
        await bob.close()
        await settle(alice, bid, {"alice"}, 10)
        assert presence_count(n1, bid) == 1
        wait_until(lambda: presence_count(n2, bid) == 1, 10, "node 2 to count alice alone")
        await alice.close()
        wait_until(lambda: presence_count(n1, bid) == 0 and presence_count(n2, bid) == 0, 10,
                   "the board to be empty on both nodes")

    asyncio.run(scenario())
    takeover(n1, n2)
    for node in (n1, n2):
        bus = status(node)["bus"]
        assert len(bus["node"]) == 16 and len(bus["nodes"]) == 1, bus
        assert bus["nodes"][0]["node"] != bus["node"], bus
    assert status(n1)["bus"]["nodes"][0]["node"] == status(n2)["bus"]["node"]


def test_users_of_a_node_killed_or_stopped_leave_and_a_new_node_sees_those_present(
        servers, pg):
    """kill -9 of a node's whole process group while its user types: within
    15 s the others see the user leave and the typing end. A node started
    then gets the users already present (they resend on its hello); stopped
    gracefully, its users leave within 3 s of the stop (its "bye")."""
    conninfo = pg.new_database()
    n1, n2 = start_nodes(servers, conninfo)
    bid = n1.client("alice").create_board(unique("ck"))["id"]

    async def scenario():
        alice, bob = await alice_and_bob_apart(n1, n2, bid)
        await typing_when_node_ends(alice, bob, bid, "bob", n2.kill9)
        assert presence_count(n1, bid) == 1
        assert [n["users"] for n in status(n1)["bus"]["nodes"]] == []

        # a node started now: the users already there are in its presence
        n3 = await in_thread(lambda: start_nodes(servers, conninfo, n=1)[0])
        carol = await connect(n3, user="carol")
        await join(carol, bid)
        await settle(carol, bid, {"alice", "carol"}, 10)
        await settle(alice, bid, {"alice", "carol"}, 10)
        assert presence_count(n3, bid) == 2

        # stopped gracefully (its sockets closed with 1001): carol leaves at
        # once, its listener's "bye" (not the 10 s of silence a kill needs)
        await typing_when_node_ends(alice, carol, bid, "carol", n3.stop, within=3)
        assert presence_count(n1, bid) == 1
        await alice.close()
        await bob.close()
        await carol.close()

    asyncio.run(scenario())


def more_users(server):
    """The demo users plus p1..p9 (scripts/server.sh keeps an existing file)."""
    path = os.path.join(server.var, "htpasswd")
    for i, u in enumerate(["alice", "bob", "carol", "admin"] + ["p%d" % k for k in range(1, 10)]):
        p = subprocess.run(["htpasswd", "-b", "-B", "-C", "4"] + (["-c"] if i == 0 else [])
                           + [path, u, u], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert p.returncode == 0, p.stdout


def remote_users(server):
    try:
        return status(server)["bus"]["remoteUsers"]
    except (requests.RequestException, ValueError, KeyError):
        return None


def test_presence_through_the_front_when_a_node_stops_then_dies(servers, pg):
    """Users joined through the front stay in the presence of a user on node
    1 while node 2 stops gracefully, comes back and is then killed with
    kill -9 of its process group: node 2's users leave node 1's table within
    15 s each time, and, reconnected through the front to node 1, every user
    is present once."""
    nodes = start_nodes(servers, pg.new_database(), prepare=more_users)
    n1, n2 = nodes
    front = start_front(servers, nodes)
    bid = front.client("alice").create_board(unique("cf"))["id"]
    everyone = {"alice"}

    async def scenario():
        watcher = await connect(n1)
        await join(watcher, bid)
        clients = []

        async def more(names):
            clients.extend(WSClient(front, bid, user=u, reconnect=True) for u in names)
            everyone.update(names)
            await settle(watcher, bid, everyone, 20)

        def node2_users_gone(end):
            end()
            wait_until(lambda: remote_users(n1) == 0, GONE_WITHIN,
                       "node 2's users to leave node 1's table")

        await more(["p%d" % k for k in range(1, 7)])
        assert remote_users(n1) > 0, "no client went to node 2"
        await in_thread(node2_users_gone, n2.stop)
        # they came back through the front, to node 1: each present once
        await settle(watcher, bid, everyone, 20)
        wait_until(lambda: presence_count(n1, bid) == len(everyone), 10, "the count on node 1")

        await in_thread(lambda: n2.start() and wait_until(lambda: bus_up(n2), 20, "node 2's bus"))
        # the least busy node takes the next ones: node 2, back
        await more(["p7", "p8", "p9"])
        wait_until(lambda: remote_users(n1), 10, "users on node 2 again")
        wait_until(lambda: presence_count(n2, bid) == len(everyone), 10, "the count on node 2")
        await in_thread(node2_users_gone, n2.kill9)
        await settle(watcher, bid, everyone, 20)
        assert presence_count(n1, bid) == len(everyone)
        close_all(clients)
        assert any(c.connects >= 2 for c in clients[:6]), "the stop cut no client"
        assert any(c.connects >= 2 for c in clients[6:]), "the kill cut no client"
        await watcher.close()

    asyncio.run(scenario())


def health(server):
    return requests.get(server.url("/rtboard-health"), timeout=10)


def front_members_in_error(front):
    """How many balancer members the front's status page shows failing
    their health check (mod_proxy_hcheck's HcFl)."""
    page = requests.get(front.url("/front-status"), timeout=10).text
    return page.count("HcFl")


def test_health_follows_the_database(servers):
    """GET /rtboard-health answers 200 while the node's database answers and
    its bus is up, a JSON 503 while PostgreSQL is stopped, 200 again once it
    is back; the front's HTTP health checks take the nodes out and back."""
    pg = Postgres().start()
    try:
        n1, n2 = start_nodes(servers, pg.new_database())
        for n in (n1, n2):
            r = health(n)
            assert r.status_code == 200, r.text
            assert r.json()["data"] == {"status": "ok", "database": "ok", "bus": "connected"}
            assert r.headers.get("Cache-Control") == "no-store"
        front = start_front(servers, [n1, n2])
        wait_until(lambda: front.client("alice").get("/boards/demo").status_code == 200, 20,
                   "the front to serve")
        assert front_members_in_error(front) == 0

        pg.stop()
        for n in (n1, n2):
            # a Response of status 503 is falsy: wait on a list holding it
            r = wait_until(lambda n=n: [x for x in [health(n)] if x.status_code == 503], 20,
                           "the health of %s to fail" % n.base, interval=0.2)[0]
            assert_error(r, 503)
            assert r.json()["error"]["code"] in ("database_unavailable", "bus_disconnected")
        wait_until(lambda: front_members_in_error(front) == 4, 20,
                   "the front to take every member out")

        pg.start()
        for n in (n1, n2):
            wait_until(lambda n=n: health(n).status_code == 200, 30,
                       "the health of %s to come back" % n.base, interval=0.2)
        wait_until(lambda: front_members_in_error(front) == 0, 20,
                   "the front to take the members back")
        assert front.client("alice").get("/boards/demo").status_code == 200
    finally:
        for s in list(servers.servers):
            s.stop()
        pg.cleanup()
