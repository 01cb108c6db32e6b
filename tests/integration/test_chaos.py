"""Chaos: writers and readers on every transport while the server is hurt.

Writers post tasks with an Idempotency-Key and send a failed request again
(same key) until it is answered. Readers follow the board on the four
transports (SSE with Last-Event-ID, a WebSocket join with lastEventId, long
polling and short polling with since=N), each reconnecting and resuming from
the last id it got. Meanwhile a child is killed with kill -9, the server is
restarted gracefully, the database's write lock is held from outside for 3 s,
and the server is stopped and started. Afterwards every acknowledged write
is stored once (one task, one event) and every reader got every id once, in
order.

Two more paths: a resume from before the kept history while writes go on
(RTBoardHistory 64): every transport gets one `reset` and goes on exactly
from it; and a write whose answer was lost after it committed (the client
closed its connection without reading): the retry with the same key gets the
stored answer with `Idempotent-Replayed: true` and publishes no second event.
"""

import json
import os
import signal
import socket
import threading
import time

import requests

from harness import unique, wait_until
from test_db_errors import locked
from test_sse import SSEStream, basic
from test_ws import _children
from test_ws_protocol import OP_CLOSE, OP_TEXT, RawWS

RETRY_PAUSE = 0.05  # between connection attempts while the server is down
STEP_TIMEOUT = 30  # for the writers and readers to get going again after a fault


# ---------------------------------------------------------------------------
# a writer


class Writer(threading.Thread):
    """Posts tasks to `board`, one every `pause` seconds. A request that gets no
    answer (connection error, timeout) or a 503 is sent again, with the same
    Idempotency-Key, until it is answered 201 (at most 60 s); after a
    connection error it waits `retry_pause` first. Records each answer (its
    monotonic time, title and task id)."""

    def __init__(self, server, board, list_id, name, pause=0.02, retry_pause=RETRY_PAUSE):
        super().__init__(daemon=True)
        self.server, self.board, self.list_id, self.name = server, board, list_id, name
        self.pause, self.retry_pause = pause, retry_pause
        self.stop = threading.Event()
        self.answered = []  # (time, title, task id)
        self.acked = {}  # title -> task id
        self.attempted = set()
        self.retries = 0
        self.busy = 0  # 503 answers
        self.error = None

    def run(self):
        s = requests.Session()
        s.auth = ("alice", "alice")
        url = self.server.url("/boards/%s/tasks" % self.board)
        n = 0
        try:
            while not self.stop.is_set():
                title = "%s-%d" % (self.name, n)
                self.attempted.add(title)
                deadline = time.monotonic() + 60
                while True:
                    assert time.monotonic() < deadline, "%s got no answer in 60 s" % title
                    try:
                        r = s.post(url, json={"listId": self.list_id, "title": title},
                                   headers={"Idempotency-Key": title}, timeout=10)
                    except requests.RequestException:
                        self.retries += 1
                        time.sleep(self.retry_pause)
                        continue
                    if r.status_code == 503:
                        self.retries += 1
                        self.busy += 1
                        continue
                    assert r.status_code == 201, (title, r.status_code, r.text[:300])
                    task_id = r.json()["data"]["id"]
                    self.answered.append((time.monotonic(), title, task_id))
                    self.acked[title] = task_id
                    break
                n += 1
                if self.pause:
                    self.stop.wait(self.pause)
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            s.close()

    def count(self):
        return len(self.answered)


# ---------------------------------------------------------------------------
# readers: one per transport, resuming by id


