"""Operations: GET /rtboard-metrics (SetHandler rtboard-metrics) answers the
Prometheus text exposition format 0.0.4, read here by the reference parser
(Debian's python3-prometheus-client), and its counters follow what the server
does: writes, streams, WebSockets, a slow client cut, database failures, and a
child process killed (its counts must not be lost).

The location is `Require local` in the shipped configurations; the test
servers listen on 127.0.0.1 only, so what a remote client gets (403) is left
to Apache's mod_authz_host and not exercised here."""

import asyncio
import json
import os
import signal
import socket
import sqlite3

import pytest
import requests
import websockets
from prometheus_client.parser import text_string_to_metric_families

from harness import pid_alive, wait_until
from test_sse import SSEStream, basic

OUTPUT_CAP = 16 * 1024

# family name (counters without _total, as the parser names them) -> type
FAMILIES = {
    "rtboard_connections": "gauge",
    "rtboard_children": "gauge",
    "rtboard_events_published": "counter",
    "rtboard_events_delivered": "counter",
    "rtboard_slow_clients_cut": "counter",
    "rtboard_ring_records": "gauge",
    "rtboard_ring_used_bytes": "gauge",
    "rtboard_ring_capacity_bytes": "gauge",
    "rtboard_ring_evictions": "counter",
    "rtboard_write_batches": "counter",
    "rtboard_commit_duration_seconds": "histogram",
    "rtboard_presence_leases": "gauge",
    "rtboard_database_errors": "counter",
}
TRANSPORTS = ("sse", "longpoll", "ws", "blocking")
COUNTERS = ("rtboard_events_published_total", "rtboard_events_delivered_total",
            "rtboard_slow_clients_cut_total", "rtboard_ring_evictions_total",
            "rtboard_write_batches_total", "rtboard_database_errors_total",
            "rtboard_commit_duration_seconds_count", "rtboard_commit_duration_seconds_sum")


def write_cap_conf(server):
    """A small output cap, so that a client that stops reading is cut soon."""
    os.makedirs(os.path.join(server.var, "conf.d"), exist_ok=True)
    with open(os.path.join(server.var, "conf.d", "cap.conf"), "w") as f:
        f.write("RTBoardOutputCap %d\n" % OUTPUT_CAP)


@pytest.fixture(scope="module")
def srv(servers):
    return servers.start(private_module=True, CHILDREN=2, prepare=write_cap_conf)


@pytest.fixture(scope="module")
def alice(srv):
    """alice on this module's server (conftest's `board` fixture uses it too)."""
    return srv.client("alice")


class Scrape:
    """One answer of /rtboard-metrics, parsed: families by name, sample values."""

    def __init__(self, server):
        r = requests.get(server.base + "/rtboard-metrics", timeout=10)  # no credentials
        assert r.status_code == 200, (r.status_code, r.text[:300])
        self.response = r
        self.families = {f.name: f for f in text_string_to_metric_families(r.text)}

    def value(self, name, **labels):
        for f in self.families.values():
            for s in f.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        raise AssertionError("no sample %s%r in the scrape" % (name, labels))

    def conns(self, transport):
        return self.value("rtboard_connections", transport=transport)


def test_exposition_parses_with_every_family_and_type(srv):
    m = Scrape(srv)
    ctype = m.response.headers["Content-Type"]
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    for name, typ in FAMILIES.items():
        assert name in m.families, "family %s missing; got %s" % (name, sorted(m.families))
        assert m.families[name].type == typ, (name, m.families[name].type)
        assert m.families[name].documentation, "%s has no HELP" % name
    # every counter sample ends in _total; gauges by transport carry all four labels
    for name, typ in FAMILIES.items():
        if typ == "counter":
            assert [s.name for s in m.families[name].samples] == [name + "_total"]
    assert sorted(s.labels["transport"] for s in m.families["rtboard_connections"].samples) \
        == sorted(TRANSPORTS)
    # the histogram: cumulative buckets in order, +Inf equal to _count
    h = m.families["rtboard_commit_duration_seconds"].samples
    buckets = [s for s in h if s.name.endswith("_bucket")]
    les = [s.labels["le"] for s in buckets]
    assert les[-1] == "+Inf" and len(les) >= 10, les
    assert [float(x) for x in les[:-1]] == sorted(float(x) for x in les[:-1])
    counts = [s.value for s in buckets]
    assert counts == sorted(counts), counts
    assert counts[-1] == m.value("rtboard_commit_duration_seconds_count")
    assert m.value("rtboard_commit_duration_seconds_sum") >= 0
    assert m.value("rtboard_children") == 2
    assert m.value("rtboard_ring_capacity_bytes") > 0
    # the raw text has the HELP/TYPE lines of the format, counters named *_total
    assert "# TYPE rtboard_events_published_total counter\n" in m.response.text
    assert "# HELP rtboard_commit_duration_seconds " in m.response.text
    head = requests.head(srv.base + "/rtboard-metrics", timeout=10)
    assert head.status_code == 200 and head.headers["Content-Type"] == ctype
    post = requests.post(srv.base + "/rtboard-metrics", timeout=10)
    assert post.status_code == 405 and post.headers["Allow"] == "GET"


