"""Many SSE streams on few threads, and a child process killed under them.

Streams are suspended connections held by each child's event loop: with
2 children x 25 threads, 500 streams must all get every event, in order,
once, while REST requests still find free worker threads.
"""

import json
import os
import signal
import time

import pytest
import requests

from harness import pid_alive, wait_until
from test_sse import (Fleet, SSEStream, Writer, busy_workers, ids,
                      new_board, status)


@pytest.fixture(scope="module")
def scale_srv(servers):
    return servers.start(CHILDREN=2, THREADS=25)


def dead(pid):
    """Gone, or a zombie not yet reaped."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return not pid_alive(pid)


def rest_answers(server, board, last):
    """A plain REST GET on a fresh connection; returns its duration."""
    t0 = time.monotonic()
    r = requests.get(server.url("/boards/" + board), auth=("alice", "alice"), timeout=10,
                     headers={"Connection": "close"})
    assert r.status_code == 200 and r.json()["lastEventId"] == last, r.text[:300]
    return time.monotonic() - t0


@pytest.mark.parametrize("n", [20, 500])
def test_many_streams_get_every_event_in_order_once(scale_srv, n):
    srv = scale_srv
    alice = srv.client("alice")
    board, lists = new_board(alice, "many")
    alice.create_task(board, lists[0], "before")
    fleet = Fleet(srv, "/boards/%s/events" % board, n)
    try:
        fleet.open()
        wait_until(lambda: fleet.count(lambda c: c.connected()) == n or
                   fleet.count(lambda c: c.eof), 20, "%d streams connected" % n)
        assert fleet.count(lambda c: c.eof) == 0
        assert all(c.http.status == 200 for c in fleet.conns)
        st = wait_until(lambda: (lambda s: s if s["connections"]["sse"] == n and
                                 s["boards"].get(board) == n else None)(status(srv)),
                        10, "/rtboard-status to count %d streams" % n)
        assert sum(c["connections"]["sse"] for c in st["children"]) == n, st["children"]
        assert st["connections"]["blocking"] == 0, st
        # the streams hold no worker threads: REST still answers, at once
        assert busy_workers(srv) <= 5
        for _ in range(3):
            assert rest_answers(srv, board, 1) < 3

        made = [alice.create_task(board, lists[i % 3], "e%d" % i) for i in range(20)]
        want = alice.events_since(board, 1)
        assert [e["id"] for e in want] == list(range(2, 22))
        wait_until(lambda: fleet.count(lambda c: len(c.events()) >= 20) == n, 30,
                   "every stream to get 20 events")
        for c in fleet.conns:
            evs = c.events()
            assert ids(evs) == list(range(2, 22)), ids(evs)
            assert [json.loads(b.data) for b in evs] == want
            assert [b.event for b in evs] == ["task_created"] * 20
        assert [e["data"]["task"] for e in want] == made
        assert fleet.count(lambda c: c.eof) == 0
    finally:
        fleet.close()
    wait_until(lambda: status(srv)["connections"]["sse"] == 0, 10, "no streams counted")


# ---------------------------------------------------------------------------
# kill -9 of a child holding streams


@pytest.fixture(scope="module")
def kill_srv(servers):
    return servers.start(CHILDREN=2, THREADS=25)


def test_kill_9_of_a_child_loses_no_event_for_the_other_childs_streams(kill_srv):
    srv = kill_srv
    alice = srv.client("alice")
    board, lists = new_board(alice, "kill")
    streams = []
    w = Writer(srv, board, lists[0])
    try:
        # open streams until both children hold some (at most 20, to keep the test short)
        def per_child():
            return {c["pid"]: c["connections"]["sse"] for c in status(srv)["children"]}
        counts = {}
        while len(streams) < 20:
            s = SSEStream(srv, "/boards/%s/events" % board)
            streams.append(s)
            assert s.wait_connected() == 0
            counts = wait_until(lambda: (lambda d: d if sum(d.values()) == len(streams)
                                         else None)(per_child()), 5, "the stream counted")
            if len(streams) >= 6 and len([v for v in counts.values() if v >= 2]) >= 2:
                break
        held = {pid: k for pid, k in counts.items() if k}
        assert len(held) == 2, "the streams all went to one child: %r" % counts
        victim, survivor = sorted(held, key=held.get, reverse=True)

        w.start()
        for s in streams:
            s.wait_ids(3)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: dead(victim), 5, "the child to die")
        wait_until(lambda: sum(1 for s in streams if s.eof) == held[victim], 10,
                   "the victim's %d streams to be cut" % held[victim])
        alive = [s for s in streams if not s.eof]
        assert len(alive) == held[survivor]
        # the writer goes on (some of its POSTs may have died with the child)
        cut_at = max(int(s.last_id()) for s in streams)
        for s in alive:
            s.wait(lambda x: int(x.last_id()) >= cut_at + 5, 15, "events after the kill")
        w.stop()
        final = alice.last_event_id(board)
        log = alice.events_since(board, 0)
        assert [e["id"] for e in log] == list(range(1, final + 1))
        for s in alive:
            s.wait(lambda x: int(x.last_id()) == final, 10, "event %d" % final)
            assert ids(s.events) == list(range(1, final + 1))
            assert [b.json() for b in s.events] == log
            assert not s.eof
        # no goodbye on the killed streams: they were cut, not ended
        for s in streams:
            if s.eof:
                assert all(m.event != "reconnect" for m in s.messages)

        # the status page stops counting the dead child
        def settled():
            st = status(srv)
            pids = [c["pid"] for c in st["children"]]
            return st if victim not in pids and st["connections"]["sse"] == len(alive) else None
        wait_until(settled, 10, "/rtboard-status to forget the dead child")
        wait_until(lambda: status(srv)["boards"].get(board) == len(alive), 5,
                   "the board's stream count")
        # and the server still serves new streams and writes
        with SSEStream(srv, "/boards/%s/events" % board,
                       headers={"Last-Event-ID": str(final - 2)}) as s:
            assert ids(s.wait_ids(2)) == [final - 1, final]
    finally:
        w.stop()
        for s in streams:
            s.close()