class Reader(threading.Thread):
    """Follows `board` from id 0, reconnecting after every end of connection and
    resuming from the last id it got. `log` holds ("event", id) and ("reset",
    lastEventId) in arrival order. While `paused` is set it holds no connection."""

    transport = None

    def __init__(self, server, board):
        super().__init__(daemon=True, name="%s reader" % self.transport)
        self.server, self.board = server, board
        self.last = 0
        self.log = []
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.parked = threading.Event()  # paused, and its connection closed
        self.sessions = 0
        self.error = None

    def got_event(self, eid):
        self.log.append(("event", eid))
        self.last = eid

    def got_reset(self, last):
        self.log.append(("reset", last))
        self.last = last

    def holding(self):
        return not self.stop.is_set() and not self.paused.is_set()

    def run(self):
        try:
            while not self.stop.is_set():
                if self.paused.is_set():
                    self.parked.set()
                    self.stop.wait(0.05)
                    continue
                self.parked.clear()
                self.sessions += 1
                try:
                    self.session()
                except (OSError, EOFError, TimeoutError, requests.RequestException):
                    pass  # the server went away: resume
                self.stop.wait(RETRY_PAUSE)
        except BaseException as e:  # reported by the test
            self.error = e

    def item(self, d):
        """One item of a polling answer, a WebSocket message or an SSE data line."""
        if d.get("type") == "reset":
            assert "id" not in d, d
            self.got_reset(d["lastEventId"])
        elif "id" in d:
            assert d["boardId"] == self.board, d
            self.got_event(d["id"])


class SSEReader(Reader):
    transport = "sse"

    def session(self):
        with SSEStream(self.server, "/boards/%s/events" % self.board,
                       headers={"Last-Event-ID": str(self.last)}) as s:
            seen = 0
            while self.holding():
                with s.cond:
                    s.cond.wait_for(lambda: len(s.blocks) > seen or s.eof or s.http.complete,
                                    0.5)
                    # the end of the stream, or an error answer (it has a length)
                    new, seen, eof = s.blocks[seen:], len(s.blocks), s.eof or s.http.complete
                for b in new:
                    if b.data is None:
                        continue
                    d = json.loads(b.data)
                    if b.event == "reset" or b.id is not None:
                        assert b.id is None or d.get("type") == "reset" or int(b.id) == d["id"], (
                            b, d)
                        self.item(d)
                if eof:
                    return


class WSReader(Reader):
    transport = "ws"

    def session(self):
        ws = RawWS(self.server.port, "/ws", timeout=5)
        try:
            if ws.status != 101:
                return
            assert ws.recv_json()["type"] == "connected"
            ws.send_json({"type": "join", "boardId": self.board, "lastEventId": self.last})
            while self.holding():
                try:
                    f = ws.next(1.0)
                except TimeoutError:
                    continue
                if f.opcode == OP_CLOSE:
                    return
                if f.opcode != OP_TEXT:
                    continue
                m = json.loads(f.payload.decode("utf-8"))
                assert m["type"] != "error", m
                self.item(m)
        finally:
            ws.close()


class PollReader(Reader):
    """Long polling (`long`) or short polling every 0.1 s."""

    def __init__(self, server, board, long):
        self.transport = "longpoll" if long else "poll"
        super().__init__(server, board)
        self.long = long

    def session(self):
        with requests.Session() as s:
            s.auth = ("alice", "alice")
            while self.holding():
                if self.long:
                    r = s.get(self.server.url("/boards/%s/poll" % self.board),
                              params={"since": self.last, "timeout": 5}, timeout=15)
                else:
                    r = s.get(self.server.url("/boards/%s/updates" % self.board),
                              params={"since": self.last}, timeout=10)
                if r.status_code != 200:
                    return  # e.g. 503 while the database is away: ask again
                d = r.json()
                for item in d["data"]:
                    self.item(item)
                if not self.long and not d["data"]:
                    self.stop.wait(0.1)


def start_readers(server, board):
    readers = [SSEReader(server, board), WSReader(server, board),
               PollReader(server, board, long=True), PollReader(server, board, long=False)]
    for r in readers:
        r.start()
    return readers


def assert_read_once_in_order(reader, last, resets=0):
    """Every id from 1 to `last` once, in order; after a reset, every id from the
    reset's lastEventId on. `resets`: how many resets the reader must have got."""
    expect, got_resets = 1, []
    for kind, n in reader.log:
        if kind == "reset":
            assert n >= expect - 1, (reader.transport, "a reset back in time", n, expect)
            got_resets.append(n)
            expect = n + 1
        else:
            assert n == expect, ("%s reader: id %d where %d was due (a gap or a repeat); "
                                 "ids around it: %r" % (reader.transport, n, expect,
                                                        reader.log[-10:]))
            expect += 1
    assert expect - 1 == last, (reader.transport, expect - 1, last)
    assert len(got_resets) == resets, (reader.transport, got_resets)
    return got_resets