def test_writes_and_a_stream_move_the_counters(srv, alice, board):
    bid, lists = board
    before = Scrape(srv)
    with SSEStream(srv, "/boards/%s/events" % bid) as s:
        s.wait_connected()
        wait_until(lambda: Scrape(srv).conns("sse") == before.conns("sse") + 1, 10,
                   "the stream counted in rtboard_connections{transport=\"sse\"}")
        for i in range(3):
            alice.create_task(bid, lists[0], "m%d" % i)
        wait_until(lambda: Scrape(srv).value("rtboard_events_delivered_total")
                   >= before.value("rtboard_events_delivered_total") + 3, 10,
                   "three events delivered to the stream")
        after = Scrape(srv)
    assert after.value("rtboard_events_published_total") \
        == before.value("rtboard_events_published_total") + 3
    batches = after.value("rtboard_write_batches_total") \
        - before.value("rtboard_write_batches_total")
    assert 1 <= batches <= 3, batches  # group commit may run some in one batch
    commits = after.value("rtboard_commit_duration_seconds_count") \
        - before.value("rtboard_commit_duration_seconds_count")
    assert commits == batches
    assert after.value("rtboard_commit_duration_seconds_sum") \
        > before.value("rtboard_commit_duration_seconds_sum")
    assert after.value("rtboard_ring_records") == before.value("rtboard_ring_records") + 3
    assert after.value("rtboard_ring_used_bytes") > before.value("rtboard_ring_used_bytes")
    assert after.value("rtboard_database_errors_total") \
        == before.value("rtboard_database_errors_total")
    wait_until(lambda: Scrape(srv).conns("sse") == before.conns("sse"), 10,
               "the closed stream no longer counted")


def test_a_long_poll_is_counted_while_it_waits(srv, alice, board):
    bid, lists = board
    base = Scrape(srv).conns("longpoll")
    since = alice.last_event_id(bid)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        s.sendall(("GET /boards/%s/poll?since=%d&timeout=20 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Authorization: %s\r\n\r\n" % (bid, since, basic("alice"))).encode())
        wait_until(lambda: Scrape(srv).conns("longpoll") == base + 1, 10,
                   "the waiting long poll counted")
        alice.create_task(bid, lists[0], "wake")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(65536)
            assert chunk, "the long poll closed without an answer"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    finally:
        s.close()
    wait_until(lambda: Scrape(srv).conns("longpoll") == base, 10, "the answered poll uncounted")


def test_a_websocket_on_a_board_holds_a_presence_lease(srv, board):
    bid, _ = board
    before = Scrape(srv)

    async def run():
        ws = await websockets.connect("ws://127.0.0.1:%d/boards/%s/ws" % (srv.port, bid),
                                      extra_headers={"Authorization": basic("alice")},
                                      open_timeout=10, close_timeout=3, ping_interval=None)
        try:
            # `connected`, `joined`, then the presence list: the lease is taken
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if m["type"] == "presence":
                    break
            during = await asyncio.to_thread(Scrape, srv)
        finally:
            await ws.close()
        return during

    during = asyncio.run(run())
    assert during.conns("ws") == before.conns("ws") + 1
    assert during.value("rtboard_presence_leases") \
        == before.value("rtboard_presence_leases") + 1
    wait_until(lambda: (lambda m: m.conns("ws") == before.conns("ws") and
                        m.value("rtboard_presence_leases")
                        == before.value("rtboard_presence_leases"))(Scrape(srv)), 10,
               "the closed socket's connection and lease gone")


