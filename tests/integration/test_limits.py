"""Per-user caps: streams and sockets one user may hold on the whole server
(RTBoardMaxStreamsPerUser), and boards one user may create per minute
(RTBoardBoardsPerMinute). Clear 429s, others unaffected, counts given back."""

import os
import signal

import pytest
import requests

from harness import unique, wait_until
from test_ws_protocol import RawWS

STREAMS = 5
BOARDS = 3


@pytest.fixture(scope="module")
def srv(servers):
    return servers.start(CHILDREN=2, USERSTREAMS=STREAMS, BOARDRATE=BOARDS)


def sse(srv, board, user="alice"):
    r = requests.get(srv.url("/boards/%s/events" % board), auth=(user, user), stream=True,
                     timeout=10)
    return r


def test_streams_per_user_are_capped_across_transports_and_children(srv):
    alice, bob = srv.client("alice"), srv.client("bob")
    # the board is made by bob: alice's creation budget is for the next test
    bid = bob.create_board(unique("lim"))["id"]
    held = [sse(srv, bid) for _ in range(STREAMS)]
    try:
        assert [r.status_code for r in held] == [200] * STREAMS
        r = sse(srv, bid)
        assert r.status_code == 429, r.status_code
        assert r.json()["error"]["code"] == "too_many_streams"
        assert int(r.headers["Retry-After"]) > 0
        r = alice.get("/boards/%s/poll?timeout=5" % bid)
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_streams"
        with RawWS(srv.port, "/boards/%s/ws" % bid) as ws:
            assert ws.status == 429, (ws.status, ws.body)
        # short answers are not streams: still served
        assert alice.get("/boards/%s" % bid).status_code == 200
        assert alice.get("/boards/%s/poll?timeout=0" % bid).status_code == 200
        # another user is not affected
        other = sse(srv, bid, "bob")
        assert other.status_code == 200
        other.close()
        # a closed stream gives its place back
        held.pop().close()

        def reopened():
            r = sse(srv, bid)
            if r.status_code == 200:
                held.append(r)
                return True
            r.close()
            return False
        wait_until(reopened, 10, "a stream after one was closed")
    finally:
        for r in held:
            r.close()


def test_streams_of_a_killed_child_are_given_back(srv):
    bob = srv.client("bob")
    bid = bob.create_board(unique("lim"))["id"]
    held = [sse(srv, bid, "carol") for _ in range(STREAMS)]
    try:
        assert [r.status_code for r in held] == [200] * STREAMS
        assert sse(srv, bid, "carol").status_code == 429
        # kill -9 every child: their counts must not stay behind
        for pid in srv.child_pids():
            os.kill(pid, signal.SIGKILL)
        for r in held:
            r.close()

        def served():
            r = sse(srv, bid, "carol")
            ok = r.status_code == 200
            r.close()
            return ok
        wait_until(served, 20, "carol's streams after her children were killed")
    finally:
        for r in held:
            r.close()


def test_board_creation_is_rate_limited_per_user(srv):
    alice, bob = srv.client("alice"), srv.client("bob")
    made = [alice.post("/boards", {"name": "b%d" % i}) for i in range(BOARDS)]
    assert [r.status_code for r in made] == [201] * BOARDS, [r.text for r in made]
    r = alice.post("/boards", {"name": "one too many"})
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "too_many_boards"
    assert int(r.headers["Retry-After"]) >= 1
    assert "one too many" not in [b["name"] for b in alice.boards()]
    assert bob.post("/boards", {"name": "bob's"}).status_code == 201