# ---------------------------------------------------------------------------
# the scenario


def board_last(server, board):
    """The board's lastEventId, asked again until the server answers."""
    def ask():
        try:
            r = requests.get(server.url("/boards/%s" % board), auth=("alice", "alice"),
                             timeout=5)
            return r.json()["lastEventId"] if r.status_code == 200 else None
        except requests.RequestException:
            return None
    return wait_until(ask, STEP_TIMEOUT, "the board's lastEventId", interval=0.1)


class Scene:
    def __init__(self, server, board, writers, readers):
        self.server, self.board, self.writers, self.readers = server, board, writers, readers

    def check(self):
        for t in self.writers + self.readers:
            assert t.error is None, "%s: %r" % (t.name, t.error)

    def acked(self):
        return sum(len(w.acked) for w in self.writers)

    def failed(self):
        return any(t.error is not None for t in self.writers + self.readers)

    def progress(self, what, n=20):
        """The writers get n more answers and every reader catches up with them."""
        target = self.acked() + n
        wait_until(lambda: self.failed() or self.acked() >= target, STEP_TIMEOUT,
                   "%d more acknowledged writes after %s" % (n, what), interval=0.05)
        self.check()
        last = board_last(self.server, self.board)
        wait_until(lambda: self.failed() or all(r.last >= last for r in self.readers),
                   STEP_TIMEOUT, "every reader at id %d after %s (at %r)"
                   % (last, what, [(r.transport, r.last) for r in self.readers]),
                   interval=0.05)
        self.check()

    def stop(self):
        """Stops the writers, lets the readers catch up with the last write, stops
        them."""
        for t in self.writers:
            t.stop.set()
        for t in self.writers:
            t.join(70)
        if not self.failed() and not any(t.is_alive() for t in self.writers):
            last = board_last(self.server, self.board)
            wait_until(lambda: self.failed() or all(r.last >= last for r in self.readers
                                                    if not r.paused.is_set()),
                       STEP_TIMEOUT, "every reader at the last id %d" % last, interval=0.05)
        for t in self.readers:
            t.stop.set()
        for t in self.writers + self.readers:
            t.join(30)
            assert not t.is_alive(), "%s did not stop" % t.name


def test_chaos_every_acknowledged_write_stored_once_and_read_once_in_order(servers):
    srv = servers.start(CHILDREN=2, THREADS=25)
    alice = srv.client("alice")
    b = alice.create_board(unique("chaos"))
    board, list_id = b["id"], b["lists"][0]["id"]
    writers = [Writer(srv, board, list_id, "w%d" % i) for i in range(2)]
    for w in writers:
        w.start()
    readers = start_readers(srv, board)
    scene = Scene(srv, board, writers, readers)
    try:
        scene.progress("the start", n=40)

        victim = _children(srv)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in _children(srv) and len(_children(srv)) == 2, 15,
                   "the parent to replace the killed child")
        scene.progress("kill -9 of child %d" % victim)

        srv.graceful()
        scene.progress("a graceful restart")

        busy = sum(w.busy for w in writers)
        with locked(srv):
            # writes wait for the lock, give up with 503 and are sent again;
            # holding it 3 s is the fault itself
            time.sleep(3)
        scene.progress("the database's write lock held for 3 s")
        assert sum(w.busy for w in writers) > busy, "no write was refused while locked"

        srv.restart()
        scene.progress("a stop and start")
    finally:
        scene.stop()
    scene.check()

    # every acknowledged write stored once, under the id it was answered with
    acked = {}
    for w in writers:
        acked.update(w.acked)
    attempted = set().union(*(w.attempted for w in writers))
    stored = alice.tasks(board)
    titles = [t["title"] for t in stored]
    assert len(titles) == len(set(titles)), "a task stored twice"
    assert set(titles) <= attempted
    by_title = {t["title"]: t["id"] for t in stored}
    assert {k: by_title.get(k) for k in acked} == acked
    events = alice.events_since(board)
    last = len(events)
    assert [e["id"] for e in events] == list(range(1, last + 1))
    assert sorted(e["data"]["task"]["title"] for e in events
                  if e["type"] == "task_created") == sorted(titles), "an event per stored task"

    # every reader: every id once, in order
    for r in readers:
        assert_read_once_in_order(r, last)
        assert r.sessions >= 3, (r.transport, r.sessions)  # it did resume