def test_a_client_that_stops_reading_is_cut_and_counted(srv, alice, board):
    bid, lists = board
    before = Scrape(srv).value("rtboard_slow_clients_cut_total")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.settimeout(10)
    try:
        s.connect(("127.0.0.1", srv.port))
        s.sendall(("GET /boards/%s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Authorization: %s\r\n\r\n" % (bid, basic("alice"))).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1024)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        wait_until(lambda: Scrape(srv).conns("sse") >= 1, 10, "the stream counted")
        # then it reads nothing more: each event is ~9 KB, the cap 16 KB; bounded at 300
        big = "x" * 9000
        cut = False
        for i in range(300):
            alice.create_task(bid, lists[i % 3], "big %d" % i, description=big)
            if Scrape(srv).value("rtboard_slow_clients_cut_total") > before:
                cut = True
                break
        assert cut, "the stream was not cut after 300 events of 9 KB"
    finally:
        s.close()
    assert Scrape(srv).value("rtboard_slow_clients_cut_total") == before + 1


def test_database_failures_are_counted(srv, alice, board):
    bid, lists = board
    before = Scrape(srv).value("rtboard_database_errors_total")
    conn = sqlite3.connect(os.path.join(srv.var, "db", "rtboard.db"), timeout=10,
                           isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")  # writers cannot start: 503 database_busy
        r = alice.post("/boards/%s/tasks" % bid, {"listId": lists[0], "title": "refused"})
        assert r.status_code == 503, r.text
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    assert Scrape(srv).value("rtboard_database_errors_total") > before
    after = Scrape(srv).value("rtboard_database_errors_total")
    alice.create_task(bid, lists[0], "accepted")  # a good write adds no error
    assert Scrape(srv).value("rtboard_database_errors_total") == after


def _children(server):
    pid = server.master_pid()
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(p) for p in f.read().split()]


def test_counters_survive_a_killed_child(srv, alice, board):
    """A child's counts stay in the sums after it dies and after its slot is
    reused by the child that replaces it: no counter ever goes backwards."""
    bid, lists = board
    streams = [SSEStream(srv, "/boards/%s/events" % bid) for _ in range(4)]
    try:
        for s in streams:
            s.wait_connected()
        for i in range(2):
            alice.create_task(bid, lists[0], "k%d" % i)
        for s in streams:
            s.wait_ids(2)

        def delivered_by():
            st = srv.client("admin").get("/rtboard-status").json()["data"]
            return {c["pid"]: c["delivered"] for c in st["children"]}
        counts = wait_until(lambda: (lambda d: d if sum(d.values()) > 0 else None)(
            delivered_by()), 10, "deliveries counted per child")
        victim = max(counts, key=counts.get)
        assert counts[victim] > 0
        before = Scrape(srv)
        status_before = srv.client("admin").get("/rtboard-status").json()["data"]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not pid_alive(victim), 10, "the child to die")
        last = {n: before.value(n) for n in COUNTERS}

        def monotonic_and_replaced():
            m = Scrape(srv)
            for n in COUNTERS:
                v = m.value(n)
                assert v >= last[n], "%s went backwards: %s -> %s" % (n, last[n], v)
                last[n] = v
            kids = _children(srv)
            return len(kids) == 2 and victim not in kids and m.value("rtboard_children") == 2
        wait_until(monotonic_and_replaced, 20, "a replacement child holding the slot")
    finally:
        for s in streams:
            s.close()
    # the new child took the dead one's slot (the first free or dead one): its
    # counts were folded into the retired totals, not lost
    after = Scrape(srv)
    for n in COUNTERS:
        assert after.value(n) >= before.value(n), n
    # /rtboard-status's totals are the same sums
    status_after = srv.client("admin").get("/rtboard-status").json()["data"]
    assert status_after["delivered"] >= status_before["delivered"] > 0
    assert status_after["writeBatches"] >= status_before["writeBatches"] > 0
    # and the server goes on counting
    alice.create_task(bid, lists[0], "after")
    wait_until(lambda: Scrape(srv).value("rtboard_events_published_total")
               == before.value("rtboard_events_published_total") + 1, 10, "one more event")
