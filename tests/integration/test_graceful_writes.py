"""Writes go on across graceful restarts: a writer that sends a failed request
again at once (same Idempotency-Key) gets its changes through with no long
pause, and every change it was answered for is stored once.

The bound (1 s) is generous: it tells a restart that leaves the server
without a child accepting connections for a second or two (the parent
replaces old children that exit late only on its one-second ticks) from one
that replaces them at once."""

import threading
import time

import requests

from harness import unique, wait_until

RESTARTS = 3
MAX_PAUSE = 1.0


class Writer(threading.Thread):
    """Posts tasks one after another over its own keep-alive connection; a
    request that fails (connection error, timeout, 503) is sent again at once
    with the same Idempotency-Key. Records the monotonic time of each answer."""

    def __init__(self, server, board, list_id):
        super().__init__(daemon=True)
        self.server, self.board, self.list_id = server, board, list_id
        self.stop = threading.Event()
        self.answered = []  # (time, title, task id)
        self.retries = 0
        self.error = None

    def run(self):
        s = requests.Session()
        s.auth = ("alice", "alice")
        url = self.server.url("/boards/%s/tasks" % self.board)
        n = 0
        try:
            while not self.stop.is_set():
                title = "w-%d" % n
                deadline = time.monotonic() + 30
                while True:
                    assert time.monotonic() < deadline, "no answer for %s in 30 s" % title
                    try:
                        r = s.post(url, json={"listId": self.list_id, "title": title},
                                   headers={"Idempotency-Key": title}, timeout=10)
                    except requests.RequestException:
                        self.retries += 1
                        continue
                    if r.status_code == 503:
                        self.retries += 1
                        continue
                    assert r.status_code == 201, (r.status_code, r.text[:300])
                    self.answered.append((time.monotonic(), title, r.json()["data"]["id"]))
                    break
                n += 1
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            s.close()

    def count(self):
        return len(self.answered)


def test_writes_pause_briefly_across_graceful_restarts(servers):
    srv = servers.start()
    alice = srv.client("alice")
    b = alice.create_board(unique("gw"))
    board, list_id = b["id"], b["lists"][0]["id"]
    w = Writer(srv, board, list_id)
    w.start()
    try:
        wait_until(lambda: w.error or w.count() >= 50, 20, "the writer's first 50 tasks")
        spans = []
        for _ in range(RESTARTS):
            spans.append(time.monotonic())
            srv.graceful()
            # the new generation serves the writer: 50 more answers after the restart
            target = w.count() + 50
            wait_until(lambda: w.error or w.count() >= target, 20,
                       "50 more tasks after the graceful restart")
            assert w.error is None, w.error
    finally:
        w.stop.set()
        w.join(40)
    assert not w.is_alive(), "the writer did not stop"
    assert w.error is None, w.error

    times = [t for t, _, _ in w.answered]
    gaps = sorted(((b - a, a - times[0]) for a, b in zip(times, times[1:])), reverse=True)
    assert gaps[0][0] < MAX_PAUSE, (
        "a pause of %.2f s between two answered writes; the longest (s, at s): %s; restarts "
        "began at (s): %s; %d requests sent again"
        % (gaps[0][0], ["%.2f at %.2f" % g for g in gaps[:5]],
           ["%.2f" % (t - times[0]) for t in spans], w.retries))

    # every answered write is stored once, with the id it was answered with
    stored = alice.tasks(board)
    titles = [t["title"] for t in stored]
    assert len(titles) == len(set(titles)), "a task stored twice"
    assert {t["id"]: t["title"] for t in stored} == {i: title for _, title, i in w.answered}
    events = alice.events_since(board)
    created = [e for e in events if e["type"] == "task_created"]
    assert len(created) == len(w.answered), (len(created), len(w.answered))
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