def test_resume_from_before_the_history_under_load_resets_every_transport(servers):
    history = 64
    srv = servers.start(CHILDREN=2, THREADS=25, HISTORY=history)
    alice = srv.client("alice")
    b = alice.create_board(unique("chaosr"))
    board, list_id = b["id"], b["lists"][0]["id"]
    writer = Writer(srv, board, list_id, "w", pause=0.005)
    writer.start()
    readers = start_readers(srv, board)
    scene = Scene(srv, board, [writer], readers)
    try:
        scene.progress("the start", n=30)
        # the readers leave and fall behind: their next event is trimmed away
        for r in readers:
            r.paused.set()
        wait_until(lambda: scene.failed() or all(r.parked.is_set() for r in readers), 20,
                   "every reader to close its connection")
        behind = {r.transport: r.last for r in readers}
        # trimmed every 64 events down to the last `history`
        wait_until(lambda: scene.failed() or board_last(srv, board) > max(behind.values())
                   + 2 * history + 10, STEP_TIMEOUT, "the board to move on past the history",
                   interval=0.1)
        scene.check()
        for r in readers:
            r.paused.clear()
        wait_until(lambda: scene.failed() or all(any(k == "reset" for k, _ in r.log)
                                                 for r in readers), STEP_TIMEOUT,
                   "a reset on every transport")
        scene.progress("the resets")
    finally:
        scene.stop()
    scene.check()
    last = board_last(srv, board)
    for r in readers:
        (reset,) = assert_read_once_in_order(r, last, resets=1)
        assert reset > behind[r.transport] + history, (r.transport, reset, behind)
        # before the reset, every id up to where the reader left
        assert r.log.index(("reset", reset)) == behind[r.transport], r.transport


def test_a_write_whose_answer_was_lost_is_replayed_and_published_once(servers):
    srv = servers.start(CHILDREN=2, THREADS=25)
    alice = srv.client("alice")
    b = alice.create_board(unique("chaosl"))
    board, list_id = b["id"], b["lists"][0]["id"]
    body = json.dumps({"listId": list_id, "title": "answer lost"}).encode()
    key = "lost-%d" % time.time_ns()
    before = alice.last_event_id(board)
    # the whole request, then the connection is cut: no answer is ever read
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    sock.sendall(("POST /boards/%s/tasks HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                  "Authorization: %s\r\nContent-Type: application/json\r\n"
                  "Idempotency-Key: %s\r\nContent-Length: %d\r\n\r\n"
                  % (board, srv.port, basic("alice"), key, len(body))).encode() + body)
    sock.close()
    wait_until(lambda: alice.last_event_id(board) == before + 1, 10,
               "the cut request to commit")
    created = alice.events_since(board, before)
    assert [e["type"] for e in created] == ["task_created"], created
    task = created[0]["data"]["task"]

    r = alice.post("/boards/%s/tasks" % board, body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    assert r.headers.get("Idempotent-Replayed") == "true", dict(r.headers)
    assert r.json()["data"] == task
    assert r.headers.get("Location", "").endswith("/boards/%s/tasks/%d" % (board, task["id"]))
    # nothing published again: a stream from before the write sees one event, then the next
    with SSEStream(srv, "/boards/%s/events" % board,
                   headers={"Last-Event-ID": str(before)}) as s:
        s.wait_ids(1)
        alice.create_task(board, list_id, "after")
        evs = s.wait_ids(2)
        assert [int(e.id) for e in evs] == [before + 1, before + 2], [e.id for e in evs]
    assert alice.last_event_id(board) == before + 2
    assert [t["title"] for t in alice.tasks(board)].count("answer lost") == 1
