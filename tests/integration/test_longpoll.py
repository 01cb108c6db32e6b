"""Long polling: GET /boards/:b/poll?since=N&timeout=S answers as soon as an
event commits, answers {"data": [], "timeout": true, ...} after S seconds,
never loses what was published between two polls, and holds no worker
thread while it waits."""

import json
import threading
import time

import pytest
import requests

from harness import assert_error, crash_lines, wait_until
from test_sse import Fleet, busy_workers, new_board, status

POLL_KEYS = {"data", "lastEventId", "timeout"}


@pytest.fixture(scope="module")
def srv(servers):
    return servers.start(CHILDREN=2, THREADS=25)


@pytest.fixture(scope="module")
def alice(srv):
    return srv.client("alice")


@pytest.fixture
def pboard(alice):
    return new_board(alice, "lp")


def poll(server, board, since=None, timeout=None, user="alice"):
    """One long poll on a fresh connection: (status, body, seconds taken)."""
    params = {}
    if since is not None:
        params["since"] = since
    if timeout is not None:
        params["timeout"] = timeout
    t0 = time.monotonic()
    r = requests.get(server.url("/boards/%s/poll" % board), params=params,
                     auth=(user, user), timeout=60, headers={"Connection": "close"})
    return r, time.monotonic() - t0


class Poller(threading.Thread):
    def __init__(self, server, board, since, timeout):
        super().__init__(daemon=True)
        self.args = (server, board, since, timeout)
        self.result = None

    def run(self):
        self.result = poll(*self.args)


def longpolls(server):
    return status(server)["connections"]["longpoll"]


def test_poll_answers_as_soon_as_an_event_commits(srv, alice, pboard):
    board, lists = pboard
    last = alice.last_event_id(board)
    p = Poller(srv, board, last, 20)
    p.start()
    wait_until(lambda: longpolls(srv) == 1, 5, "the poll to be held")
    t0 = time.monotonic()
    task = alice.create_task(board, lists[0], "wake up")
    p.join(15)
    assert not p.is_alive(), "the poll did not answer"
    r, took = p.result
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    d = r.json()
    assert set(d) == POLL_KEYS, d
    assert d["timeout"] is False and d["lastEventId"] == last + 1, d
    assert len(d["data"]) == 1 and d["data"][0]["id"] == last + 1, d
    assert d["data"][0]["type"] == "task_created" and d["data"][0]["data"]["task"] == task
    assert d["data"] == alice.events_since(board, last)
    # well before the 20 s timeout: it answered because of the event
    assert took < 10, took
    assert time.monotonic() - t0 < 10
    wait_until(lambda: longpolls(srv) == 0, 5, "the poll to be released")


def test_poll_times_out_with_an_empty_answer(srv, alice, pboard):
    board, lists = pboard
    alice.create_task(board, lists[0], "x")
    r, took = poll(srv, board, 1, 2)
    assert r.status_code == 200, r.text
    assert r.json() == {"data": [], "timeout": True, "lastEventId": 1}
    assert 1.9 <= took < 8, took
    # without since: waits from the newest event
    r, took = poll(srv, board, None, 1)
    assert r.json() == {"data": [], "timeout": True, "lastEventId": 1}
    assert 0.9 <= took < 6, took


def test_poll_with_timeout_zero_answers_at_once(srv, alice, pboard):
    board, _ = pboard  # a new board: since=0 is its newest id (since > 0 crashes the child)
    r, took = poll(srv, board, 0, 0)
    assert r.status_code == 200, r.text
    assert took < 5, took
    assert r.json() == {"data": [], "lastEventId": 0, "timeout": True}


def test_poll_with_older_since_answers_at_once(srv, alice, pboard):
    board, lists = pboard
    made = [alice.create_task(board, lists[0], "t%d" % i) for i in range(3)]
    r, took = poll(srv, board, 0, 20)
    d = r.json()
    assert [e["id"] for e in d["data"]] == [1, 2, 3], d
    assert [e["data"]["task"] for e in d["data"]] == made
    assert d["lastEventId"] == 3 and took < 10
    r, _ = poll(srv, board, 2, 20)
    assert [e["id"] for e in r.json()["data"]] == [3]


def test_events_published_between_polls_are_never_lost(srv, alice, pboard):
    board, lists = pboard
    cursor = alice.last_event_id(board)
    start = cursor
    got = []
    # deterministic: events created while no poll is open come with the next one
    p = Poller(srv, board, cursor, 20)
    p.start()
    wait_until(lambda: longpolls(srv) == 1, 5, "the poll to be held")
    alice.create_task(board, lists[0], "first")
    p.join(15)
    d = p.result[0].json()
    got += d["data"]
    cursor = d["lastEventId"]
    alice.create_task(board, lists[0], "between 1")
    alice.create_task(board, lists[0], "between 2")
    r, took = poll(srv, board, cursor, 20)
    d = r.json()
    assert [e["id"] for e in d["data"]] == [cursor + 1, cursor + 2], d
    assert d.get("timeout", False) is False and took < 10
    got += d["data"]
    cursor = d["lastEventId"]

    # a held poll answered by an event, then events between polls again, in turns
    for k in (0, 1, 3, 0, 2):
        made = [alice.create_task(board, lists[0], "k%d-%d" % (k, i)) for i in range(k)]
        if not made:
            p = Poller(srv, board, cursor, 20)
            p.start()
            wait_until(lambda: longpolls(srv) == 1, 5, "the poll to be held")
            alice.create_task(board, lists[1], "while held")
            p.join(15)
            r, took = p.result
            k = 1
        else:
            r, took = poll(srv, board, cursor, 20)
        d = r.json()
        assert [e["id"] for e in d["data"]] == list(range(cursor + 1, cursor + k + 1)), d
        assert took < 10
        got += d["data"]
        cursor = d["lastEventId"]
    final = alice.last_event_id(board)
    assert cursor == final
    assert [e["id"] for e in got] == list(range(start + 1, final + 1))
    assert got == alice.events_since(board, start)


@pytest.fixture(scope="module")
def race_srv(servers):
    # this test reads error.log itself: a crash is its (expected) failure
    return servers.start(CHILDREN=2, THREADS=25, check_crash=False)


def test_long_polls_racing_writers_lose_nothing_and_crash_nothing(race_srv):
    srv = race_srv
    alice = srv.client("alice")
    board, lists = new_board(alice, "race")
    stop = threading.Event()
    problems = []
    results = {}

    def writer():
        c = srv.client("alice")
        i = 0
        while not stop.is_set():
            i += 1
            try:
                c.create_task(board, lists[i % 3], "w%d" % i)
            except Exception as e:
                problems.append("POST: %r" % e)
                return

    def poller(k):
        cursor, got = 0, []
        while not stop.is_set():
            try:
                r, _ = poll(srv, board, cursor, 2)
                d = r.json()
            except Exception as e:
                problems.append("poll: %r" % e)
                return
            got += d["data"]
            cursor = d["lastEventId"]
        results[k] = (cursor, got)

    threads = ([threading.Thread(target=writer, daemon=True) for _ in range(2)] +
               [threading.Thread(target=poller, args=(k,), daemon=True) for k in range(8)])
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not problems:
            crashed = crash_lines(srv.error_log())
            assert not crashed, crashed
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    if problems:  # a dead child is logged when the parent reaps it
        try:
            wait_until(lambda: crash_lines(srv.error_log()), 3, "a crash report")
        except AssertionError:
            pass
    crashed = crash_lines(srv.error_log())
    assert not crashed, crashed
    assert not problems, problems[:5]
    final = alice.last_event_id(board)
    log = alice.events_since(board, 0)
    assert len(results) == 8 and final > 50
    for cursor, got in results.values():
        # each poller saw a gapless prefix of the log, in order
        assert got == log[:cursor], (cursor, [e["id"] for e in got][:20])


def test_poll_errors(srv, alice, pboard):
    board, _ = pboard
    r, _ = poll(srv, board, "abc", 1)
    assert_error(r, 400, field="since")
    r, _ = poll(srv, board, 1, "soon")
    assert_error(r, 400, field="timeout")
    r, _ = poll(srv, "no-such-board", 0, 1)
    assert_error(r, 404)
    r, _ = poll(srv, "private", 0, 1, user="bob")
    assert r.status_code in (401, 403), r.text
    r, _ = poll(srv, "private", None, 1, user="alice")
    assert r.status_code == 200 and r.json()["timeout"] is True, r.text


def test_poll_with_a_future_since_gets_a_reset(srv, alice, pboard):
    board, lists = pboard
    alice.create_task(board, lists[0], "x")
    r, took = poll(srv, board, 50, 10)
    d = r.json()
    assert took < 5, took
    assert d["lastEventId"] == 1 and len(d["data"]) == 1, d
    assert d["data"][0]["type"] == "reset" and d["data"][0]["lastEventId"] == 1, d


@pytest.mark.parametrize("n", [20, 200])
def test_concurrent_long_polls_hold_no_worker_threads(srv, alice, pboard, n):
    board, lists = pboard
    last = alice.last_event_id(board)
    fleet = Fleet(srv, "/boards/%s/poll?since=%d&timeout=60" % (board, last), n,
                  parse_sse=False, headers={"Accept": "application/json"})
    try:
        fleet.open()
        wait_until(lambda: longpolls(srv) == n, 15, "%d polls held" % n)
        assert fleet.count(lambda c: c.eof) == 0
        # 2 children x 25 threads: the polls hold none, a REST request gets one at once
        assert busy_workers(srv) <= 5
        for _ in range(3):
            t0 = time.monotonic()
            r = requests.get(srv.url("/boards/" + board), auth=("alice", "alice"), timeout=5,
                             headers={"Connection": "close"})
            assert r.status_code == 200 and r.json()["lastEventId"] == last
            assert time.monotonic() - t0 < 3
        t0 = time.monotonic()
        task = alice.create_task(board, lists[0], "for everyone")
        wait_until(lambda: fleet.count(lambda c: c.eof) == n, 20, "every poll to answer")
        assert max(c.done_at for c in fleet.conns) - t0 < 20  # far from the 60 s timeout
        want = alice.events_since(board, last)
        assert len(want) == 1 and want[0]["data"]["task"] == task
        for c in fleet.conns:
            assert c.http.status == 200 and c.error is None, (c.http.status, c.error)
            d = json.loads(c.body)
            assert d == {"data": want, "lastEventId": last + 1, "timeout": False}, d
    finally:
        fleet.close()
    wait_until(lambda: longpolls(srv) == 0, 10, "no polls held")
